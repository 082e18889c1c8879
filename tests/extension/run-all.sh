#!/usr/bin/env bash
# Builds the extension and runs its four test suites. Prints one line per suite:
#   extension-unit: N passed, M failed
#   extension-webview: N passed, M failed
#   extension-integration: N passed, M failed
#   extension-e2e: N passed, M failed
# and exits non-zero if any suite failed. Needs the tools of scripts/install-test-tools.sh
# (it runs it when they are missing) and, for integration/e2e, the real backend built in Release.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
EXT="$REPO/extension"
OUT="$HERE/.output"
mkdir -p "$OUT"
t0=$(date +%s)

TOOLS="${ATTENTIONVIZ_TOOLS:-$HOME/.cache/attentionviz-tools}"
if [[ ! -f "$TOOLS/env.sh" ]]; then bash "$REPO/scripts/install-test-tools.sh" >/dev/null || exit 1; fi
# shellcheck disable=SC1091
source "$TOOLS/env.sh"

echo "[run-all] building the extension" >&2
( cd "$EXT" && { [[ -d node_modules ]] || npm ci --no-audit --no-fund >&2; } && node scripts/build.mjs >&2 ) || { echo "extension-build: 0 passed, 1 failed"; exit 1; }

# The integration suite drives the real backend from the repo's Release build: build it when missing.
if [[ -z "${ATTENTIONVIZ_BACKEND_DIR:-}" && ! -f "$REPO/src/Backend/bin/Release/net10.0/linux-x64/attentionviz-backend.dll" && -d "$REPO/src/Backend" ]]; then
  echo "[run-all] building the backend (dotnet build src/Backend -c Release)" >&2
  dotnet build "$REPO/src/Backend" -c Release -nologo -clp:ErrorsOnly >&2 || echo "[run-all] backend build failed" >&2
fi

summaries=()
failed=0
# Runs node's test runner on a folder; records "NAME: N passed, M failed".
run_suite() {
  local name=$1; shift
  local log="$OUT/$name.log"
  echo "[run-all] $name" >&2
  "$@" >"$log" 2>&1
  local rc=$?
  local pass fail
  pass=$(grep -E '^# pass ' "$log" | tail -1 | awk '{print $3}')
  fail=$(grep -E '^# fail ' "$log" | tail -1 | awk '{print $3}')
  pass=${pass:-0}; fail=${fail:-0}
  if [[ $rc -ne 0 && $fail -eq 0 ]]; then fail=1; fi
  if [[ $fail -ne 0 ]]; then failed=1; grep -E '^not ok|^# Subtest|error:|Error' "$log" | grep -B1 -A3 'not ok' | head -40 >&2; echo "[run-all] full log: $log" >&2; fi
  summaries+=("$name: $pass passed, $fail failed")
}

cd "$HERE"
run_suite extension-unit node --test --test-reporter=tap unit/
run_suite extension-webview node --test --test-reporter=tap --test-timeout=120000 webview/
if [[ -d integration ]]; then run_suite extension-integration "$ATTENTIONVIZ_NODE24" --test --test-reporter=tap --test-timeout=600000 integration/integration.test.mjs; fi
# The e2e suite runs the packaged .vsix (with its bundled backend): package it (skipped when up to date).
if [[ -d e2e ]]; then
  if ! "$EXT/scripts/package.sh" >"$OUT/package.log" 2>&1; then tail -20 "$OUT/package.log" >&2; summaries+=("extension-e2e: 0 passed, 1 failed"); failed=1;
  else run_suite extension-e2e "$ATTENTIONVIZ_NODE24" --test --test-reporter=tap --test-timeout=600000 e2e/e2e.test.mjs; fi
fi

echo "[run-all] done in $(( $(date +%s) - t0 )) s" >&2
printf '%s\n' "${summaries[@]}"
exit $failed
