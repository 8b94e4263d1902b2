#!/bin/sh
# Fails when the shared library exports a symbol without the tcpchat_
# prefix, or exports none of the public API.
set -eu
lib="$1"
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDRBVW]$/ {print $3}')
[ -n "$syms" ] || { echo "no exported symbols in $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^tcpchat_' || true)
if [ -n "$bad" ]; then
	echo "symbols exported without the tcpchat_ prefix:"
	printf '%s\n' "$bad"
	exit 1
fi
for want in tcpchat_server_new tcpchat_client_new tcpchat_strerror \
            tcpchat_codec_binary; do
	printf '%s\n' "$syms" | grep -qx "$want" || { echo "missing $want"; exit 1; }
done
echo "$(printf '%s\n' "$syms" | wc -l) exported symbols, all tcpchat_*"
