#!/usr/bin/env bash
# The main job: build everything (backend + .vsix), then start a local VS Code in the browser (code-server from npm,
# bound to 127.0.0.1, no auth, fresh user-data dir) with AttentionViz installed and a sample workspace, and print the
# URL to open. Ctrl+C stops it.
#   ./run.sh [PORT]          (default 8765)
#   ./run.sh --cli [TEXT]    the backend alone: real attention of the embedded model on a sample sentence
set -euo pipefail
cd "$(dirname "$0")"
export OMP_WAIT_POLICY=PASSIVE

if [[ "${1:-}" == "--cli" ]]; then
  dotnet build src/Backend -c Release -nologo -clp:ErrorsOnly >/dev/null
  text="${2:-The quick brown fox jumps over the lazy dog because it wants to see what attention looks like.}"
  exec dotnet src/Backend/bin/Release/net10.0/linux-x64/attentionviz-backend.dll analyze --text "$text"
fi

port="${1:-8765}"
./build.sh
# The sample workspace lives outside the clone (VS Code would otherwise ask about "a git repository found in the parent
# folders" of it).
workspace="${ATTENTIONVIZ_WORKSPACE:-${XDG_CACHE_HOME:-$HOME/.cache}/attentionviz/sample-workspace}"
exec extension/scripts/run-code-server.sh "$workspace" "$port"
