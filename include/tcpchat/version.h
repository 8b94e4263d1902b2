/* libtcpchat - version macros.  SPDX-License-Identifier: MIT */
#ifndef TCPCHAT_VERSION_H
#define TCPCHAT_VERSION_H

#define TCPCHAT_VERSION_MAJOR 0
#define TCPCHAT_VERSION_MINOR 1
#define TCPCHAT_VERSION_PATCH 0
#define TCPCHAT_VERSION_STRING "0.1.0"

/* One number, 0xMMmmpp: 0.1.0 is 0x000100. */
#define TCPCHAT_VERSION_NUM                                                    \
	((TCPCHAT_VERSION_MAJOR << 16) | (TCPCHAT_VERSION_MINOR << 8) |        \
	 TCPCHAT_VERSION_PATCH)

/* True when the headers are at least version x.y.z. */
#define TCPCHAT_CHECK_VERSION(x, y, z)                                         \
	(TCPCHAT_VERSION_NUM >= (((x) << 16) | ((y) << 8) | (z)))

/* Version of the wire protocol spoken in the handshake. */
#define TCPCHAT_PROTOCOL_VERSION 1

#endif
