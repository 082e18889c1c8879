#!/usr/bin/env bash
# The repository's habits, checked: ESLint and Prettier on the extension, `dotnet format` on the C# solution.
# Prints "lint: N passed, N failed" (one check each) and exits non-zero when a check fails.
# --fix rewrites what the tools can fix instead of checking.
set -uo pipefail
cd "$(dirname "$0")/.."
fix=0; [[ "${1:-}" == "--fix" ]] && fix=1
passed=0; failed=0
check() {
  local name=$1; shift
  if "$@" >".test-output/lint-$name.log" 2>&1; then passed=$((passed + 1))
  else failed=$((failed + 1)); echo "[lint] $name failed:" >&2; tail -30 ".test-output/lint-$name.log" >&2; fi
}
mkdir -p .test-output
( cd extension && { [[ -d node_modules ]] || npm ci --no-audit --no-fund >/dev/null; } )
if ((fix)); then
  (cd extension && npx eslint --fix . ; npx prettier --write src scripts static eslint.config.mjs >/dev/null)
  dotnet format AttentionViz.sln
  exit 0
fi
check eslint bash -c 'cd extension && npx eslint --max-warnings 0 .'
check prettier bash -c 'cd extension && npx prettier --check src scripts static eslint.config.mjs'
check dotnet-format dotnet format AttentionViz.sln --verify-no-changes
echo "lint: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
