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
/* Output cannot move until the socket is readable (a TLS handshake waits
 * for the peer): waiting for writability would only spin. */
#define TRANSPORT_WRITE_WAITS_READ 0x4u

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
	/* Optional (NULL: the transport holds nothing).  Pushes the bytes it
	 * took but could not send yet (held), and whatever its wants were
	 * waiting for: 0 once nothing is left, TRANSPORT_AGAIN, or an error
	 * code.  A read that waited for the socket to take output is then
	 * announced by pending(). */
	int (*flush)(struct transport *t);
	/* Optional: input bytes already read from the socket and waiting in
	 * the transport (the loop is not told about them). */
	size_t (*pending)(const struct transport *t);
	/* Optional: the subject of the peer's verified certificate, or
	 * NULL. */
	const char *(*peer_subject)(const struct transport *t);
	/* Optional: why the last call failed with TCPCHAT_ETLS, or NULL. */
	const char *(*error)(const struct transport *t);
};

struct transport {
	const struct transport_ops *ops;
	int fd;         /* -1 once closed */
	unsigned wants; /* TRANSPORT_WANT_* */
	size_t held;    /* bytes taken by writev, not yet on the wire */
	void *impl;     /* the transport's own state, e.g. an SSL object */
};

/* Plain TCP over an open, non-blocking socket. */
void transport__tcp(struct transport *t, int fd);

/* Completes a non-blocking TCP connect on fd, as ops->connected. */
int transport__tcp_connected(int fd);

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
static inline int transport__flush(struct transport *t)
{
	return (t->held || t->wants) && t->ops->flush ? t->ops->flush(t) : 0;
}
static inline size_t transport__pending(const struct transport *t)
{
	return t->ops->pending ? t->ops->pending(t) : 0;
}
static inline const char *transport__peer_subject(const struct transport *t)
{
	return t->fd >= 0 && t->ops->peer_subject ? t->ops->peer_subject(t)
	                                          : NULL;
}
/* Why the last TCPCHAT_ETLS: never NULL. */
static inline const char *transport__error(const struct transport *t)
{
	const char *e = t->ops->error ? t->ops->error(t) : NULL;
	return e ? e : "TLS error";
}
static inline void transport__close(struct transport *t, int drain)
{
	if (t->fd >= 0)
		t->ops->close(t, drain);
	t->fd = -1;
}

#endif
