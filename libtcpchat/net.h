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

/* Parses "host:port", "[v6]:port" or ":port" (passive only) and resolves
 * host.  Returns 0 or TCPCHAT_EADDR. */
int net__resolve(const char *addr, int passive, union net_addr *out,
                 socklen_t *len);
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
/* Formats an address as "host:port" / "[v6]:port". */
void net__format(const struct sockaddr *sa, char *buf, size_t size);

#endif
