#!/usr/bin/env bash
# Fails when a C file differs from what clang-format makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
bad=0
for f in $files; do
	if ! clang-format --style=file "$f" | cmp -s - "$f"; then
		echo "format: $f differs from clang-format (run: clang-format -i $f)"
		bad=1
	fi
done
exit $bad
