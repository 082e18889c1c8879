#!/usr/bin/env bash
# The main job: build, then show the real attention of the embedded model on a sample prompt.
set -euo pipefail
cd "$(dirname "$0")"
./build.sh >/dev/null
export OMP_WAIT_POLICY=PASSIVE
text="${1:-The quick brown fox jumps over the lazy dog because it wants to see what attention looks like.}"
exec dotnet src/Backend/bin/Release/net10.0/linux-x64/attentionviz-backend.dll analyze --text "$text"
