#!/bin/sh
# 1. Installs the build into a scratch directory (DESTDIR) and builds a
#    small consumer with nothing but `pkg-config --cflags --libs tcpchat`,
#    then runs it with LD_LIBRARY_PATH.
# 2. With the programs: installs a fresh build of the source into a
#    scratch prefix, as `meson install` into /usr/local or /opt would, and
#    runs the installed programs and a consumer linked with
#    -Wl,-rpath,$(pkg-config --variable=libdir tcpchat) WITHOUT
#    LD_LIBRARY_PATH: each must load the library of that prefix.
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
# The system's own .pc files stay visible: tcpchat.pc may require one
# (sqlite3, when the library was built with the SQLite store).
sys_pc=$(pkg-config --variable pc_path pkg-config)
(
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
export PKG_CONFIG_LIBDIR="$(dirname "$pc"):$sys_pc"
flags=$(pkg-config --cflags --libs tcpchat)
echo "pkg-config: $flags"
${CC:-cc} -o "$tmp/consumer" "$src/tests/consumer.c" $flags
libdir=$(dirname "$(dirname "$pc")")
LD_LIBRARY_PATH="$libdir" "$tmp/consumer"
# The static library links too, when it was built.
[ -f "$libdir/libtcpchat.a" ] || exit 0
${CC:-cc} -o "$tmp/consumer-static" "$src/tests/consumer.c" \
	$(pkg-config --cflags tcpchat) "$libdir/libtcpchat.a" \
	$(pkg-config --libs --static tcpchat | sed 's/-L[^ ]*//g; s/-ltcpchat//') \
	-pthread
"$tmp/consumer-static"
)
[ "$programs" = yes ] || exit 0

# 2. A real prefix: the rpath of the installed programs points into it.
prefix="$tmp/prefix"
meson setup "$tmp/build" "$src" --prefix "$prefix" -Dtests=disabled \
	-Dexamples=enabled >"$tmp/setup.log" 2>&1 ||
	{ cat "$tmp/setup.log"; exit 1; }
meson compile -C "$tmp/build" >"$tmp/compile.log" 2>&1 ||
	{ cat "$tmp/compile.log"; exit 1; }
meson install -C "$tmp/build" --no-rebuild --quiet >/dev/null
unset LD_LIBRARY_PATH
# Loads libtcpchat.so.0 from the prefix, or fails with the loader's error.
loads_from_prefix() {
	if command -v ldd >/dev/null 2>&1; then
		line=$(ldd "$1" | grep 'libtcpchat\.so' || true)
		case $line in
		*"=> $prefix/"*) ;;
		*) echo "$1 does not load libtcpchat from $prefix:"
		   ldd "$1"; return 1 ;;
		esac
	fi
}
for prog in tcpchat-server tcpchat-client; do
	loads_from_prefix "$prefix/bin/$prog"
	"$prefix/bin/$prog" --version
done
export PKG_CONFIG_LIBDIR="$(dirname "$(find "$prefix" -name tcpchat.pc)"):$sys_pc"
libdir=$(pkg-config --variable=libdir tcpchat)
${CC:-cc} -o "$tmp/consumer-rpath" "$src/tests/consumer.c" \
	$(pkg-config --cflags --libs tcpchat) -Wl,-rpath,"$libdir"
loads_from_prefix "$tmp/consumer-rpath"
"$tmp/consumer-rpath"
