/* libtcpchat - a room's recent history, in memory, and the answers to
 * HISTORY requests and resumes.
 *
 * Each room keeps its last texts in a ring, oldest first, bounded by
 * HISTORY_MSGS texts and HISTORY_BYTES bytes (of sender and body): a new
 * text pushes the oldest out.  The ring is contiguous: it holds every
 * text from `oldest` to the room's last seq, so what is missing is always
 * "everything before oldest", and an answer says so (the GAP flag).
 *
 * Answers go to the asker's queue outside its limits (like a control
 * message: a history is never cut by the slow-consumer policy), so a
 * HISTORY request is refused while the asker's queue is over half its
 * limits: one answer at most is queued beyond them. */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define HISTORY_DEFAULT 50 /* texts in an answer that gives no limit */
#define HISTORY_ANSWER_MAX 1000

struct hist_msg {
	uint64_t seq, id;
	int64_t ts;
	uint32_t body_len;
	uint8_t sender_len;
	char data[]; /* sender, then body */
};

static size_t hist_size(const struct hist_msg *h)
{
	return sizeof *h + h->sender_len + h->body_len;
}

static struct hist_msg *hist_at(const struct room *r, uint32_t i)
{
	return r->hist[(r->hhead + i) & (r->hcap - 1)];
}

static void hist_drop_oldest(tcpchat_server *srv, struct room *r)
{
	struct hist_msg *h = r->hist[r->hhead];
	r->hist[r->hhead] = NULL;
	r->hhead = (r->hhead + 1) & (r->hcap - 1);
	r->hcount--;
	r->hbytes -= hist_size(h);
	srv->hist_bytes -= hist_size(h);
	free(h);
}

void srv__hist_clear(tcpchat_server *srv, struct room *r)
{
	while (r->hcount)
		hist_drop_oldest(srv, r);
	free(r->hist);
	r->hist = NULL;
	r->hcap = r->hhead = 0;
}

uint64_t srv__hist_oldest(const struct room *r)
{
	return r->hcount ? hist_at(r, 0)->seq : r->last_seq + 1;
}

/* Makes room for one more in the ring (a power of two, grown up to
 * HISTORY_MSGS).  Returns 0 or TCPCHAT_ENOMEM. */
static int hist_grow(struct room *r)
{
	if (r->hcount < r->hcap)
		return 0;
	uint32_t cap = r->hcap ? r->hcap * 2 : 8;
	struct hist_msg **n = malloc(cap * sizeof *n);
	if (!n)
		return TCPCHAT_ENOMEM;
	for (uint32_t i = 0; i < r->hcount; i++)
		n[i] = hist_at(r, i);
	free(r->hist);
	r->hist = n;
	r->hcap = cap;
	r->hhead = 0;
	return 0;
}

/* Keeps the numbered TEXT m in r's history.  When it cannot (no memory),
 * the history is emptied instead, so that it stays contiguous: what is
 * kept then starts after m. */
void srv__hist_add(tcpchat_server *srv, struct room *r, const tcpchat_msg *m)
{
	uint32_t max = (uint32_t)srv->history_msgs;
	size_t cap = (size_t)srv->history_bytes;
	if (max == 0)
		return;
	size_t n = sizeof(struct hist_msg) + m->sender.len + m->body.len;
	struct hist_msg *h = n <= cap ? malloc(n) : NULL;
	while (r->hcount && (r->hcount >= max || r->hbytes + n > cap))
		hist_drop_oldest(srv, r);
	if (!h || hist_grow(r) != 0) {
		free(h);
		srv__hist_clear(srv, r);
		return;
	}
	h->seq = m->seq;
	h->id = m->id;
	h->ts = m->timestamp;
	h->body_len = (uint32_t)m->body.len;
	h->sender_len = (uint8_t)m->sender.len;
	if (m->sender.len)
		memcpy(h->data, m->sender.ptr, m->sender.len);
	if (m->body.len)
		memcpy(h->data + m->sender.len, m->body.ptr, m->body.len);
	r->hist[(r->hhead + r->hcount) & (r->hcap - 1)] = h;
	r->hcount++;
	r->hbytes += n;
	srv->hist_bytes += n;
}

/* Index of the first kept text with seq > after (hcount: none). */
static uint32_t hist_after(const struct room *r, uint64_t after)
{
	if (!r->hcount || after < hist_at(r, 0)->seq)
		return 0;
	uint64_t k = after - hist_at(r, 0)->seq + 1; /* seqs are contiguous */
	return k >= r->hcount ? r->hcount : (uint32_t)k;
}

static void queue_one(tcpchat_server *srv, struct sconn *sc,
                      const tcpchat_msg *m)
{
	srv__send_one(srv, sc, m); /* outside the queue limits */
}

/* Sends sc the texts of r with index [from, to) flagged HISTORY, then the
 * end marker; gap: the asker wanted texts that are gone. */
static void serve_range(tcpchat_server *srv, struct sconn *sc, struct room *r,
                        uint32_t from, uint32_t to, int gap)
{
	tcpchat_msg t = {.type = TCPCHAT_MSG_TEXT};
	srv__room_stamp(srv, r, &t);
	t.flags |= TCPCHAT_MSGF_HISTORY;
	for (uint32_t i = from; i < to && sc->state != S_DEAD; i++) {
		const struct hist_msg *h = hist_at(r, i);
		t.seq = h->seq;
		t.id = h->id;
		t.timestamp = h->ts;
		t.sender.ptr = h->data;
		t.sender.len = h->sender_len;
		t.body.ptr = h->data + h->sender_len;
		t.body.len = h->body_len;
		queue_one(srv, sc, &t);
	}
	tcpchat_msg e = {.type = TCPCHAT_MSG_HISTORY};
	srv__room_stamp(srv, r, &e);
	e.timestamp = srv->wall_ms;
	e.seq = r->last_seq;
	e.epoch = (uint64_t)srv->epoch;
	e.code = to - from;
	e.oldest = srv__hist_oldest(r);
	if (to > from) {
		e.first = hist_at(r, from)->seq;
		e.last = hist_at(r, to - 1)->seq;
	}
	if (gap)
		e.flags |= TCPCHAT_MSGF_GAP;
	if (sc->state != S_DEAD)
		queue_one(srv, sc, &e);
}

/* Whether the request's seq belongs to this server's history: a request
 * that names another epoch is answered from the oldest kept. */
static int foreign_epoch(const tcpchat_server *srv, const tcpchat_msg *m)
{
	return m->epoch && m->epoch != (uint64_t)srv->epoch;
}

void srv__hist_resume(tcpchat_server *srv, struct sconn *sc, struct room *r,
                      const tcpchat_msg *req)
{
	uint64_t after = foreign_epoch(srv, req) ? 0 : req->seq;
	uint64_t oldest = srv__hist_oldest(r);
	int gap = foreign_epoch(srv, req) ? oldest > 1 || req->seq > 0
	                                  : after + 1 < oldest;
	if (after > r->last_seq) /* from the future: nothing to give */
		after = r->last_seq;
	serve_range(srv, sc, r, hist_after(r, after), r->hcount, gap);
}

/* HISTORY from a member: the latest N, or N after or before a seq. */
void srv__on_history(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	struct room *r = sc->cur;
	if (m->room.len) {
		if (tcpchat_room_check(m->room.ptr, m->room.len) != 0) {
			srv__req_error(srv, sc, m, TCPCHAT_EBADROOM,
			               tcpchat_strerror(TCPCHAT_EBADROOM));
			return;
		}
		r = srv__room_find(srv, m->room.ptr, m->room.len);
	}
	if (!r || !srv__member_of(sc, r)) {
		srv__req_error(srv, sc, m, TCPCHAT_ENOTMEMBER,
		               m->room.len ? "you are not in that room"
		                           : "you are not in any room");
		return;
	}
	if ((m->flags & TCPCHAT_MSGF_AFTER) &&
	    (m->flags & TCPCHAT_MSGF_BEFORE)) {
		srv__req_error(srv, sc, m, TCPCHAT_EPROTO,
		               "a history request is after or before a seq, "
		               "not both");
		return;
	}
	if (sc->c.qcount > (uint32_t)srv->queue_frames / 2 ||
	    sc->c.qbytes > (size_t)srv->queue_bytes / 2) {
		srv__req_error(srv, sc, m, TCPCHAT_ELIMIT,
		               "too much output waits for you: read it first");
		return;
	}
	uint32_t limit =
	        m->code ? TC_MIN(m->code, HISTORY_ANSWER_MAX) : HISTORY_DEFAULT;
	uint64_t oldest = srv__hist_oldest(r);
	uint32_t from, to;
	int gap;
	if (foreign_epoch(srv, m) || (m->flags & TCPCHAT_MSGF_AFTER)) {
		uint64_t after = foreign_epoch(srv, m) ? 0 : m->seq;
		from = hist_after(r, after);
		to = r->hcount - from > limit ? from + limit : r->hcount;
		gap = foreign_epoch(srv, m) ? oldest > 1 || m->seq > 0
		                            : after + 1 < oldest;
	} else {
		/* the latest, or those before seq */
		to = r->hcount;
		if ((m->flags & TCPCHAT_MSGF_BEFORE) && m->seq)
			to = hist_after(r, m->seq - 1);
		from = to > limit ? to - limit : 0;
		uint64_t want_from = 1;
		if (m->flags & TCPCHAT_MSGF_BEFORE && m->seq)
			want_from = m->seq > limit ? m->seq - limit : 1;
		else if (r->last_seq >= limit)
			want_from = r->last_seq - limit + 1;
		gap = from == 0 && want_from < oldest && oldest > 1;
	}
	serve_range(srv, sc, r, from, to, gap);
}
