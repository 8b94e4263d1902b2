/* libtcpchat - connection I/O shared by server and client. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

#define READ_CHUNK (64 * 1024)
#define READ_ROUNDS 4 /* reads per readiness, for fairness */
#define FLUSH_IOV 64
#define STAGE_SIZE (64 * 1024)
#define STAGE_FRAME_MAX 1024 /* larger frames are sent in place */
#define SMALL_PARTIAL                                                          \
	4096             /* partial frames up to this size are moved
                                back to the shared buffer to be read;
                                larger ones are read in place */
#define RING_MIN_CLASS 3 /* the smallest heap ring has 8 slots */
#define RING_CACHE_PER_CLASS 64

struct frame *frame__new(const char *data, size_t len)
{
	if (len > UINT32_MAX)
		return NULL;
	struct frame *f = malloc(sizeof *f + len);
	if (!f)
		return NULL;
	f->refs = 1;
	f->len = (uint32_t)len;
	memcpy(f->data, data, len);
	return f;
}

void frame__unref(struct frame *f)
{
	if (f && --f->refs == 0)
		free(f);
}

/* ---- shared state -------------------------------------------------------- */

static int shared_size(struct conn_shared *sh, size_t max_frame)
{
	size_t want = max_frame + READ_CHUNK;
	if (sh->cap < want) {
		char *p = realloc(sh->buf, want);
		if (!p)
			return TCPCHAT_ENOMEM;
		sh->buf = p;
		sh->cap = want;
	}
	if (sh->scratch_cap < max_frame) {
		char *p = realloc(sh->scratch, max_frame);
		if (!p)
			return TCPCHAT_ENOMEM;
		sh->scratch = p;
		sh->scratch_cap = max_frame;
	}
	return 0;
}

int conn__shared_init(struct conn_shared *sh, size_t max_frame)
{
	memset(sh, 0, sizeof *sh);
	sh->stage = malloc(STAGE_SIZE);
	if (!sh->stage)
		return TCPCHAT_ENOMEM;
	sh->stage_cap = STAGE_SIZE;
	return shared_size(sh, max_frame);
}

void conn__shared_fini(struct conn_shared *sh)
{
	for (int i = 0; i < RING_CLASSES; i++) {
		void *p = sh->ring_free[i];
		while (p) {
			void *next = *(void **)p;
			free(p);
			p = next;
		}
	}
	free(sh->buf);
	free(sh->scratch);
	free(sh->stage);
	tcpchat_buf_free(&sh->enc);
	memset(sh, 0, sizeof *sh);
}

/* ---- reading ------------------------------------------------------------- */

/* Decodes the frames in buf[0..*have); moves a partial frame to the
 * front.  Returns 0, 1 (stop) or an error. */
static void keep_head(struct conn_read_result *res, const char *p, size_t n)
{
	res->head_len = (uint32_t)TC_MIN(n, sizeof res->head);
	memcpy(res->head, p, res->head_len);
}

static int decode_all(struct conn *c, struct conn_shared *sh, char *buf,
                      size_t *have, size_t max_frame, conn_msg_fn fn, void *ctx,
                      struct conn_read_result *res)
{
	size_t pos = 0;
	int rc = 0;
	while (pos < *have) {
		size_t avail = *have - pos;
		if (c->need && avail < c->need)
			break; /* the codec said it needs more */
		tcpchat_msg m;
		memset(&m, 0, sizeof m);
		tcpchat_decode_ctx dc = {
		        .flags = c->dflags,
		        .max_frame = max_frame,
		        .scratch = sh->scratch,
		        .scratch_len = TC_MIN(avail, sh->scratch_cap),
		        .error = NULL,
		        .need = 0,
		};
		long k = c->codec->decode(c->codec->codec_data, buf + pos,
		                          avail, &m, &dc);
		if (k < 0) {
			keep_head(res, buf + pos, avail);
			res->error = dc.error ? dc.error : "malformed frame";
			rc = k == TCPCHAT_EMSGSIZE ? TCPCHAT_EMSGSIZE
			                           : TCPCHAT_EPROTO;
			break;
		}
		if (k == 0) {
			if (avail >= max_frame || dc.need > max_frame) {
				keep_head(res, buf + pos, avail);
				res->error = "frame larger than the limit";
				rc = TCPCHAT_EMSGSIZE;
			} else if (dc.need > avail) {
				c->need = (uint32_t)dc.need;
			}
			break;
		}
		if ((size_t)k > avail) {
			res->error = "codec consumed more than it was given";
			rc = TCPCHAT_EPROTO;
			break;
		}
		c->need = 0;
		pos += (size_t)k;
		res->frame = (size_t)k;
		if (m.type && fn(ctx, &m)) {
			rc = 1;
			break;
		}
	}
	if (pos && pos < *have)
		memmove(buf, buf + pos, *have - pos);
	*have -= pos;
	return rc;
}

/* Keeps buf[0..have) as the connection's partial input. */
static int keep_partial(struct conn *c, const char *buf, size_t have)
{
	if (c->rbuf && buf == c->rbuf) {
		c->rlen = (uint32_t)have;
		return 0;
	}
	size_t cap = have > SMALL_PARTIAL ? TC_MAX(have * 2, c->need) : have;
	char *p = malloc(cap);
	if (!p)
		return TCPCHAT_ENOMEM;
	memcpy(p, buf, have);
	free(c->rbuf);
	c->rbuf = p;
	c->rlen = (uint32_t)have;
	c->rcap = (uint32_t)cap;
	return 0;
}

static void drop_partial(struct conn *c)
{
	free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = c->rcap = 0;
}

/* Chooses where to read: the shared buffer, with a small partial frame
 * moved there, or the connection's own buffer, grown for a large frame
 * so that its bytes are not copied again on every read. */
static char *read_target(struct conn *c, struct conn_shared *sh,
                         size_t max_frame, size_t *have, size_t *cap)
{
	*have = c->rlen;
	if (c->rlen <= SMALL_PARTIAL) {
		if (c->rlen)
			memcpy(sh->buf, c->rbuf, c->rlen);
		drop_partial(c);
		*cap = sh->cap;
		return sh->buf;
	}
	/* Room for the whole frame when its size is known, else a chunk. */
	size_t want = c->need > c->rlen ? (size_t)c->need
	                                : c->rlen + (size_t)READ_CHUNK;
	want = TC_MIN(want, max_frame + READ_CHUNK);
	if (want > c->rcap) {
		char *p = realloc(c->rbuf, want);
		if (!p)
			return NULL;
		c->rbuf = p;
		c->rcap = (uint32_t)want;
	}
	*cap = c->rcap;
	return c->rbuf;
}

int conn__read(struct conn *c, struct conn_shared *sh, size_t max_frame,
               conn_msg_fn fn, void *ctx, struct conn_read_result *res)
{
	res->bytes = 0;
	res->frame = 0;
	res->error = NULL;
	res->head_len = 0;
	int rc = shared_size(sh, max_frame);
	if (rc)
		return rc;
	size_t have, cap;
	char *buf = read_target(c, sh, max_frame, &have, &cap);
	if (!buf)
		return TCPCHAT_ENOMEM;
	/* Past READ_ROUNDS, only what the transport already holds is read:
	 * the loop would not say it is there. */
	for (int round = 0;
	     rc == 0 && (round < READ_ROUNDS || transport__pending(&c->tp));
	     round++) {
		size_t space = cap - have;
		if (space == 0)
			break;
		ssize_t n = transport__read(&c->tp, buf + have, space);
		if (n == TRANSPORT_AGAIN)
			break;
		if (n < 0) {
			rc = (int)n;
			break;
		}
		if (n == 0) {
			rc = TCPCHAT_ECLOSED;
			break;
		}
		res->bytes += (size_t)n;
		have += (size_t)n;
		rc = decode_all(c, sh, buf, &have, max_frame, fn, ctx, res);
		if ((size_t)n < space)
			break; /* short read: the transport is drained */
	}
	if (rc == TCPCHAT_ECLOSED && have)
		keep_head(res, buf, have); /* what never made a frame */
	if (rc >= 0 && have) {
		int k = keep_partial(c, buf, have);
		if (k)
			return k;
	} else if (buf == c->rbuf) {
		if (rc < 0 || !have)
			drop_partial(c);
	}
	return rc;
}

int conn__resume(struct conn *c, struct conn_shared *sh, size_t max_frame,
                 conn_msg_fn fn, void *ctx, struct conn_read_result *res)
{
	res->bytes = 0;
	res->frame = 0;
	res->error = NULL;
	res->head_len = 0;
	if (!c->rlen)
		return 0;
	size_t have = c->rlen;
	int rc = decode_all(c, sh, c->rbuf, &have, max_frame, fn, ctx, res);
	if (rc < 0 || !have)
		drop_partial(c);
	else
		c->rlen = (uint32_t)have;
	return rc;
}

/* ---- the queue ------------------------------------------------------------ */

/* The queue is a ring of frame pointers whose capacity is a power of two:
 * CONN_INLINE_Q slots inside the connection, or a heap array while more
 * are queued, given back to the shared cache once the queue is empty. */
static inline uint32_t slot(const struct conn *c, uint32_t i)
{
	return (c->qhead + i) & (c->qcap - 1);
}

static void ring_init(struct conn *c)
{
	if (!c->q) {
		c->q = c->inl;
		c->qcap = CONN_INLINE_Q;
		c->qhead = 0;
	}
}

static int ring_class(uint32_t cap)
{
	int k = 0;
	while ((1u << k) < cap)
		k++;
	return k - RING_MIN_CLASS;
}

static struct frame **ring_get(struct conn_shared *sh, uint32_t cap)
{
	int k = ring_class(cap);
	if (k >= 0 && k < RING_CLASSES && sh->ring_free[k]) {
		void *p = sh->ring_free[k];
		sh->ring_free[k] = *(void **)p;
		sh->ring_nfree[k]--;
		return p;
	}
	return malloc((size_t)cap * sizeof(struct frame *));
}

static void ring_put(struct conn_shared *sh, struct frame **q, uint32_t cap)
{
	int k = ring_class(cap);
	if (k >= 0 && k < RING_CLASSES &&
	    sh->ring_nfree[k] < RING_CACHE_PER_CLASS) {
		*(void **)q = sh->ring_free[k];
		sh->ring_free[k] = q;
		sh->ring_nfree[k]++;
		return;
	}
	free(q);
}

/* Back to the inline slots once nothing is queued. */
static void ring_release(struct conn *c, struct conn_shared *sh)
{
	if (c->qcount == 0 && c->q && c->q != c->inl) {
		ring_put(sh, c->q, c->qcap);
		c->q = NULL;
		ring_init(c);
	}
}

int conn__push(struct conn *c, struct conn_shared *sh, struct frame *f,
               uint32_t max_frames, size_t max_bytes)
{
	if (c->qcount &&
	    (c->qcount >= max_frames || c->qbytes + f->len > max_bytes))
		return TCPCHAT_EQUEUEFULL;
	ring_init(c);
	if (c->qcount == c->qcap) {
		uint32_t n = c->qcap * 2;
		struct frame **q = ring_get(sh, n);
		if (!q)
			return TCPCHAT_ENOMEM;
		for (uint32_t i = 0; i < c->qcount; i++)
			q[i] = c->q[slot(c, i)];
		if (c->q != c->inl)
			ring_put(sh, c->q, c->qcap);
		c->q = q;
		c->qcap = n;
		c->qhead = 0;
	}
	c->q[slot(c, c->qcount)] = f;
	c->qcount++;
	c->qbytes += f->len;
	frame__ref(f);
	return 0;
}

int conn__drop_oldest(struct conn *c)
{
	uint32_t idx = c->qoff ? 1 : 0;
	if (idx >= c->qcount)
		return 0;
	uint32_t at = slot(c, idx);
	struct frame *f = c->q[at];
	if (idx == 1) /* keep the partly written head in front */
		c->q[at] = c->q[c->qhead];
	c->qhead = slot(c, 1);
	c->qcount--;
	c->qbytes -= f->len;
	frame__unref(f);
	return 1;
}

/* Describes the queued bytes for one write.  Small frames are copied
 * side by side into the staging buffer, so that the kernel copies one run
 * of bytes instead of many tiny pieces; large ones, and a frame queued
 * alone, are passed in place. */
static int gather(const struct conn *c, struct conn_shared *sh,
                  struct iovec *iov)
{
	if (c->qcount == 1) {
		const struct frame *f = c->q[c->qhead];
		iov[0].iov_base = (char *)f->data + c->qoff;
		iov[0].iov_len = f->len - c->qoff;
		return 1;
	}
	size_t staged = 0;
	int cnt = 0;
	for (uint32_t i = 0; i < c->qcount && cnt < FLUSH_IOV; i++) {
		const struct frame *f = c->q[slot(c, i)];
		size_t off = i == 0 ? c->qoff : 0;
		size_t len = f->len - off;
		if (len <= STAGE_FRAME_MAX && sh->stage_cap - staged >= len) {
			char *dst = sh->stage + staged;
			memcpy(dst, f->data + off, len);
			staged += len;
			if (cnt && (char *)iov[cnt - 1].iov_base +
			                           iov[cnt - 1].iov_len ==
			                   dst) {
				iov[cnt - 1].iov_len += len;
				continue;
			}
			iov[cnt].iov_base = dst;
		} else {
			iov[cnt].iov_base = (char *)f->data + off;
		}
		iov[cnt].iov_len = len;
		cnt++;
	}
	return cnt;
}

int conn__flush(struct conn *c, struct conn_shared *sh, size_t *written,
                size_t *frames)
{
	*written = 0;
	*frames = 0;
	int rc = transport__flush(&c->tp);
	if (rc)
		return rc == TRANSPORT_AGAIN ? 1 : rc;
	while (c->qcount) {
		struct iovec iov[FLUSH_IOV];
		int cnt = gather(c, sh, iov);
		ssize_t n = transport__writev(&c->tp, iov, cnt);
		if (n == TRANSPORT_AGAIN)
			return 1;
		if (n < 0)
			return (int)n;
		*written += (size_t)n;
		c->qbytes -= (size_t)n;
		size_t left = (size_t)n;
		while (c->qcount) { /* empty frames complete with no byte */
			struct frame *f = c->q[c->qhead];
			size_t rest = f->len - c->qoff;
			if (left < rest) {
				c->qoff += (uint32_t)left;
				break;
			}
			left -= rest;
			c->qoff = 0;
			c->qhead = slot(c, 1);
			c->qcount--;
			(*frames)++;
			frame__unref(f);
		}
	}
	ring_release(c, sh);
	return c->tp.held ? 1 : 0;
}

void conn__drop_unsent(struct conn *c)
{
	while (c->qcount > (c->qoff ? 1u : 0u)) {
		uint32_t last = slot(c, c->qcount - 1);
		c->qbytes -= c->q[last]->len;
		frame__unref(c->q[last]);
		c->qcount--;
	}
}

void conn__clear(struct conn *c, struct conn_shared *sh)
{
	while (c->qcount) {
		frame__unref(c->q[c->qhead]);
		c->qhead = slot(c, 1);
		c->qcount--;
	}
	if (c->q && c->q != c->inl)
		ring_put(sh, c->q, c->qcap);
	c->q = NULL;
	c->qcap = c->qhead = c->qoff = 0;
	c->qbytes = 0;
	drop_partial(c);
	c->need = 0;
}
