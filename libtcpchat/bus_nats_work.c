/* libtcpchat - the NATS bus, its worker thread: every blocking call to
 * JetStream (publish with its PubAck, direct gets, KV, consumer set-up)
 * runs here, one request at a time in the order they were made.  The
 * answers go back to the loop as BE_DONE events.
 *
 * A room's records are in the messages of its subject in the stream
 * TCPCHAT, one or more a message (a batch: bus_nats_post.c posts in
 * rounds).  Each carries the headers Tcpchat-Seq (the number in the room
 * of its first record; the others follow one by one), Tcpchat-Count
 * (absent: one record, the first format) and Tcpchat-Prev (the stream
 * sequence of the room's previous record message, 0 for the first), so
 * the history can be walked back by direct gets without a consumer.
 * The publish says Nats-Expected-Last-Subject-Sequence: the stream
 * refuses it when another server posted to the room meanwhile, and the
 * post learns the new last record and tries again: the numbers of a
 * room have no gap and one order.  Anything else on a room's subject (a
 * message without valid headers, a batch that does not add up) is
 * skipped whole by the walk, but as the subject's last message it still
 * is what the next post must expect. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus_nats_int.h"
#include "internal.h"

void bus_nats__hex(char *out, const void *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[s[i] >> 4];
		out[2 * i + 1] = digits[s[i] & 15];
	}
	out[2 * n] = '\0';
}

int bus_nats__room_subject(char *out, size_t cap, const char *prefix,
                           const char *room, size_t rlen)
{
	size_t pl = strlen(prefix);
	if (rlen == 0 || rlen > BUS_NATS_ROOM_MAX || pl + 2 * rlen + 1 > cap)
		return -1;
	memcpy(out, prefix, pl);
	bus_nats__hex(out + pl, room, rlen);
	return 0;
}

void bus_nats__req_free(struct bn_req *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free((void *)r->recs[i].data);
	free(r->recs);
	free(r);
}

/* ---- the rooms the worker knows ---------------------------------------- */

struct bn_room *bus_nats__room_get(struct bus_nats *b, const char *room,
                                   size_t rlen, int create)
{
	uint64_t h = util__siphash(b->hkey, room, rlen);
	if (b->rcap) {
		for (struct bn_room *e = b->rooms[h & (b->rcap - 1)]; e;
		     e = e->next)
			if (e->hash == h && e->rlen == rlen &&
			    !memcmp(e->room, room, rlen))
				return e;
	}
	if (!create)
		return NULL;
	if (b->nrooms >= b->rcap / 2) {
		/* Grow to twice the size (16 at first) and rehash. */
		size_t ncap = b->rcap ? 2 * b->rcap : 16;
		struct bn_room **nt = calloc(ncap, sizeof *nt);
		if (!nt)
			return NULL;
		for (size_t i = 0; i < b->rcap; i++) {
			struct bn_room *e = b->rooms[i], *next;
			for (; e; e = next) {
				next = e->next;
				e->next = nt[e->hash & (ncap - 1)];
				nt[e->hash & (ncap - 1)] = e;
			}
		}
		free(b->rooms);
		b->rooms = nt;
		b->rcap = ncap;
	}
	struct bn_room *e = calloc(1, sizeof *e + rlen);
	if (!e)
		return NULL;
	e->hash = h;
	e->rlen = rlen;
	memcpy(e->room, room, rlen);
	e->next = b->rooms[h & (b->rcap - 1)];
	b->rooms[h & (b->rcap - 1)] = e;
	b->nrooms++;
	return e;
}

/* Ends a room's subscription. */
static void unsubscribe(struct bn_room *e)
{
	if (!e->sub)
		return;
	natsSubscription_Unsubscribe(e->sub);
	natsSubscription_Destroy(e->sub);
	e->sub = NULL;
}

void bus_nats__rooms_free(struct bus_nats *b)
{
	for (size_t i = 0; i < b->rcap; i++) {
		struct bn_room *e = b->rooms[i], *next;
		for (; e; e = next) {
			next = e->next;
			unsubscribe(e);
			free(e);
		}
	}
	free(b->rooms);
	b->rooms = NULL;
	b->rcap = b->nrooms = 0;
	if (b->ack_sub) {
		natsSubscription_Unsubscribe(b->ack_sub);
		natsSubscription_Destroy(b->ack_sub);
		b->ack_sub = NULL;
	}
}

/* ---- records ----------------------------------------------------------- */

/* A direct get: the message at stream seq (subject NULL), the last of a
 * subject (seq 0) or the first of a subject at or after seq.  The
 * message's subject must be subj. */
static natsStatus dget(struct bus_nats *b, natsMsg **m, const char *subj,
                       uint64_t seq, int last)
{
	jsDirectGetMsgOptions o;
	jsDirectGetMsgOptions_Init(&o);
	o.Sequence = seq;
	if (last)
		o.LastBySubject = subj;
	*m = NULL;
	natsStatus s = js_DirectGetMsg(m, b->js, BUS_NATS_STREAM, NULL, &o);
	if (s != NATS_OK) {
		*m = NULL;
		return s;
	}
	const char *ms = NULL;
	if (natsMsgHeader_Get(*m, "Nats-Subject", &ms) != NATS_OK || !ms ||
	    strcmp(ms, subj)) {
		natsMsg_Destroy(*m);
		*m = NULL;
		return NATS_NOT_FOUND; /* another room's: not this room's */
	}
	return NATS_OK;
}

/* The first message of subj at or after stream seq from. */
static natsStatus dget_next(struct bus_nats *b, natsMsg **m, const char *subj,
                            uint64_t from)
{
	jsDirectGetMsgOptions o;
	jsDirectGetMsgOptions_Init(&o);
	o.Sequence = from;
	o.NextBySubject = subj;
	*m = NULL;
	natsStatus s = js_DirectGetMsg(m, b->js, BUS_NATS_STREAM, NULL, &o);
	if (s != NATS_OK)
		*m = NULL;
	return s;
}

/* The last valid record of subj before stream seq g, when the message at
 * g is not one: windows before g, doubling, read forward.  *rec 0 when
 * there is none.  NATS_OK or an error. */
static natsStatus valid_before(struct bus_nats *b, const char *subj, uint64_t g,
                               uint64_t *rec, uint64_t *seq)
{
	uint64_t step = 1;
	*rec = *seq = 0;
	while (g > 1) {
		uint64_t start = g > step ? g - step : 1;
		natsMsg *m = NULL;
		natsStatus s = dget_next(b, &m, subj, start);
		if (s != NATS_OK && s != NATS_NOT_FOUND)
			return s;
		uint64_t at = m ? natsMsg_GetSequence(m) : g;
		if (at >= g || at < start) {
			natsMsg_Destroy(m);
			if (start == 1)
				return NATS_OK;
			step = step < UINT64_MAX / 2 ? step * 2 : step;
			continue;
		}
		/* Read forward from at to g, keeping the last valid one. */
		uint64_t first = at;
		while (m) {
			struct bn_batch bt;
			at = natsMsg_GetSequence(m);
			if (bus_nats__batch(m, &bt)) {
				*rec = at;
				*seq = bt.first + bt.n - 1;
			}
			natsMsg_Destroy(m);
			m = NULL;
			s = dget_next(b, &m, subj, at + 1);
			if (s != NATS_OK && s != NATS_NOT_FOUND)
				return s;
			if (m && (natsMsg_GetSequence(m) >= g ||
			          natsMsg_GetSequence(m) <= at)) {
				natsMsg_Destroy(m);
				m = NULL;
			}
		}
		if (*rec)
			return NATS_OK;
		g = first; /* all garbage from first on: look before it */
		step = 1;
	}
	return NATS_OK;
}

natsStatus bus_nats__refresh(struct bus_nats *b, struct bn_room *e,
                             const char *subj)
{
	natsMsg *m = NULL;
	natsStatus s = dget(b, &m, subj, 0, 1);
	if (s == NATS_NOT_FOUND) {
		e->known = 1;
		e->last_any = e->last_rec = e->last_seq = 0;
		return NATS_OK;
	}
	if (s != NATS_OK)
		return s;
	struct bn_batch bt;
	uint64_t at = natsMsg_GetSequence(m);
	int ok = bus_nats__batch(m, &bt);
	natsMsg_Destroy(m);
	e->last_any = at;
	if (ok) {
		e->last_rec = at;
		e->last_seq = bt.first + bt.n - 1;
	} else {
		s = valid_before(b, subj, at, &e->last_rec, &e->last_seq);
		if (s != NATS_OK)
			return s;
	}
	e->known = 1;
	return NATS_OK;
}

/* ---- the requests ------------------------------------------------------ */

/* The records of the batch bt with seqs in [lo, first + n - 1] into
 * recs[0..): copies.  0, or -1 when out of memory (those copied stay in
 * recs for the caller to free; recs was zeroed). */
static int take_recs(struct bn_batch *bt, uint64_t lo, struct bus_rec *recs)
{
	const uint8_t *p;
	size_t len, k = 0;
	for (uint64_t seq = bt->first; bus_nats__batch_next(bt, &p, &len);
	     seq++) {
		if (seq < lo)
			continue;
		uint8_t *d = malloc(len);
		if (!d)
			return -1;
		memcpy(d, p, len);
		recs[k].seq = seq;
		recs[k].data = d;
		recs[k].len = len;
		k++;
	}
	return 0;
}

static void do_fetch(struct bus_nats *b, struct bn_req *r)
{
	char subj[BUS_NATS_SUBJ_MAX];
	if (bus_nats__room_subject(subj, sizeof subj, BUS_NATS_LOG_PREFIX,
	                           r->room, r->rlen)) {
		r->err = TCPCHAT_EINVAL;
		return;
	}
	natsMsg *m = NULL;
	natsStatus s = dget(b, &m, subj, 0, 1);
	r->err = 0;
	if (s == NATS_NOT_FOUND)
		return; /* never posted to: none, last 0 */
	if (s != NATS_OK) {
		bus_nats__fail(r, "reading the room's last record", s);
		return;
	}
	struct bn_batch bt;
	uint64_t at = natsMsg_GetSequence(m);
	if (!bus_nats__batch(m, &bt)) {
		/* Its last message is not a record: start at the last one. */
		natsMsg_Destroy(m);
		m = NULL;
		uint64_t rec, seq;
		s = valid_before(b, subj, at, &rec, &seq);
		if (s == NATS_OK && rec)
			s = dget(b, &m, subj, rec, 0);
		if (s == NATS_OK && !rec)
			return;
		if (s != NATS_OK || !bus_nats__batch(m, &bt)) {
			natsMsg_Destroy(m);
			if (s == NATS_OK)
				s = NATS_ERR;
			bus_nats__fail(r, "reading the room's last record", s);
			return;
		}
		at = rec;
	}
	r->last = bt.first + bt.n - 1;
	uint64_t want = r->last > r->after ? r->last - r->after : 0;
	if (want > r->max)
		want = r->max;
	if (want > BUS_NATS_HIST)
		want = BUS_NATS_HIST; /* no more than before batches */
	if (want && !(r->recs = calloc((size_t)want, sizeof *r->recs))) {
		natsMsg_Destroy(m);
		r->err = TCPCHAT_ENOMEM;
		return;
	}
	/* Walk back from the newest batch through Tcpchat-Prev, filling
	 * recs from its end: each step must go to an earlier message of
	 * this room whose records all have lower numbers. */
	size_t idx = (size_t)want;
	while (m && idx) {
		uint64_t hi = bt.first + bt.n - 1;
		if (hi <= r->after)
			break; /* after a gap of numbers (a floor): all older */
		uint64_t lo = r->after + 1 > bt.first ? r->after + 1 : bt.first;
		if (hi - lo + 1 > idx)
			lo = hi - idx + 1;
		size_t k = (size_t)(hi - lo + 1);
		if (take_recs(&bt, lo, r->recs + idx - k)) {
			r->err = TCPCHAT_ENOMEM;
			break;
		}
		idx -= k;
		natsMsg_Destroy(m);
		m = NULL;
		uint64_t first = bt.first, prev = bt.prev;
		if (!idx || first <= r->after + 1 || prev == 0 || prev >= at)
			break;
		s = dget(b, &m, subj, prev, 0);
		if (s != NATS_OK || !bus_nats__batch(m, &bt) ||
		    bt.first + bt.n - 1 >= first) {
			/* Trimmed by the history limit, or not a record. */
			natsMsg_Destroy(m);
			m = NULL;
			if (s != NATS_OK && s != NATS_NOT_FOUND)
				bus_nats__fail(r, "reading a record", s);
			break;
		}
		at = prev;
	}
	natsMsg_Destroy(m);
	if (r->err) {
		for (size_t i = 0; i < want; i++) /* calloc'd: NULL or ours */
			free((void *)r->recs[i].data);
		free(r->recs);
		r->recs = NULL;
		return;
	}
	r->n = (size_t)want - idx;
	if (idx)
		memmove(r->recs, r->recs + idx, r->n * sizeof *r->recs);
}

/* The holder of a name entry into r->holder (cut to fit). */
static void set_holder(struct bn_req *r, kvEntry *e)
{
	size_t n = (size_t)kvEntry_ValueLen(e);
	if (n > BUS_NODE_MAX)
		n = BUS_NODE_MAX;
	memcpy(r->holder, kvEntry_Value(e), n);
	r->holder[n] = '\0';
	r->hlen = n;
}

static int value_is(kvEntry *e, const char *s, size_t n)
{
	return s && (size_t)kvEntry_ValueLen(e) == n &&
	       !memcmp(kvEntry_Value(e), s, n);
}

static void do_claim(struct bus_nats *b, struct bn_req *r)
{
	char key[2 * BUS_NAME_MAX + 1];
	const char *me = b->pub.node;
	int mlen = (int)b->pub.node_len;
	if (r->rlen == 0 || r->rlen > BUS_NAME_MAX) {
		r->err = TCPCHAT_EINVAL;
		return;
	}
	bus_nats__hex(key, r->room, r->rlen);
	for (int tries = 0; tries < 5; tries++) {
		uint64_t rev = 0;
		natsStatus s = kvStore_Create(&rev, b->names, key, me, mlen);
		if (s == NATS_OK) {
			r->err = 0;
			return;
		}
		kvEntry *e = NULL;
		s = kvStore_Get(&e, b->names, key);
		if (s == NATS_NOT_FOUND)
			continue; /* released meanwhile: create again */
		if (s != NATS_OK) {
			bus_nats__fail(r, "reading a name", s);
			return;
		}
		if (value_is(e, me, (size_t)mlen) ||
		    value_is(e, r->stale, r->slen)) {
			s = kvStore_Update(&rev, b->names, key, me, mlen,
			                   kvEntry_Revision(e));
			kvEntry_Destroy(e);
			if (s == NATS_OK) {
				r->err = 0;
				return;
			}
			/* Lost a race: whoever won holds it now. */
			e = NULL;
			s = kvStore_Get(&e, b->names, key);
			if (s == NATS_NOT_FOUND)
				continue;
			if (s != NATS_OK) {
				bus_nats__fail(r, "reading a name", s);
				return;
			}
			if (value_is(e, me, (size_t)mlen)) {
				kvEntry_Destroy(e);
				r->err = 0;
				return;
			}
		}
		r->err = TCPCHAT_ENAMEINUSE;
		set_holder(r, e);
		kvEntry_Destroy(e);
		return;
	}
	r->err = TCPCHAT_EBUS;
	snprintf(r->why, sizeof r->why, "too much contention on a name");
}

static void do_release(struct bus_nats *b, struct bn_req *r)
{
	char key[2 * BUS_NAME_MAX + 1];
	if (r->rlen == 0 || r->rlen > BUS_NAME_MAX)
		return;
	bus_nats__hex(key, r->room, r->rlen);
	kvEntry *e = NULL;
	if (kvStore_Get(&e, b->names, key) != NATS_OK)
		return;
	if (value_is(e, b->pub.node, b->pub.node_len))
		kvStore_Delete(b->names, key);
	kvEntry_Destroy(e);
}

/* Subscribes to a followed room: to the live copies that the stream
 * republishes once it has stored them, a plain subscription (a
 * JetStream consumer per room and server would cost the engine far
 * more).  Copies that never come (the server lost, or nats.c dropping
 * them for a slow consumer) are a loss of the bus: the loop catches
 * every room up from the stream when the bus is back, and a gap seen in
 * the seqs makes it fetch the missing ones. */
static natsStatus subscribe(struct bus_nats *b, struct bn_room *e)
{
	char subj[BUS_NATS_SUBJ_MAX], live[BUS_NATS_SUBJ_MAX];
	if (bus_nats__room_subject(subj, sizeof subj, BUS_NATS_LOG_PREFIX,
	                           e->room, e->rlen) ||
	    bus_nats__room_subject(live, sizeof live, BUS_NATS_LIVE_PREFIX,
	                           e->room, e->rlen))
		return NATS_INVALID_ARG;
	natsSubscription *sub = NULL;
	natsStatus s = natsConnection_Subscribe(&sub, b->nc, live,
	                                        bus_nats__on_room_msg, b);
	if (s != NATS_OK)
		return s;
	atomic_fetch_add(&b->live_cbs, 1);
	if (natsSubscription_SetOnCompleteCB(sub, bus_nats__on_sub_done, b) !=
	    NATS_OK)
		atomic_fetch_sub(&b->live_cbs, 1);
	e->sub = sub;
	/* The room's last seq once subscribed (the request follows the
	 * SUB on the connection): the loop gives no room() at or below it.
	 * What is posted between the subscription and this read is in any
	 * fetch made after the follow. */
	if (bus_nats__refresh(b, e, subj) == NATS_OK) {
		struct bn_ev *ev = bus_nats__ev(BE_BASE, 0, e->rlen);
		if (ev) {
			memcpy(ev->room, e->room, e->rlen);
			ev->seq = e->last_seq;
			bus_nats__push(b, ev);
		}
	}
	return NATS_OK;
}

static void do_follow(struct bus_nats *b, struct bn_req *r, int on)
{
	struct bn_room *e = bus_nats__room_get(b, r->room, r->rlen, on);
	if (!e)
		return;
	e->followed = on;
	if (!on) {
		unsubscribe(e);
		return;
	}
	if (e->sub || atomic_load(&b->down))
		return; /* subscribed when the engine is back */
	natsStatus s = subscribe(b, e);
	if (s != NATS_OK)
		bus_nats__fail(r, "following a room",
		               s); /* logged; again when back */
}

/* Waits ms on the request FIFO's condition: 1 when the worker is to
 * stop. */
static int nap(struct bus_nats *b, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&b->wmu);
	if (!b->wstop)
		pthread_cond_timedwait(&b->wcv, &b->wmu, &ts);
	int stop = b->wstop;
	pthread_mutex_unlock(&b->wmu);
	return stop;
}

/* After a reconnect (or a slow consumer): nats.c renews the
 * subscriptions by itself, and the loop catches the rooms followed
 * before up from the stream once up() came (what was republished while
 * the server was away is lost to the subscriptions).  Rooms followed
 * while the server was away are subscribed here; JetStream may need a
 * moment after a restart (their last seq is read from it): tries again
 * every 200 ms while no other loss came meanwhile.  Then up(). */
static void do_resub(struct bus_nats *b, struct bn_req *r, unsigned losses)
{
	for (size_t i = 0; i < b->rcap; i++)
		for (struct bn_room *e = b->rooms[i]; e; e = e->next)
			e->known = 0; /* what was learned may be stale */
	for (;;) {
		natsStatus s = NATS_OK;
		for (size_t i = 0; i < b->rcap && s == NATS_OK; i++)
			for (struct bn_room *e = b->rooms[i]; e && s == NATS_OK;
			     e = e->next)
				if (e->followed && !e->sub)
					s = subscribe(b, e);
		if (atomic_load(&b->losses) != losses)
			return; /* lost again: the next reconnect does it */
		if (s == NATS_OK)
			break;
		if (nap(b, 200))
			return;
	}
	atomic_store(&b->down, 0);
	r->err = 0;
	r->seq = 1; /* up */
}

static void run(struct bus_nats *b, struct bn_req *r)
{
	unsigned gen = atomic_load(&b->gen);
	int stale = r->gen != gen || atomic_load(&b->down);
	r->err = TCPCHAT_EBUS;
	switch (r->kind) {
	case BN_POST: /* in rounds: post_round() */
	case BN_FETCH:
	case BN_CLAIM:
		if (stale) {
			snprintf(r->why, sizeof r->why,
			         "the NATS server is lost");
			return;
		}
		if (r->kind == BN_FETCH)
			do_fetch(b, r);
		else if (r->kind == BN_POST)
			bus_nats__post_round(b, &r, 1);
		else
			do_claim(b, r);
		if (atomic_load(&b->gen) != gen && r->err == 0)
			r->err = TCPCHAT_EBUS; /* answered so by the loss */
		return;
	case BN_RELEASE:
		r->err = 0;
		if (!stale)
			do_release(b, r);
		return;
	case BN_FOLLOW:
	case BN_UNFOLLOW:
		r->err = 0;
		do_follow(b, r, r->kind == BN_FOLLOW);
		return;
	case BN_RESUB:
		do_resub(b, r, (unsigned)r->after);
		return;
	}
}

void *bus_nats__worker(void *arg)
{
	struct bus_nats *b = arg;
	struct bn_req *rq[BUS_NATS_ROUND_POSTS];
	for (;;) {
		pthread_mutex_lock(&b->wmu);
		while (!b->whead && !b->wstop)
			pthread_cond_wait(&b->wcv, &b->wmu);
		if (b->wstop) {
			pthread_mutex_unlock(&b->wmu);
			break;
		}
		/* A post takes the posts queued right behind it along: the
		 * requests of other kinds keep their place. */
		size_t n = 0, bytes = 0;
		do {
			struct bn_req *r = b->whead;
			b->whead = r->next;
			rq[n++] = r;
			bytes += r->len;
		} while (rq[0]->kind == BN_POST && b->whead &&
		         b->whead->kind == BN_POST &&
		         n < BUS_NATS_ROUND_POSTS &&
		         bytes + b->whead->len <= BUS_NATS_ROUND_BYTES);
		if (!b->whead)
			b->wtail = NULL;
		pthread_mutex_unlock(&b->wmu);
		if (rq[0]->kind == BN_POST)
			bus_nats__post_round(b, rq, n);
		else
			run(b, rq[0]);
		for (size_t i = 0; i < n; i++) {
			rq[i]->done.kind = BE_DONE;
			rq[i]->done.req = rq[i];
			bus_nats__push(b, &rq[i]->done);
		}
	}
	return NULL;
}
