/* libtcpchat - transports: how a connection's bytes reach its socket.
 * Plain TCP is the built-in one; others (TLS) register their own table.
 * Nothing above this layer calls socket functions on a connection.
 * Loop thread only.  Not installed. */
#ifndef TCPCHAT_TRANSPORT_H
#define TCPCHAT_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Results besides a byte count. */
#define TRANSPORT_AGAIN (-1000) /* nothing can move now: see wants */

/* What the transport needs from the loop before it can go on, on top of
 * what the connection asks for (a TLS handshake may need to write while
 * the connection only reads, or the reverse). */
#define TRANSPORT_WANT_READ 0x1u
#define TRANSPORT_WANT_WRITE 0x2u

struct transport;

struct transport_ops {
	const char *name;
	/* Completes a non-blocking connect: 0 when connected,
	 * TRANSPORT_AGAIN while still in progress, TCPCHAT_ESYS (errno). */
	int (*connected)(struct transport *t);
	/* Reads up to len bytes: the count, 0 at end of stream,
	 * TRANSPORT_AGAIN, or TCPCHAT_ESYS (errno). */
	ssize_t (*read)(struct transport *t, void *buf, size_t len);
	/* Writes from iov[0..cnt): the count (possibly short),
	 * TRANSPORT_AGAIN, or TCPCHAT_ESYS (errno). */
	ssize_t (*writev)(struct transport *t, const struct iovec *iov,
	                  int cnt);
	/* Ends the outgoing direction once everything written is sent. */
	void (*shutdown)(struct transport *t);
	/* Releases the connection: reads what the peer still sent (so that
	 * close does not answer with a reset that could discard our last
	 * bytes) when drain is set, then closes the descriptor. */
	void (*close)(struct transport *t, int drain);
};

struct transport {
	const struct transport_ops *ops;
	int fd;         /* -1 once closed */
	unsigned wants; /* TRANSPORT_WANT_* */
	void *impl;     /* the transport's own state, e.g. an SSL object */
};

/* Plain TCP over an open, non-blocking socket. */
void transport__tcp(struct transport *t, int fd);

/* For a socket refused before it becomes a connection: one write attempt
 * of data[0..len), then close. */
void transport__refuse(int fd, const void *data, size_t len);

static inline ssize_t transport__read(struct transport *t, void *buf,
                                      size_t len)
{
	return t->ops->read(t, buf, len);
}
static inline ssize_t transport__writev(struct transport *t,
                                        const struct iovec *iov, int cnt)
{
	return t->ops->writev(t, iov, cnt);
}
static inline void transport__shutdown(struct transport *t)
{
	if (t->fd >= 0)
		t->ops->shutdown(t);
}
static inline void transport__close(struct transport *t, int drain)
{
	if (t->fd >= 0)
		t->ops->close(t, drain);
	t->fd = -1;
}

#endif
