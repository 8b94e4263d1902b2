#!/usr/bin/env bash
# Installs what is missing, builds libtcpchat and starts the demo server on
# loopback: binary protocol on 127.0.0.1:7070, line protocol (for nc) on
# 127.0.0.1:7071.  Ctrl-C stops it.  Extra arguments go to tcpchat-server.
set -euo pipefail
cd "$(dirname "$0")"

need=()
for cmd_pkg in meson:meson ninja:ninja-build pkg-config:pkg-config cc:gcc; do
	command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || need+=("${cmd_pkg#*:}")
done
command -v nc >/dev/null 2>&1 || need+=(netcat-openbsd)
if [ ${#need[@]} -gt 0 ]; then
	echo "demo: installing ${need[*]}"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -d build/meson-info ] || meson setup build >/dev/null
meson compile -C build >/dev/null

cat <<MSG

  libtcpchat demo server. Connect from another terminal with

      $PWD/build/examples/tcpchat-client --name alice
      nc 127.0.0.1 7071            (type your name first, then chat)

  /who lists users, /quit leaves.  Ctrl-C here stops the server.

MSG
exec build/examples/tcpchat-server "$@"
