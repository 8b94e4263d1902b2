/* libtcpchat - the plain TCP transport. */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "transport.h"

#define DRAIN_ROUNDS 16

int transport__tcp_connected(int fd)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return TRANSPORT_AGAIN;
	if (err) {
		errno = err;
		return TCPCHAT_ESYS;
	}
	/* SO_ERROR stays 0 while the connect is in progress: only a peer
	 * address says it is done. */
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
		return errno == ENOTCONN ? TRANSPORT_AGAIN : TCPCHAT_ESYS;
	return 0;
}

static int tcp_connected(struct transport *t)
{
	return transport__tcp_connected(t->fd);
}

static ssize_t tcp_read(struct transport *t, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(t->fd, buf, len);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return TRANSPORT_AGAIN;
		return TCPCHAT_ESYS;
	}
}

static ssize_t tcp_writev(struct transport *t, const struct iovec *iov, int cnt)
{
	struct msghdr mh = {0};
	mh.msg_iov = (struct iovec *)iov;
	mh.msg_iovlen = (size_t)cnt;
	for (;;) {
		ssize_t n = sendmsg(t->fd, &mh, MSG_NOSIGNAL);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return TRANSPORT_AGAIN;
		return TCPCHAT_ESYS;
	}
}

static void tcp_shutdown(struct transport *t)
{
	shutdown(t->fd, SHUT_WR);
}

static void tcp_close(struct transport *t, int drain)
{
	if (drain) {
		char junk[4096];
		for (int i = 0; i < DRAIN_ROUNDS; i++)
			if (read(t->fd, junk, sizeof junk) <= 0)
				break;
	}
	close(t->fd);
	t->fd = -1;
}

static const struct transport_ops tcp_ops = {
        .name = "tcp",
        .connected = tcp_connected,
        .read = tcp_read,
        .writev = tcp_writev,
        .shutdown = tcp_shutdown,
        .close = tcp_close,
};

void transport__tcp(struct transport *t, int fd)
{
	t->ops = &tcp_ops;
	t->fd = fd;
	t->wants = 0;
	t->held = 0;
	t->impl = NULL;
}

void transport__refuse(int fd, const void *data, size_t len)
{
	if (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		TC_UNUSED(n);
	}
	close(fd);
}
