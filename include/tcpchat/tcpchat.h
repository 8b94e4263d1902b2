/* libtcpchat - embeddable TCP chat server and client.
 * SPDX-License-Identifier: MIT
 *
 * Include this one header.  See tcpchat(3) for an overview, and
 * tcpchat/server.h, tcpchat/client.h and tcpchat/codec.h for each part.
 * Build flags: pkg-config --cflags --libs tcpchat
 */
#ifndef TCPCHAT_TCPCHAT_H
#define TCPCHAT_TCPCHAT_H

#include "client.h"
#include "codec.h"
#include "core.h"
#include "server.h"
#include <tcpchat/version.h>

#endif
