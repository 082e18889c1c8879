#!/usr/bin/env bash
# Runs every test suite of the repository and ends with one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")"
export OMP_WAIT_POLICY=PASSIVE

passed=0
failed=0
status=0
out=.test-output
mkdir -p "$out"

if ! ./build.sh; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

# Repository habits (ESLint, Prettier, dotnet format): one check each, counted like tests.
scripts/lint.sh 2>&1 | tee "$out/lint.log"
l_passed=$(grep -E '^lint: [0-9]+ passed' "$out/lint.log" | awk '{print $2}'); l_passed=${l_passed:-0}
l_failed=$(grep -E '^lint: [0-9]+ passed' "$out/lint.log" | awk '{print $4}'); l_failed=${l_failed:-1}
passed=$((passed + l_passed)); failed=$((failed + l_failed))

# The independent reference tokenizer (JavaScript) that some backend tests run at test time.
if ! (cd tests/reference/tokenizer && npm ci --no-audit --no-fund >/dev/null); then
  echo "npm ci in tests/reference/tokenizer failed"
fi

# Backend (MSTest on Microsoft.Testing.Platform): parse its summary.
dotnet test tests/Backend.Tests -c Release --no-build 2>&1 | tee "$out/backend.log"
backend_status=${PIPESTATUS[0]}
b_total=$(grep -Eo 'total: [0-9]+' "$out/backend.log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
b_failed=$(grep -Eo 'failed: [0-9]+' "$out/backend.log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
b_passed=$(grep -Eo 'succeeded: [0-9]+' "$out/backend.log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
if [ "$backend_status" -ne 0 ] && [ "$b_failed" -eq 0 ]; then b_failed=1; fi
if [ "$b_total" -eq 0 ]; then echo "backend: no tests ran"; b_failed=$((b_failed + 1)); fi
echo "backend: $b_passed passed, $b_failed failed"
passed=$((passed + b_passed)); failed=$((failed + b_failed))

# Extension suites (unit, webview in Chromium, VS Code extension host, UI end-to-end): each prints "suite: N passed, N failed".
if [ -x tests/extension/run-all.sh ]; then
  if scripts/install-test-tools.sh > "$out/install-test-tools.log" 2>&1; then
    tests/extension/run-all.sh 2>&1 | tee "$out/extension.log"
    ext_status=${PIPESTATUS[0]}
    e_passed=$(grep -E '^[a-z0-9-]+: [0-9]+ passed, [0-9]+ failed' "$out/extension.log" | awk '{s+=$2} END {print s+0}')
    e_failed=$(grep -E '^[a-z0-9-]+: [0-9]+ passed, [0-9]+ failed' "$out/extension.log" | awk '{s+=$4} END {print s+0}')
    if [ "$ext_status" -ne 0 ] && [ "$e_failed" -eq 0 ]; then e_failed=1; fi
  else
    echo "installing the extension test tools failed; see $out/install-test-tools.log"
    tail -20 "$out/install-test-tools.log"
    e_passed=0; e_failed=1
  fi
  passed=$((passed + e_passed)); failed=$((failed + e_failed))
fi

[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
