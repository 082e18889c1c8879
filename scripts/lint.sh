#!/usr/bin/env bash
# The repository's habits, checked: ESLint and Prettier on the extension, `dotnet format` on the C# solution,
# and line length (120 characters in the extension's TypeScript and scripts, 150 in C#; generated files excepted).
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
# Line length: file:line of every line over the limit (counted in characters), failing if there is one.
ts_files() { git ls-files extension/src extension/scripts | grep -E '\.(ts|mjs)$' | grep -v '^extension/src/shared/generated/'; }
cs_files() { git ls-files 'src/*.cs' 'tests/*.cs'; }
long_lines() { # LIMIT FILE-LISTER
  "$2" | xargs -r -d '\n' env LC_ALL=C.UTF-8 grep -nHE "^.{$(($1 + 1)),}" | cut -d: -f1,2 | sed "s/\$/: over $1 characters/"
}
line_length() {
  local found; found=$(long_lines 120 ts_files; long_lines 150 cs_files)
  [[ -z $found ]] || { echo "$found"; return 1; }
}
mkdir -p .test-output
# An older checkout may lack the lint tools in node_modules: install when either is missing.
( cd extension && { [[ -x node_modules/.bin/eslint && -x node_modules/.bin/prettier ]] || npm ci --no-audit --no-fund >/dev/null; } )
if ((fix)); then
  (cd extension && npx eslint --fix . ; npx prettier --write src scripts static eslint.config.mjs >/dev/null)
  dotnet format AttentionViz.sln
  exit 0
fi
check eslint bash -c 'cd extension && npx eslint --max-warnings 0 .'
check prettier bash -c 'cd extension && npx prettier --check src scripts static eslint.config.mjs'
check dotnet-format dotnet format AttentionViz.sln --verify-no-changes
check line-length line_length
echo "lint: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
