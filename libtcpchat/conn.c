/* libtcpchat - connection I/O shared by server and client. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"

#define READ_CHUNK (64 * 1024)
#define READ_ROUNDS 4 /* reads per readiness, for fairness */
#define FLUSH_IOV 64
#define STAGE_SIZE (64 * 1024)
#define STAGE_FRAME_MAX 1024 /* larger frames are sent in place */

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

static int reader_size(struct reader *r, size_t max_frame)
{
	size_t want = max_frame + READ_CHUNK;
	if (r->cap < want) {
		char *p = realloc(r->buf, want);
		if (!p)
			return TCPCHAT_ENOMEM;
		r->buf = p;
		r->cap = want;
	}
	if (r->scratch_cap < max_frame) {
		char *p = realloc(r->scratch, max_frame);
		if (!p)
			return TCPCHAT_ENOMEM;
		r->scratch = p;
		r->scratch_cap = max_frame;
	}
	return 0;
}

int reader__init(struct reader *r, size_t max_frame)
{
	memset(r, 0, sizeof *r);
	r->stage = malloc(STAGE_SIZE);
	if (!r->stage)
		return TCPCHAT_ENOMEM;
	r->stage_cap = STAGE_SIZE;
	return reader_size(r, max_frame);
}

void reader__fini(struct reader *r)
{
	free(r->buf);
	free(r->scratch);
	free(r->stage);
	tcpchat_buf_free(&r->enc);
	memset(r, 0, sizeof *r);
}

/* Decodes the frames in buf[0..*have); moves a partial frame to the
 * front.  Returns 0, 1 (stop) or an error. */
static int decode_all(struct conn *c, struct reader *r, size_t *have,
                      size_t max_frame, conn_msg_fn fn, void *ctx,
                      struct conn_read_result *res)
{
	size_t pos = 0;
	int rc = 0;
	while (pos < *have) {
		tcpchat_msg m;
		memset(&m, 0, sizeof m);
		size_t avail = *have - pos;
		tcpchat_decode_ctx dc = {
		        .flags = c->dflags,
		        .max_frame = max_frame,
		        .scratch = r->scratch,
		        .scratch_len = TC_MIN(avail, r->scratch_cap),
		        .error = NULL,
		};
		long k = c->codec->decode(c->codec->codec_data, r->buf + pos,
		                          avail, &m, &dc);
		if (k < 0) {
			res->error = dc.error ? dc.error : "malformed frame";
			rc = k == TCPCHAT_EMSGSIZE ? TCPCHAT_EMSGSIZE
			                           : TCPCHAT_EPROTO;
			break;
		}
		if (k == 0) {
			if (avail >= max_frame) {
				res->error = "frame larger than the limit";
				rc = TCPCHAT_EMSGSIZE;
			}
			break;
		}
		if ((size_t)k > avail) {
			res->error = "codec consumed more than it was given";
			rc = TCPCHAT_EPROTO;
			break;
		}
		pos += (size_t)k;
		if (m.type && fn(ctx, &m)) {
			rc = 1;
			break;
		}
	}
	if (pos && pos < *have)
		memmove(r->buf, r->buf + pos, *have - pos);
	*have -= pos;
	return rc;
}

int conn__read(struct conn *c, struct reader *r, size_t max_frame,
               conn_msg_fn fn, void *ctx, struct conn_read_result *res)
{
	res->bytes = 0;
	res->error = NULL;
	int rc = reader_size(r, max_frame);
	if (rc)
		return rc;
	size_t have = c->rlen;
	if (have) {
		memcpy(r->buf, c->rbuf, have);
		free(c->rbuf);
		c->rbuf = NULL;
		c->rlen = 0;
	}
	for (int round = 0; round < READ_ROUNDS && rc == 0; round++) {
		size_t space = r->cap - have;
		ssize_t n = read(c->fd, r->buf + have, space);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				rc = TCPCHAT_ESYS;
			break;
		}
		if (n == 0) {
			rc = TCPCHAT_ECLOSED;
			break;
		}
		res->bytes += (size_t)n;
		have += (size_t)n;
		rc = decode_all(c, r, &have, max_frame, fn, ctx, res);
		if ((size_t)n < space)
			break; /* short read: the socket is drained */
	}
	if (rc == 0 && have) {
		c->rbuf = malloc(have);
		if (!c->rbuf)
			return TCPCHAT_ENOMEM;
		memcpy(c->rbuf, r->buf, have);
		c->rlen = (uint32_t)have;
	}
	return rc;
}

/* The queue is a ring of frame pointers whose capacity is a power of two:
 * CONN_INLINE_Q slots inside the connection, or a heap array while more
 * are queued (given back as soon as the queue is empty again). */
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

/* Back to the inline slots once nothing is queued. */
static void ring_release(struct conn *c)
{
	if (c->qcount == 0 && c->q != c->inl) {
		free(c->q);
		c->q = NULL;
		ring_init(c);
	}
}

int conn__push(struct conn *c, struct frame *f, uint32_t max_frames,
               size_t max_bytes)
{
	if (c->qcount &&
	    (c->qcount >= max_frames || c->qbytes + f->len > max_bytes))
		return TCPCHAT_EQUEUEFULL;
	ring_init(c);
	if (c->qcount == c->qcap) {
		uint32_t n = c->qcap * 2;
		struct frame **q = malloc((size_t)n * sizeof *q);
		if (!q)
			return TCPCHAT_ENOMEM;
		for (uint32_t i = 0; i < c->qcount; i++)
			q[i] = c->q[slot(c, i)];
		if (c->q != c->inl)
			free(c->q);
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

/* Describes the queued bytes for one sendmsg.  Small frames are copied
 * side by side into the loop's staging buffer, so that the kernel copies
 * one run of bytes instead of many tiny pieces; large ones are passed by
 * reference. */
static int gather(const struct conn *c, struct reader *r, struct iovec *iov)
{
	size_t staged = 0;
	int cnt = 0;
	for (uint32_t i = 0; i < c->qcount && cnt < FLUSH_IOV; i++) {
		const struct frame *f = c->q[slot(c, i)];
		size_t off = i == 0 ? c->qoff : 0;
		size_t len = f->len - off;
		if (len <= STAGE_FRAME_MAX && r->stage_cap - staged >= len) {
			char *dst = r->stage + staged;
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

int conn__flush(struct conn *c, struct reader *r, size_t *written,
                size_t *frames)
{
	*written = 0;
	*frames = 0;
	while (c->qcount) {
		struct iovec iov[FLUSH_IOV];
		int cnt = gather(c, r, iov);
		struct msghdr mh = {0};
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)cnt;
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return TCPCHAT_ESYS;
		}
		*written += (size_t)n;
		c->qbytes -= (size_t)n;
		size_t left = (size_t)n;
		while (left) {
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
	ring_release(c);
	return 0;
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

void conn__clear(struct conn *c)
{
	while (c->qcount) {
		frame__unref(c->q[c->qhead]);
		c->qhead = slot(c, 1);
		c->qcount--;
	}
	if (c->q != c->inl)
		free(c->q);
	c->q = NULL;
	c->qcap = c->qhead = c->qoff = 0;
	c->qbytes = 0;
	free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = 0;
}
