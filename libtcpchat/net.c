/* libtcpchat - address parsing and non-blocking sockets. */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "net.h"

int net__resolve(const char *addr, int passive, struct net_addrs *out)
{
	char host[256];
	const char *port;
	if (!addr || !*addr)
		return TCPCHAT_EADDR;
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (!end || end[1] != ':' ||
		    (size_t)(end - addr - 1) >= sizeof host)
			return TCPCHAT_EADDR;
		memcpy(host, addr + 1, (size_t)(end - addr - 1));
		host[end - addr - 1] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof host)
			return TCPCHAT_EADDR;
		if (memchr(addr, ':', (size_t)(colon - addr)))
			return TCPCHAT_EADDR; /* bare IPv6 needs brackets */
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
		port = colon + 1;
	}
	/* Port: 1-5 digits, 0..65535. */
	size_t plen = strlen(port);
	if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen ||
	    atol(port) > 65535)
		return TCPCHAT_EADDR;
	if (!host[0] && !passive)
		return TCPCHAT_EADDR;

	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	if (!host[0])
		hints.ai_family = AF_INET;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res)
		return TCPCHAT_EADDR;
	out->n = 0;
	for (struct addrinfo *ai = res; ai && out->n < NET_MAX_ADDRS;
	     ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof out->a[0])
			continue;
		int dup = 0;
		for (int i = 0; i < out->n; i++)
			if (out->len[i] == ai->ai_addrlen &&
			    memcmp(&out->a[i], ai->ai_addr, ai->ai_addrlen) ==
			            0)
				dup = 1;
		if (dup)
			continue;
		memset(&out->a[out->n], 0, sizeof out->a[0]);
		memcpy(&out->a[out->n], ai->ai_addr, ai->ai_addrlen);
		out->len[out->n] = ai->ai_addrlen;
		out->n++;
	}
	freeaddrinfo(res);
	return out->n ? 0 : TCPCHAT_EADDR;
}

static int new_socket(int family)
{
#ifdef SOCK_CLOEXEC
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 || errno != EINVAL)
		return fd;
#endif
	fd = socket(family, SOCK_STREAM, 0);
	if (fd >= 0 && util__nonblock_cloexec(fd) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int net__listen(const union net_addr *a, socklen_t len, int backlog, int *out)
{
	int fd = new_socket(a->sa.sa_family);
	if (fd < 0)
		return TCPCHAT_ESYS;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (a->sa.sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, &a->sa, len) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return TCPCHAT_ESYS;
	}
	*out = fd;
	return 0;
}

int net__accept(int lfd, int *out, union net_addr *peer, socklen_t *len)
{
	*len = sizeof *peer;
	int fd;
#if TCPCHAT_HAVE_ACCEPT4
	fd = accept4(lfd, &peer->sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
	fd = accept(lfd, &peer->sa, len);
	if (fd >= 0 && util__nonblock_cloexec(fd) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return TCPCHAT_ESYS;
	}
#endif
	if (fd < 0)
		return TCPCHAT_ESYS;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	*out = fd;
	return 0;
}

int net__connect(const union net_addr *a, socklen_t len, int *out)
{
	int fd = new_socket(a->sa.sa_family);
	if (fd < 0)
		return TCPCHAT_ESYS;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, &a->sa, len) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return TCPCHAT_ESYS;
	}
	*out = fd;
	return 0;
}

int net__local_port(int fd)
{
	union net_addr a;
	socklen_t len = sizeof a;
	if (getsockname(fd, &a.sa, &len) < 0)
		return TCPCHAT_ESYS;
	if (a.sa.sa_family == AF_INET)
		return ntohs(a.in4.sin_port);
	if (a.sa.sa_family == AF_INET6)
		return ntohs(a.in6.sin6_port);
	return TCPCHAT_EINVAL;
}

/* Sets an int socket option; errors are ignored by the callers that say
 * so. */
static int set_int(int fd, int level, int name, int value)
{
	return setsockopt(fd, level, name, &value, sizeof value);
}

int net__keepalive(int fd, long long idle_ms)
{
	int on = idle_ms > 0;
	if (set_int(fd, SOL_SOCKET, SO_KEEPALIVE, on) < 0)
		return TCPCHAT_ESYS;
	/* idle_ms is at most INT32_MAX (the option's range) */
	int secs = on ? (int)(idle_ms / 1000) : 0;
	int idle = TC_MAX(1, secs / 2), intvl = TC_MAX(1, secs / 10);
	if (on) {
#ifdef TCP_KEEPIDLE
		set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle);
#elif defined(TCP_KEEPALIVE) /* macOS: the idle time, in seconds */
		set_int(fd, IPPROTO_TCP, TCP_KEEPALIVE, idle);
#endif
#ifdef TCP_KEEPINTVL
		set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, intvl);
#endif
#ifdef TCP_KEEPCNT
		set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, NET_KEEPCNT);
#endif
	}
#ifdef TCP_USER_TIMEOUT
	/* 0: the system's default */
	set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, on ? (int)idle_ms : 0);
#endif
	TC_UNUSED(idle);
	TC_UNUSED(intvl);
	return 0;
}

char *net__addr_str(const union net_addr *a, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN];
	if (a->sa.sa_family == AF_INET6 &&
	    inet_ntop(AF_INET6, &a->in6.sin6_addr, host, sizeof host))
		snprintf(buf, cap, "[%s]:%u", host,
		         (unsigned)ntohs(a->in6.sin6_port));
	else if (a->sa.sa_family == AF_INET &&
	         inet_ntop(AF_INET, &a->in4.sin_addr, host, sizeof host))
		snprintf(buf, cap, "%s:%u", host,
		         (unsigned)ntohs(a->in4.sin_port));
	else
		snprintf(buf, cap, "?");
	return buf;
}
