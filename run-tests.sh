#!/usr/bin/env bash
# Builds libtcpchat and runs the whole test suite:
#   1. the default build (gcc), `meson test` - unit, integration, package,
#      man page and end-to-end program tests;
#   2. the same tests built with AddressSanitizer + UBSan (clang);
#   3. the poll(2) backend instead of epoll, and tcpchat-client's own
#      line editor instead of libedit's;
#   4. the threaded suites under ThreadSanitizer;
#   5. the C suites under valgrind's memcheck;
# after checking the formatting.  Installs what a fresh Debian 12 lacks.
# Usage: ./run-tests.sh [--quick]   (--quick: step 1 only)
set -euo pipefail
cd "$(dirname "$0")"

quick=0
[ "${1:-}" = "--quick" ] && quick=1

need=()
for cmd_pkg in meson:meson ninja:ninja-build pkg-config:pkg-config \
               cc:gcc python3:python3 nm:binutils mandoc:mandoc \
               clang:clang clang-format:clang-format valgrind:valgrind \
               tmux:tmux ss:iproute2; do
	command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || need+=("${cmd_pkg#*:}")
done
pkg-config --exists check 2>/dev/null || need+=(check)
pkg-config --exists libedit 2>/dev/null || need+=(libedit-dev)
pkg-config --exists sqlite3 2>/dev/null || need+=(libsqlite3-dev)
pkg-config --exists libcrypt 2>/dev/null || need+=(libcrypt-dev)
pkg-config --exists openssl 2>/dev/null || need+=(libssl-dev)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
pkg-config --exists hiredis 2>/dev/null || need+=(libhiredis-dev)
pkg-config --exists libnats 2>/dev/null || need+=(libnats-dev)
# The engine tests start real servers (nats-server is in /usr/sbin).
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] ||
	need+=(nats-server)
# clang's sanitizer runtimes are only recommended by clang, not required.
dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
if [ ${#need[@]} -gt 0 ]; then
	echo "run-tests: installing ${need[*]}"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Configures (or reconfigures, so that newly installed packages are seen)
# a build directory with the tests required and every warning an error
# (werror is not a project default: it would break distribution and
# subproject builds with newer compilers).
setup() {
	local dir=$1
	shift
	if [ -d "$dir/meson-info" ]; then
		meson setup --reconfigure "$dir" -Dtests=enabled -Dwerror=true "$@" >/dev/null
	else
		meson setup "$dir" -Dtests=enabled -Dwerror=true "$@" >/dev/null
	fi
	# Everything, not only what the tests link.
	meson compile -C "$dir" >/dev/null
}

echo "run-tests: format check"
bash scripts/check-format.sh

echo "run-tests: default build"
setup build -Dlibedit=enabled -Dsqlite=enabled -Dcrypt=enabled -Dtls=enabled \
	-Dredis=enabled -Dnats=enabled
meson test -C build --print-errorlogs
[ $quick -eq 1 ] && exit 0

echo "run-tests: AddressSanitizer + UBSan (clang)"
CC=clang setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
	-Dsqlite=enabled -Dcrypt=enabled -Dtls=enabled -Dredis=enabled \
	-Dnats=enabled
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --print-errorlogs

echo "run-tests: poll(2) backend"
# and tcpchat-client's own line editor instead of libedit's, and
# tcpchat-server without libcrypt, the library without TLS, Redis or NATS
setup build-poll -Dpoller=poll -Dlibedit=disabled -Dcrypt=disabled -Dtls=disabled \
	-Dredis=disabled -Dnats=disabled
meson test -C build-poll --print-errorlogs

echo "run-tests: ThreadSanitizer (unit suites)"
CC=clang setup build-tsan -Db_sanitize=thread -Db_lundef=false \
	-Dexamples=disabled
TSAN_OPTIONS=halt_on_error=1 \
	meson test -C build-tsan --suite unit --print-errorlogs

echo "run-tests: valgrind (C suites of the default build)"
meson test -C build --setup=valgrind --print-errorlogs

echo "run-tests: all green"
