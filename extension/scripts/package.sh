#!/usr/bin/env bash
# Bundles the extension and packages <repo>/dist/attentionviz-<version>.vsix with @vscode/vsce,
# including the backend's published files (dotnet publish: the backend, TorchSharp, libtorch CPU),
# so that the .vsix alone works on linux-x64 with the .NET 10 runtime installed.
#   extension/scripts/package.sh [--skip-backend]   (--skip-backend: a small .vsix for development)
# Prints the path of the .vsix on its last line.
set -euo pipefail
EXT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$EXT/.." && pwd)"
VERSION="$(node -p "require('$EXT/package.json').version")"
OUT="$REPO/dist/attentionviz-$VERSION.vsix"
STAGE="$REPO/dist/.stage-extension"
log() { echo "[package] $*" >&2; }

with_backend=1
[[ "${1:-}" == "--skip-backend" ]] && { with_backend=0; OUT="$REPO/dist/attentionviz-$VERSION-nobackend.vsix"; }

cd "$EXT"
if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  log "npm ci"; npm ci --no-audit --no-fund >&2
fi
node scripts/build.mjs >&2

# Skip when nothing that goes into the .vsix changed since it was made (build.sh and the tests both package).
backend_sources() { [[ $with_backend == 1 ]] && find "$REPO/src/Backend" "$REPO/build" "$REPO/Directory.Build.props" "$REPO/Directory.Build.targets" \
  \( -path '*/bin' -o -path '*/obj' \) -prune -o -type f -print 2>/dev/null | LC_ALL=C sort | xargs cat; }
stamp="$( { cat out/host/extension.js media/webview.js media/panel.css media/grammars/*.wasm package.json README.md; backend_sources; } | sha256sum | cut -c1-32)"
if [[ -f "$OUT" && -f "$OUT.stamp" && "$(cat "$OUT.stamp")" == "$stamp" && -z "${ATTENTIONVIZ_FORCE_PACKAGE:-}" ]]; then
  log "up to date: $OUT"
  echo "$OUT"
  exit 0
fi

rm -rf "$STAGE"
mkdir -p "$STAGE/out/host" "$REPO/dist"
cp package.json README.md "$STAGE/"
cp "$REPO/LICENSE" "$STAGE/LICENSE"
cp out/host/extension.js "$STAGE/out/host/"
cp -r media "$STAGE/media"
rm -f "$STAGE"/media/*.map
printf '**/*.map\n' > "$STAGE/.vscodeignore"

if [[ $with_backend == 1 ]]; then
  log "dotnet publish src/Backend (Release, linux-x64)"
  dotnet publish "$REPO/src/Backend" -c Release -o "$STAGE/backend" -nologo -clp:ErrorsOnly >&2
  # libtorch ships libraries the backend never loads (Python bindings, test and mobile backends).
  # Only these are removed; the e2e suite runs the packaged backend to prove it still works.
  for f in libtorch_python.so libtorchbind_test.so libjitbackend_test.so libbackend_with_compiler.so libnnapi_backend.so libaoti_custom_ops.so; do
    rm -f "$STAGE/backend/$f"
  done
  [[ -f "$STAGE/backend/attentionviz-backend.dll" ]] || { log "publish produced no attentionviz-backend.dll"; exit 1; }
  log "backend: $(du -sh "$STAGE/backend" | cut -f1)"
fi

log "vsce package → $OUT"
( cd "$STAGE" && "$EXT/node_modules/.bin/vsce" package --no-dependencies --no-update-package-json --target linux-x64 \
    --allow-missing-repository --skip-license --out "$OUT" >&2 ) || { log "vsce failed"; exit 1; }
rm -rf "$STAGE"
echo "$stamp" > "$OUT.stamp"
log "$(du -h "$OUT" | cut -f1) $OUT"
echo "$OUT"
