/* libtcpchat - one peer connection: read and decode, bounded outgoing
 * queue of shared frames, writev flush.  Used by server and client.
 * Loop thread only.  Not installed. */
#ifndef TCPCHAT_CONN_H
#define TCPCHAT_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* An encoded frame shared by every recipient of one message. */
struct frame {
	uint32_t refs;
	uint32_t len;
	char data[];
};

struct frame *frame__new(const char *data, size_t len);
static inline void frame__ref(struct frame *f)
{
	f->refs++;
}
void frame__unref(struct frame *f);

/* Per-loop reading state, shared by all connections of one loop: bytes
 * are read into buf and decoded there; only a partial frame left at the
 * end is copied into the connection.  Idle connections hold no buffer. */
struct reader {
	char *buf;
	size_t cap;
	char *scratch;
	size_t scratch_cap;
	tcpchat_buf enc; /* reusable encode buffer */
	char *stage;     /* small frames are gathered here to be written */
	size_t stage_cap;
};

int reader__init(struct reader *r, size_t max_frame);
void reader__fini(struct reader *r);

#define CONN_INLINE_Q 4 /* queue slots that need no allocation */

struct conn {
	unsigned char kind; /* first: tells loop event owners apart */
	int fd;
	unsigned events; /* interest registered with the loop */
	unsigned dflags; /* decode flags (TCPCHAT_FROM_SERVER, ...) */
	uint32_t rlen;   /* bytes of a partial frame in rbuf */
	char *rbuf;
	const tcpchat_codec *codec;
	struct frame **q; /* ring of queued frames: inl, or a heap array */
	struct frame *inl[CONN_INLINE_Q];
	uint32_t qhead, qcount, qcap; /* qcap: a power of two */
	uint32_t qoff;                /* bytes of q[qhead] already written */
	size_t qbytes;                /* unwritten bytes queued */
};

/* Called for each decoded message; return non-zero to stop reading
 * (e.g. the connection was closed). */
typedef int (*conn_msg_fn)(void *ctx, tcpchat_msg *msg);

struct conn_read_result {
	size_t bytes;      /* bytes read */
	const char *error; /* reason on EPROTO/EMSGSIZE */
};

/* Reads what is available (a bounded amount), decoding and handing each
 * message to fn.  Returns 0 (wait for more), 1 when fn asked to stop,
 * TCPCHAT_ECLOSED on end of stream, TCPCHAT_EPROTO / TCPCHAT_EMSGSIZE on
 * a bad frame, or TCPCHAT_ESYS. */
int conn__read(struct conn *c, struct reader *r, size_t max_frame,
               conn_msg_fn fn, void *ctx, struct conn_read_result *res);

/* Queues a frame (taking a reference).  TCPCHAT_EQUEUEFULL when the
 * queue already holds max_frames frames or max_bytes bytes (a frame is
 * always accepted into an empty queue), TCPCHAT_ENOMEM. */
int conn__push(struct conn *c, struct frame *f, uint32_t max_frames,
               size_t max_bytes);

/* Drops the oldest frame not yet started.  Returns 1 if one was dropped. */
int conn__drop_oldest(struct conn *c);

/* Writes queued frames with as few syscalls as possible.  Returns 0 when
 * the queue is empty, 1 when the socket is full, or TCPCHAT_ESYS.
 * *written gets the bytes written, *frames the frames completed. */
int conn__flush(struct conn *c, struct reader *r, size_t *written,
                size_t *frames);

/* Drops every queued frame except a partly written first one. */
void conn__drop_unsent(struct conn *c);

/* Frees buffers and queued frames; does not close the fd. */
void conn__clear(struct conn *c);

#endif
