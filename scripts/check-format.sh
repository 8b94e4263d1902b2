#!/usr/bin/env bash
# Fails when a C file differs from what clang-format makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The public headers (include/) are aligned by hand for reading and are
# not checked.
files=$(git ls-files '*.c' '*.h' | grep -v '^include/')
bad=0
for f in $files; do
	if ! clang-format --style=file "$f" | cmp -s - "$f"; then
		echo "format: $f differs from clang-format (run: clang-format -i $f)"
		bad=1
	fi
done
exit $bad
