#!/bin/sh
# Installs the build into a scratch directory and builds a small consumer
# with nothing but `pkg-config --cflags --libs tcpchat`, then runs it.
# usage: check-install.sh BUILD_DIR SOURCE_DIR [PROGRAMS(yes|no)]
set -eu
build=$1
src=$2
programs=${3:-yes}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --no-rebuild --destdir "$tmp/root" --quiet >/dev/null
pc=$(find "$tmp/root" -name tcpchat.pc | head -n 1)
[ -n "$pc" ] || { echo "tcpchat.pc was not installed"; exit 1; }
want="include/tcpchat/tcpchat.h include/tcpchat/version.h"
[ "$programs" = yes ] && want="$want bin/tcpchat-server bin/tcpchat-client"
for f in $want; do
	find "$tmp/root" -path "*/$f" | grep -q . || { echo "$f was not installed"; exit 1; }
done
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
export PKG_CONFIG_LIBDIR=$(dirname "$pc")
flags=$(pkg-config --cflags --libs tcpchat)
echo "pkg-config: $flags"
${CC:-cc} -o "$tmp/consumer" "$src/tests/consumer.c" $flags
libdir=$(dirname "$(dirname "$pc")")
LD_LIBRARY_PATH="$libdir" "$tmp/consumer"
# The static library links too, when it was built.
[ -f "$libdir/libtcpchat.a" ] || exit 0
${CC:-cc} -o "$tmp/consumer-static" "$src/tests/consumer.c" \
	$(pkg-config --cflags tcpchat) "$libdir/libtcpchat.a" \
	$(pkg-config --libs-only-other --static tcpchat) -pthread
"$tmp/consumer-static"
