#!/usr/bin/env bash
# Restores and builds everything in Release: the backend, its tests and benchmark, and the VS Code extension.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v dotnet >/dev/null 2>&1; then
  echo "error: the .NET SDK (dotnet, version 10) is required: https://dotnet.microsoft.com/download" >&2
  exit 1
fi

dotnet build AttentionViz.sln -c Release -nologo -clp:ErrorsOnly
# The extension's protocol types come from the C# records. A developer's build rewrites them; CI's does not, so
# GeneratedProtocolTests fails there when the committed files are stale.
if [ "${CI:-}" != "true" ]; then
  dotnet src/Backend/bin/Release/net10.0/linux-x64/attentionviz-backend.dll generate-protocol \
    extension/src/shared/generated
fi

if [ -x extension/scripts/package.sh ]; then
  extension/scripts/package.sh
fi
