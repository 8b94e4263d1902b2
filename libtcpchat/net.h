/* libtcpchat - sockets: addresses, listen, accept, connect.  Not installed. */
#ifndef TCPCHAT_NET_H
#define TCPCHAT_NET_H

#include <netinet/in.h>
#include <sys/socket.h>

/* Big enough for IPv4 and IPv6, smaller than sockaddr_storage. */
union net_addr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

#define NET_MAX_ADDRS 8
#define NET_KEEPCNT 5 /* keepalive probes before a peer counts as gone */

/* Every address a name resolved to, in getaddrinfo's order. */
struct net_addrs {
	int n;
	union net_addr a[NET_MAX_ADDRS];
	socklen_t len[NET_MAX_ADDRS];
};

/* Parses "host:port", "[v6]:port" or ":port" (passive only) and resolves
 * host to at most NET_MAX_ADDRS distinct addresses.  Returns 0 or
 * TCPCHAT_EADDR. */
int net__resolve(const char *addr, int passive, struct net_addrs *out);
/* Socket bound and listening, non-blocking, close-on-exec. */
int net__listen(const union net_addr *a, socklen_t len, int backlog, int *fd);
/* Accepts one connection: non-blocking, close-on-exec, TCP_NODELAY.
 * Returns 0, or TCPCHAT_ESYS with errno (EAGAIN when none is pending). */
int net__accept(int lfd, int *fd, union net_addr *peer, socklen_t *len);
/* Starts a non-blocking connect.  Returns 0 (connected or in progress)
 * or TCPCHAT_ESYS. */
int net__connect(const union net_addr *a, socklen_t len, int *fd);
/* Local port of a socket, or a negative code. */
int net__local_port(int fd);
/* Tunes TCP keepalive on a connected socket so that a peer that is gone
 * is noticed within about idle_ms: SO_KEEPALIVE, and where the system
 * has them TCP_KEEPIDLE = idle/2, TCP_KEEPINTVL = idle/10 (in seconds, at
 * least 1), TCP_KEEPCNT = NET_KEEPCNT probes, and TCP_USER_TIMEOUT =
 * idle_ms, so that output a dead peer does not acknowledge ends the
 * connection too.  idle_ms 0 turns SO_KEEPALIVE off and the user timeout
 * back to the system's.  Returns 0, or TCPCHAT_ESYS (errno) when
 * SO_KEEPALIVE could not be set; the finer options are best effort. */
int net__keepalive(int fd, long long idle_ms);
/* Writes the address as "1.2.3.4:port" or "[::1]:port" into buf
 * (NUL-terminated, cut to cap).  Returns buf. */
char *net__addr_str(const union net_addr *a, char *buf, size_t cap);

#endif
