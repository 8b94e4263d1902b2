/* libtcpchat - the NATS bus (nats.c with JetStream): the connection, its
 * callbacks on nats.c's threads, the event FIFO that hands everything to
 * the loop thread through the bus's own wakeup, and the bus_ops, which
 * only enqueue requests for the worker (bus_nats_work.c).
 *
 * Engine layout: the stream TCPCHAT holds the rooms' records on the
 * subjects tcpchat.log.<hex of the room name>; the KV bucket tcpchat_names
 * maps hex(user name) to the node id holding it; tcpchat_meta holds the
 * cluster's epoch.  Broadcasts go to tcpchat.all, direct records to
 * tcpchat.node.<hex of the node id>, both core NATS, carrying the header
 * Tcpchat-From (what has none is not ours: counted, dropped). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus_nats_int.h"
#include "internal.h"

#if TCPCHAT_HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

#define BN(b) ((struct bus_nats *)(b))

/* ---- the event FIFO ---------------------------------------------------- */

struct bn_ev *bus_nats__ev(int kind, size_t len, size_t rlen)
{
	struct bn_ev *ev = malloc(sizeof *ev + len + rlen + 1);
	if (!ev)
		return NULL;
	memset(ev, 0, sizeof *ev);
	ev->kind = kind;
	ev->data = (uint8_t *)(ev + 1);
	ev->len = len;
	ev->room = (char *)ev->data + len;
	ev->rlen = rlen;
	ev->data[len + rlen] = 0;
	return ev;
}

static void ev_free(struct bn_ev *ev)
{
	if (ev->kind == BE_DONE)
		bus_nats__req_free(ev->req);
	else
		free(ev);
}

static void wake(struct bus_nats *b)
{
	if (atomic_exchange(&b->wake_pending, 1))
		return;
	int saved = errno;
	ssize_t n;
	if (b->wake_rfd == b->wake_wfd) {
		uint64_t one = 1;
		n = write(b->wake_wfd, &one, sizeof one);
	} else {
		char c = 1;
		n = write(b->wake_wfd, &c, 1);
	}
	TC_UNUSED(n);
	errno = saved;
}

void bus_nats__push(struct bus_nats *b, struct bn_ev *ev)
{
	ev->next = NULL;
	pthread_mutex_lock(&b->emu);
	if (atomic_load(&b->closing)) {
		pthread_mutex_unlock(&b->emu);
		ev_free(ev);
		return;
	}
	if (b->etail)
		b->etail->next = ev;
	else
		b->ehead = ev;
	b->etail = ev;
	pthread_mutex_unlock(&b->emu);
	wake(b);
}

static struct bn_ev *take_events(struct bus_nats *b)
{
	pthread_mutex_lock(&b->emu);
	struct bn_ev *ev = b->ehead;
	b->ehead = b->etail = NULL;
	pthread_mutex_unlock(&b->emu);
	return ev;
}

static void push_text(struct bus_nats *b, int kind, const char *text)
{
	size_t n = strlen(text);
	struct bn_ev *ev = bus_nats__ev(kind, n, 0);
	if (!ev)
		return;
	memcpy(ev->data, text, n);
	bus_nats__push(b, ev);
}

/* ---- nats.c's callbacks (its threads) ---------------------------------- */

void bus_nats__on_disconnected(natsConnection *nc, void *closure)
{
	struct bus_nats *b = closure;
	char why[200];
	const char *last = NULL;
	if (atomic_load(&b->closing))
		return;
	atomic_store(&b->down, 1);
	atomic_fetch_add(&b->losses, 1);
	natsStatus s = natsConnection_GetLastError(nc, &last);
	snprintf(why, sizeof why, "lost the NATS server: %s",
	         s != NATS_OK && last && *last ? last
	         : s != NATS_OK                ? natsStatus_GetText(s)
	                                       : "the connection broke");
	push_text(b, BE_DOWN, why);
}

void bus_nats__on_reconnected(natsConnection *nc, void *closure)
{
	struct bus_nats *b = closure;
	TC_UNUSED(nc);
	struct bn_req *r = calloc(1, sizeof *r);
	if (!r)
		return;
	r->kind = BN_RESUB;
	r->after = atomic_load(&b->losses);
	pthread_mutex_lock(&b->wmu);
	if (b->wstop || atomic_load(&b->closing)) {
		pthread_mutex_unlock(&b->wmu);
		free(r);
		return;
	}
	if (b->wtail)
		b->wtail->next = r;
	else
		b->whead = r;
	b->wtail = r;
	pthread_cond_signal(&b->wcv);
	pthread_mutex_unlock(&b->wmu);
}

void bus_nats__on_error(natsConnection *nc, natsSubscription *sub,
                        natsStatus err, void *closure)
{
	struct bus_nats *b = closure;
	TC_UNUSED(sub);
	if (err != NATS_SLOW_CONSUMER || atomic_load(&b->closing))
		return;
	/* nats.c dropped messages of a subscription: as a loss of the
	 * server (unless one is under way), so that the loop catches every
	 * followed room up when the resubscription says up(). */
	if (atomic_exchange(&b->down, 1))
		return;
	atomic_fetch_add(&b->losses, 1);
	push_text(b, BE_DOWN,
	          "messages from the NATS server dropped: the bus fell "
	          "behind (slow consumer)");
	bus_nats__on_reconnected(nc, b);
}

void bus_nats__on_closed(natsConnection *nc, void *closure)
{
	struct bus_nats *b = closure;
	TC_UNUSED(nc);
	pthread_mutex_lock(&b->cmu);
	b->closed = 1;
	pthread_cond_broadcast(&b->ccv);
	pthread_mutex_unlock(&b->cmu);
}

void bus_nats__on_sub_done(void *closure)
{
	struct bus_nats *b = closure;
	pthread_mutex_lock(&b->cmu);
	atomic_fetch_sub(&b->live_cbs, 1);
	pthread_cond_broadcast(&b->ccv);
	pthread_mutex_unlock(&b->cmu);
}

static void garbage(struct bus_nats *b, const char *what, const char *subj)
{
	char text[200];
	snprintf(text, sizeof text, "%s on %.120s", what, subj ? subj : "?");
	push_text(b, BE_GARBAGE, text);
}

void bus_nats__on_note(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                       void *closure)
{
	struct bus_nats *b = closure;
	TC_UNUSED(nc);
	TC_UNUSED(sub);
	const char *from = NULL;
	int len = natsMsg_GetDataLength(msg);
	if (natsMsgHeader_Get(msg, "Tcpchat-From", &from) != NATS_OK ||
	    len <= 0 || len > BUS_REC_MAX) {
		garbage(b, "a message without a Tcpchat-From header",
		        natsMsg_GetSubject(msg));
	} else {
		struct bn_ev *ev = bus_nats__ev(BE_NOTE, (size_t)len, 0);
		if (ev) {
			memcpy(ev->data, natsMsg_GetData(msg), (size_t)len);
			bus_nats__push(b, ev);
		}
	}
	natsMsg_Destroy(msg);
}

/* ---- the loop side ----------------------------------------------------- */

/* The followed room room[0..rlen), made when create and not there;
 * NULL when not there or out of memory. */
static struct bn_followed *fol_get(struct bus_nats *b, const char *room,
                                   size_t rlen, int create)
{
	uint64_t h = util__siphash(b->hkey, room, rlen);
	if (b->fcap)
		for (struct bn_followed *f = b->fol[h & (b->fcap - 1)]; f;
		     f = f->next)
			if (f->hash == h && f->rlen == rlen &&
			    !memcmp(f->room, room, rlen))
				return f;
	if (!create)
		return NULL;
	if (b->nfol >= b->fcap / 2) {
		size_t ncap = b->fcap ? 2 * b->fcap : 16;
		struct bn_followed **nt = calloc(ncap, sizeof *nt);
		if (!nt)
			return NULL;
		for (size_t i = 0; i < b->fcap; i++)
			for (struct bn_followed *f = b->fol[i], *next; f;
			     f = next) {
				next = f->next;
				f->next = nt[f->hash & (ncap - 1)];
				nt[f->hash & (ncap - 1)] = f;
			}
		free(b->fol);
		b->fol = nt;
		b->fcap = ncap;
	}
	struct bn_followed *f = calloc(1, sizeof *f + rlen);
	if (!f)
		return NULL;
	f->hash = h;
	f->rlen = rlen;
	memcpy(f->room, room, rlen);
	f->next = b->fol[h & (b->fcap - 1)];
	b->fol[h & (b->fcap - 1)] = f;
	b->nfol++;
	return f;
}

static void fol_del(struct bus_nats *b, const char *room, size_t rlen)
{
	if (!b->fcap)
		return;
	uint64_t h = util__siphash(b->hkey, room, rlen);
	struct bn_followed **p = &b->fol[h & (b->fcap - 1)];
	for (; *p; p = &(*p)->next) {
		struct bn_followed *f = *p;
		if (f->hash == h && f->rlen == rlen &&
		    !memcmp(f->room, room, rlen)) {
			*p = f->next;
			free(f);
			b->nfol--;
			return;
		}
	}
}

static void fol_free(struct bus_nats *b)
{
	for (size_t i = 0; i < b->fcap; i++)
		for (struct bn_followed *f = b->fol[i], *next; f; f = next) {
			next = f->next;
			free(f);
		}
	free(b->fol);
	b->fol = NULL;
	b->fcap = b->nfol = 0;
}

static void log_line(struct bus_nats *b, int level, const char *fmt, ...)
        TC_PRINTF(3, 4);

static void log_line(struct bus_nats *b, int level, const char *fmt, ...)
{
	char text[300];
	va_list ap;
	if (!b->pub.ev.log)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	b->pub.ev.log(b->pub.ev.data, level, text);
}

static void olist_del(struct bus_nats *b, struct bn_req *r)
{
	if (r->oprev)
		r->oprev->onext = r->onext;
	else
		b->ohead = r->onext;
	if (r->onext)
		r->onext->oprev = r->oprev;
	r->oprev = r->onext = NULL;
}

/* Gives r its one answer. */
static void answer(struct bus_nats *b, struct bn_req *r, int err)
{
	struct bus_events *e = &b->pub.ev;
	switch (r->kind) {
	case BN_POST:
		if (e->posted)
			e->posted(e->data, r->token, err, err ? 0 : r->seq);
		break;
	case BN_FETCH:
		if (e->fetched)
			e->fetched(e->data, r->token, err, err ? NULL : r->recs,
			           err ? 0 : r->n, err ? 0 : r->last);
		break;
	case BN_CLAIM:
		if (e->claimed)
			e->claimed(e->data, r->token, err,
			           err == TCPCHAT_ENAMEINUSE ? r->holder : NULL,
			           err == TCPCHAT_ENAMEINUSE ? r->hlen : 0);
		break;
	}
}

static void went_up(struct bus_nats *b)
{
	if (b->pub.up)
		return;
	b->pub.up = 1;
	log_line(b, TCPCHAT_LOG_INFO, "the NATS server is back");
	if (b->pub.ev.up)
		b->pub.ev.up(b->pub.ev.data);
}

static void went_down(struct bus_nats *b, const char *why)
{
	if (!b->pub.up)
		return;
	b->pub.up = 0;
	b->pub.st.losses++;
	atomic_fetch_add(&b->gen, 1);
	log_line(b, TCPCHAT_LOG_WARN, "%s", why);
	if (b->pub.ev.down)
		b->pub.ev.down(b->pub.ev.data, why);
	/* Everything pending fails; the worker drops what it has not done
	 * (its generation is old). */
	while (b->ohead && !b->dead) {
		struct bn_req *r = b->ohead;
		olist_del(b, r);
		r->answered = 1;
		answer(b, r, TCPCHAT_EBUS);
	}
}

static void on_done(struct bus_nats *b, struct bn_req *r)
{
	if (r->kind == BN_RESUB) {
		if (r->seq == 1)
			went_up(b);
		else if (r->why[0])
			log_line(b, TCPCHAT_LOG_WARN, "%s", r->why);
		return;
	}
	/* The JetStream messages of a round: on one post of each. */
	b->pub.st.sent += r->bmsgs;
	b->pub.st.sent_bytes += r->bbytes;
	if (r->kind != BN_POST && r->kind != BN_FETCH && r->kind != BN_CLAIM) {
		if (r->why[0])
			log_line(b, TCPCHAT_LOG_WARN, "%s", r->why);
		return;
	}
	if (r->answered)
		return;
	olist_del(b, r);
	if (r->err == TCPCHAT_EBUS && r->why[0])
		log_line(b, TCPCHAT_LOG_WARN, "%s", r->why);
	answer(b, r, r->err);
}

static void on_garbage(struct bus_nats *b, const char *text)
{
	int64_t now = util__now_ms();
	b->garbage++;
	if (b->garbage_logged_ms && now - b->garbage_logged_ms < 1000)
		return;
	log_line(b, TCPCHAT_LOG_WARN, "NATS: %s (%" PRIu64 " such so far)",
	         text, b->garbage);
	b->garbage_logged_ms = now;
}

static void dispatch(struct bus_nats *b, struct bn_ev *ev)
{
	struct bus_events *e = &b->pub.ev;
	switch (ev->kind) {
	case BE_DOWN:
		went_down(b, (const char *)ev->data);
		break;
	case BE_ROOM: {
		/* Messages, not records: a message may carry many. */
		b->pub.st.recv += ev->nmsg;
		b->pub.st.recv_bytes += ev->mbytes;
		/* Only followed rooms, each seq once and in increasing order. */
		struct bn_followed *f = fol_get(b, ev->room, ev->rlen, 0);
		if (!f || ev->seq <= f->last)
			break;
		f->last = ev->seq;
		if (e->room)
			e->room(e->data, ev->room, ev->rlen, ev->seq, ev->data,
			        ev->len);
		break;
	}
	case BE_BASE: {
		struct bn_followed *f = fol_get(b, ev->room, ev->rlen, 0);
		if (f && ev->seq > f->last)
			f->last = ev->seq;
		break;
	}
	case BE_NOTE:
		b->pub.st.recv++;
		b->pub.st.recv_bytes += ev->len;
		if (e->note)
			e->note(e->data, ev->data, ev->len);
		break;
	case BE_GARBAGE:
		b->pub.st.recv++;
		on_garbage(b, (const char *)ev->data);
		break;
	case BE_DONE:
		on_done(b, ev->req);
		break;
	}
}

void bus_nats__on_wake(struct loop_watcher *w, unsigned events)
{
	struct bus_nats *b = w->data;
	char buf[64];
	TC_UNUSED(events);
	while (read(b->wake_rfd, buf, sizeof buf) > 0)
		;
	atomic_exchange(&b->wake_pending, 0);
	struct bn_ev *ev = take_events(b);
	b->in_dispatch = 1;
	while (ev) {
		struct bn_ev *next = ev->next;
		if (!b->dead)
			dispatch(b, ev);
		ev_free(ev);
		ev = next;
	}
	b->in_dispatch = 0;
	if (b->dead)
		free(b); /* destroy() was called by an event */
}

/* ---- requests ---------------------------------------------------------- */

static struct bn_req *req_new(int kind, const char *room, size_t rlen,
                              const void *data, size_t len, const char *stale,
                              size_t slen)
{
	struct bn_req *r = calloc(1, sizeof *r + rlen + len + slen + 1);
	if (!r)
		return NULL;
	char *p = (char *)(r + 1);
	r->kind = kind;
	r->room = p;
	r->rlen = rlen;
	if (rlen)
		memcpy(p, room, rlen);
	p += rlen;
	r->data = (const uint8_t *)p;
	r->len = len;
	if (len)
		memcpy(p, data, len);
	p += len;
	if (stale) {
		r->stale = p;
		r->slen = slen;
		memcpy(p, stale, slen);
	}
	return r;
}

/* Hands r to the worker; requests with an answer wait in the list of
 * the pending ones. */
static void enqueue(struct bus_nats *b, struct bn_req *r, int answered)
{
	r->gen = atomic_load(&b->gen);
	if (answered) {
		r->onext = b->ohead;
		if (b->ohead)
			b->ohead->oprev = r;
		b->ohead = r;
	} else {
		r->answered = 1;
	}
	pthread_mutex_lock(&b->wmu);
	if (b->wtail)
		b->wtail->next = r;
	else
		b->whead = r;
	b->wtail = r;
	pthread_cond_signal(&b->wcv);
	pthread_mutex_unlock(&b->wmu);
}

static int room_ok(const char *room, size_t rlen)
{
	return room && rlen > 0 && rlen <= BUS_NATS_ROOM_MAX;
}

static int nats_post(struct bus *pb, const char *room, size_t rlen,
                     uint64_t floor, const void *rec, size_t len, void *token)
{
	struct bus_nats *b = BN(pb);
	if (!room_ok(room, rlen) || !rec || !len)
		return TCPCHAT_EINVAL;
	if (len > BUS_REC_MAX)
		return TCPCHAT_EMSGSIZE;
	if (!pb->up)
		return TCPCHAT_EBUS;
	struct bn_req *r = req_new(BN_POST, room, rlen, rec, len, NULL, 0);
	if (!r)
		return TCPCHAT_ENOMEM;
	r->token = token;
	r->floor = floor;
	enqueue(b, r, 1); /* counted in st.sent by its round: on_done() */
	return 0;
}

static int follow_req(struct bus *pb, int kind, const char *room, size_t rlen)
{
	if (!room_ok(room, rlen))
		return TCPCHAT_EINVAL;
	struct bn_req *r = req_new(kind, room, rlen, NULL, 0, NULL, 0);
	if (!r)
		return TCPCHAT_ENOMEM;
	enqueue(BN(pb), r, 0);
	return 0;
}

static int nats_follow(struct bus *pb, const char *room, size_t rlen)
{
	if (!room_ok(room, rlen))
		return TCPCHAT_EINVAL;
	if (fol_get(BN(pb), room, rlen, 0))
		return 0; /* following twice is following once */
	if (!fol_get(BN(pb), room, rlen, 1))
		return TCPCHAT_ENOMEM;
	int rc = follow_req(pb, BN_FOLLOW, room, rlen);
	if (rc)
		fol_del(BN(pb), room, rlen);
	return rc;
}

static void nats_unfollow(struct bus *pb, const char *room, size_t rlen)
{
	if (!room_ok(room, rlen) || !fol_get(BN(pb), room, rlen, 0))
		return;
	fol_del(BN(pb), room, rlen);
	follow_req(pb, BN_UNFOLLOW, room, rlen);
}

static int nats_fetch(struct bus *pb, const char *room, size_t rlen,
                      uint64_t after, uint32_t max, void *token)
{
	if (!room_ok(room, rlen))
		return TCPCHAT_EINVAL;
	if (!pb->up)
		return TCPCHAT_EBUS;
	struct bn_req *r = req_new(BN_FETCH, room, rlen, NULL, 0, NULL, 0);
	if (!r)
		return TCPCHAT_ENOMEM;
	r->token = token;
	r->after = after;
	r->max = max;
	enqueue(BN(pb), r, 1);
	return 0;
}

/* A core NATS publish with the Tcpchat-From header. */
static int publish(struct bus_nats *b, const char *subj, const void *rec,
                   size_t len)
{
	if (!rec || !len)
		return TCPCHAT_EINVAL;
	if (len > BUS_REC_MAX)
		return TCPCHAT_EMSGSIZE;
	if (!b->pub.up)
		return TCPCHAT_EBUS;
	natsMsg *m = NULL;
	natsStatus s = natsMsg_Create(&m, subj, NULL, rec, (int)len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Tcpchat-From", b->pub.node);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(b->nc, m);
	natsMsg_Destroy(m);
	if (s != NATS_OK)
		return s == NATS_NO_MEMORY ? TCPCHAT_ENOMEM : TCPCHAT_EBUS;
	b->pub.st.sent++;
	b->pub.st.sent_bytes += len;
	return 0;
}

static int nats_broadcast(struct bus *pb, const void *rec, size_t len)
{
	return publish(BN(pb), BUS_NATS_ALL, rec, len);
}

static int nats_send(struct bus *pb, const char *node, size_t nlen,
                     const void *rec, size_t len)
{
	char subj[BUS_NATS_SUBJ_MAX];
	size_t pl = sizeof BUS_NATS_NODE_PREFIX - 1;
	if (!node || !nlen || nlen > BUS_NODE_MAX)
		return TCPCHAT_EINVAL;
	memcpy(subj, BUS_NATS_NODE_PREFIX, pl);
	bus_nats__hex(subj + pl, node, nlen);
	return publish(BN(pb), subj, rec, len);
}

static int nats_claim(struct bus *pb, const char *name, size_t nlen,
                      const char *stale, size_t slen, void *token)
{
	if (!name || !nlen || nlen > BUS_NAME_MAX || slen > BUS_NODE_MAX)
		return TCPCHAT_EINVAL;
	if (!pb->up)
		return TCPCHAT_EBUS;
	struct bn_req *r = req_new(BN_CLAIM, name, nlen, NULL, 0,
	                           stale ? stale : NULL, stale ? slen : 0);
	if (!r)
		return TCPCHAT_ENOMEM;
	r->token = token;
	enqueue(BN(pb), r, 1);
	return 0;
}

static void nats_release(struct bus *pb, const char *name, size_t nlen)
{
	if (!name || !nlen || nlen > BUS_NAME_MAX || !pb->up)
		return;
	struct bn_req *r = req_new(BN_RELEASE, name, nlen, NULL, 0, NULL, 0);
	if (r)
		enqueue(BN(pb), r, 0);
}

static void nats_reap(struct bus *pb)
{
	TC_UNUSED(pb);
}

/* Waits (bounded) until cond holds under cmu. */
static void wait_closed(struct bus_nats *b, int subs)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&b->cmu);
	while (subs ? atomic_load(&b->live_cbs) > 0 : !b->closed)
		if (pthread_cond_timedwait(&b->ccv, &b->cmu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&b->cmu);
}

/* Stops everything and frees all but the struct itself. */
void bus_nats__teardown(struct bus_nats *b)
{
	pthread_mutex_lock(&b->emu);
	atomic_store(&b->closing, 1);
	pthread_mutex_unlock(&b->emu);
	if (b->worker_started) {
		pthread_mutex_lock(&b->wmu);
		b->wstop = 1;
		pthread_cond_broadcast(&b->wcv);
		pthread_mutex_unlock(&b->wmu);
		pthread_join(b->worker, NULL);
	}
	/* Requests the worker never took, then events never called. */
	for (struct bn_req *r = b->whead, *next; r; r = next) {
		next = r->next;
		bus_nats__req_free(r);
	}
	b->whead = b->wtail = NULL;
	b->ohead = NULL; /* each is in one of the two FIFOs: freed there */
	for (struct bn_ev *ev = take_events(b), *next; ev; ev = next) {
		next = ev->next;
		ev_free(ev);
	}
	if (b->nc) {
		if (b->all_sub)
			natsSubscription_Unsubscribe(b->all_sub);
		if (b->node_sub)
			natsSubscription_Unsubscribe(b->node_sub);
		bus_nats__rooms_free(b);
		natsConnection_Close(b->nc);
		wait_closed(b, 0);
		wait_closed(b, 1);
		natsSubscription_Destroy(b->all_sub);
		natsSubscription_Destroy(b->node_sub);
		kvStore_Destroy(b->names);
		jsCtx_Destroy(b->js);
		natsConnection_Destroy(b->nc);
		b->nc = NULL;
	}
	bus_nats__rooms_free(b);
	fol_free(b);
	if (b->wake_w.fd >= 0)
		loop__unwatch(b->pub.loop, &b->wake_w);
	if (b->wake_rfd >= 0)
		close(b->wake_rfd);
	if (b->wake_wfd >= 0 && b->wake_wfd != b->wake_rfd)
		close(b->wake_wfd);
	pthread_mutex_destroy(&b->emu);
	pthread_mutex_destroy(&b->wmu);
	pthread_cond_destroy(&b->wcv);
	pthread_mutex_destroy(&b->cmu);
	pthread_cond_destroy(&b->ccv);
}

/* From outside loop callbacks, or from one of this bus's own events (it
 * is then freed when the dispatch of the events returns).  Not from
 * another watcher's callback: the loop may still hold the bus's watcher
 * in the batch it is dispatching. */
static void nats_destroy(struct bus *pb)
{
	struct bus_nats *b = BN(pb);
	if (!b || b->dead)
		return;
	bus_nats__teardown(b);
	if (b->in_dispatch)
		b->dead = 1; /* bus_nats__on_wake() frees it when it returns */
	else
		free(b);
}

uint64_t bus_nats__garbage(struct bus *pb)
{
	return BN(pb)->garbage;
}

const struct bus_ops bus_nats__ops = {
        .name = "nats",
        .post = nats_post,
        .follow = nats_follow,
        .unfollow = nats_unfollow,
        .fetch = nats_fetch,
        .broadcast = nats_broadcast,
        .send = nats_send,
        .claim = nats_claim,
        .release = nats_release,
        .reap = nats_reap,
        .destroy = nats_destroy,
};
