/* libtcpchat - one peer connection: read and decode, a bounded outgoing
 * queue of shared frames, batched flush through the transport.  Used by
 * server and client.  Loop thread only.  Not installed. */
#ifndef TCPCHAT_CONN_H
#define TCPCHAT_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "loop.h"
#include "transport.h"

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

#define RING_CLASSES 16 /* ring arrays of 8 .. 8 << 15 slots */

/* Per-loop state shared by every connection of one server or client:
 * bytes are read into buf and decoded there, so idle connections hold no
 * buffer; enc is a reusable encode buffer; small frames are gathered in
 * stage for one write; ring arrays freed by drained queues wait in a
 * cache for the next burst instead of going back to malloc. */
struct conn_shared {
	char *buf;
	size_t cap;
	char *scratch;
	size_t scratch_cap;
	tcpchat_buf enc;
	char *stage;
	size_t stage_cap;
	void *ring_free[RING_CLASSES]; /* singly linked through slot 0 */
	uint32_t ring_nfree[RING_CLASSES];
};

int conn__shared_init(struct conn_shared *sh, size_t max_frame);
void conn__shared_fini(struct conn_shared *sh);

#define CONN_INLINE_Q 4 /* queue slots that need no allocation */

struct conn {
	struct transport tp;
	struct loop_watcher w; /* interest registered: w.events */
	const tcpchat_codec *codec;
	/* a partial frame: rbuf[0..rlen) of rcap, needing `need` bytes */
	char *rbuf;
	uint32_t rlen, rcap, need;
	unsigned dflags; /* decode flags (TCPCHAT_FROM_SERVER, ...) */
	/* ring of queued frames: inl, or an array from the shared cache */
	struct frame **q;
	struct frame *inl[CONN_INLINE_Q];
	uint32_t qhead, qcount, qcap; /* qcap: a power of two */
	uint32_t qoff;                /* bytes of q[qhead] already written */
	size_t qbytes;                /* unwritten bytes queued */
};

/* The loop interest a connection needs: what it asks for (LOOP_READ,
 * LOOP_WRITE) plus what its transport needs to make progress. */
static inline unsigned conn__interest(const struct conn *c, unsigned ev)
{
	if (c->tp.wants & TRANSPORT_WRITE_WAITS_READ)
		ev = (ev & ~LOOP_WRITE) | LOOP_READ;
	if (c->tp.wants & TRANSPORT_WANT_READ)
		ev |= LOOP_READ;
	if (c->tp.wants & TRANSPORT_WANT_WRITE)
		ev |= LOOP_WRITE;
	return ev;
}

/* 1 when nothing is left to write: no frame queued, no byte held by
 * the transport. */
static inline int conn__drained(const struct conn *c)
{
	return c->qcount == 0 && c->tp.held == 0;
}

/* Called for each decoded message; return non-zero to stop reading
 * (e.g. the connection was closed or paused). */
typedef int (*conn_msg_fn)(void *ctx, tcpchat_msg *msg);

struct conn_read_result {
	size_t bytes;      /* bytes read */
	size_t frame;      /* bytes of the frame whose message fn has */
	const char *error; /* reason on EPROTO/EMSGSIZE */
	/* on EPROTO/EMSGSIZE: the first bytes of the frame that failed; on
	 * ECLOSED: of the partial frame left (head_len 0: none) */
	uint32_t head_len;
	char head[24];
};

/* Reads what is available (a bounded amount), decoding and handing each
 * message to fn.  Returns 0 (wait for more), 1 when fn asked to stop,
 * TCPCHAT_ECLOSED on end of stream, TCPCHAT_EPROTO / TCPCHAT_EMSGSIZE on
 * a bad frame, TCPCHAT_ENOMEM or TCPCHAT_ESYS. */
int conn__read(struct conn *c, struct conn_shared *sh, size_t max_frame,
               conn_msg_fn fn, void *ctx, struct conn_read_result *res);

/* Decodes what is already buffered (after a pause), as conn__read. */
int conn__resume(struct conn *c, struct conn_shared *sh, size_t max_frame,
                 conn_msg_fn fn, void *ctx, struct conn_read_result *res);

/* Queues a frame (taking a reference).  TCPCHAT_EQUEUEFULL when the
 * queue already holds max_frames frames or max_bytes bytes (a frame is
 * always accepted into an empty queue), TCPCHAT_ENOMEM. */
int conn__push(struct conn *c, struct conn_shared *sh, struct frame *f,
               uint32_t max_frames, size_t max_bytes);

/* Drops the oldest frame not yet started.  Returns 1 if one was dropped. */
int conn__drop_oldest(struct conn *c);

/* Writes queued frames with as few writes as possible.  Returns 0 when
 * everything is written (conn__drained), 1 when the transport takes no
 * more now, or the transport's error (TCPCHAT_ESYS, TCPCHAT_ETLS).  *written gets the bytes written, *frames the frames
 * completed. */
int conn__flush(struct conn *c, struct conn_shared *sh, size_t *written,
                size_t *frames);

/* Drops every queued frame except a partly written first one. */
void conn__drop_unsent(struct conn *c);

/* Frees buffers and queued frames; does not close the transport. */
void conn__clear(struct conn *c, struct conn_shared *sh);

#endif
