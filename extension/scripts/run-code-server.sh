#!/usr/bin/env bash
# Starts a local VS Code in the browser (code-server from npm) with the AttentionViz .vsix installed
# and a sample workspace, bound to 127.0.0.1 without auth, with a fresh user-data dir. Prints the URL
# ("AttentionViz: open URL") and keeps running until interrupted.
#   extension/scripts/run-code-server.sh WORKSPACE PORT
# WORKSPACE is created (with a sample prompt file) when missing or empty. ATTENTIONVIZ_VSIX picks a
# .vsix; default: dist/attentionviz-<version>.vsix, packaged first when missing.
set -euo pipefail
EXT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$EXT/.." && pwd)"
WORKSPACE="${1:?usage: run-code-server.sh WORKSPACE PORT}"
PORT="${2:?usage: run-code-server.sh WORKSPACE PORT}"
log() { echo "[run-code-server] $*" >&2; }

TOOLS="${ATTENTIONVIZ_TOOLS:-$HOME/.cache/attentionviz-tools}"
[[ -f "$TOOLS/env.sh" ]] || bash "$REPO/scripts/install-test-tools.sh" >/dev/null
# shellcheck disable=SC1091
source "$TOOLS/env.sh"

VERSION="$(node -p "require('$EXT/package.json').version")"
VSIX="${ATTENTIONVIZ_VSIX:-$REPO/dist/attentionviz-$VERSION.vsix}"
if [[ ! -f "$VSIX" ]]; then log "packaging $VSIX"; "$EXT/scripts/package.sh" >/dev/null; fi

mkdir -p "$WORKSPACE"
WORKSPACE="$(cd "$WORKSPACE" && pwd)"
if [[ -z "$(ls -A "$WORKSPACE")" ]]; then
  cat > "$WORKSPACE/prompt.md" <<'MD'
# Sample prompts for AttentionViz

Select a line (or nothing: the current line is used) and press Ctrl+Alt+A, or run
"AttentionViz: Show Attention for Selection" from the command palette.

The animal didn't cross the street because it was too tired.
The trophy doesn't fit into the brown suitcase because it is too large.
You are a helpful assistant. Answer the user's question in one short sentence.
MD
  cat > "$WORKSPACE/prompt.py" <<'PY'
SYSTEM = "You are a careful assistant. Think step by step, then answer."
USER = "What is the capital of France, and why is it famous?"
PY
fi

DATA="$(mktemp -d "${TMPDIR:-/tmp}/attentionviz-code-server.XXXXXX")"
mkdir -p "$DATA"/{user-data,extensions,xdg-config,xdg-data}
export XDG_CONFIG_HOME="$DATA/xdg-config" XDG_DATA_HOME="$DATA/xdg-data" OMP_WAIT_POLICY=PASSIVE
CS=("$ATTENTIONVIZ_NODE24" "$ATTENTIONVIZ_CODE_SERVER/out/node/entry.js" --user-data-dir "$DATA/user-data" --extensions-dir "$DATA/extensions")
log "installing $(basename "$VSIX")"
"${CS[@]}" --install-extension "$VSIX" >&2
mkdir -p "$DATA/user-data/User"
cat > "$DATA/user-data/User/settings.json" <<'JSON'
{ "workbench.startupEditor": "none", "security.workspace.trust.enabled": false, "telemetry.telemetryLevel": "off",
  "extensions.autoCheckUpdates": false, "extensions.autoUpdate": false, "workbench.tips.enabled": false,
  "workbench.secondarySideBar.defaultVisibility": "hidden", "chat.disableAIFeatures": true }
JSON

"${CS[@]}" --auth none --bind-addr "127.0.0.1:$PORT" --disable-telemetry --disable-update-check \
  --disable-workspace-trust --disable-getting-started-override "$WORKSPACE" >"$DATA/code-server.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT INT TERM
healthy() { "$ATTENTIONVIZ_NODE24" -e "fetch('http://127.0.0.1:$PORT/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"; }
for _ in $(seq 1 120); do
  if healthy; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$DATA/code-server.log" >&2; exit 1; }
  sleep 0.5
done
healthy || { log "code-server did not start"; cat "$DATA/code-server.log" >&2; exit 1; }
echo "AttentionViz: open http://127.0.0.1:$PORT/?folder=$WORKSPACE"
log "log: $DATA/code-server.log (Ctrl+C stops)"
wait "$pid"
