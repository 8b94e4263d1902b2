/* libtcpchat - the server: listeners, handshake, names, fan-out, timers,
 * slow-consumer policy, commands from other threads, shutdown. */
#include <errno.h>
#include <fcntl.h>
#if defined(__GLIBC__)
#include <malloc.h> /* malloc_trim */
#endif
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "internal.h"
#include "loop.h"
#include "net.h"

#define KIND_CONN 1
#define KIND_LISTENER 2
#define MAX_CODECS 16
#define MAX_LISTENERS 16
#define ACCEPT_BURST 64
#define EVENT_BATCH 256
#define ACCEPT_PAUSE_MS 100
#define TRIM_AFTER_BYTES (256 * 1024)
#define TRIM_DELAY_MS 500
#define INPUT_ROUNDS 2            /* extra non-blocking waits before output */
#define WHO_MAX_BYTES (60 * 1024) /* out of descriptors and no spare one */

enum sstate { S_HANDSHAKE, S_JOINED, S_DRAINING, S_DEAD };
enum tlist { T_NONE, T_HANDSHAKE, T_ACTIVE, T_LATE };

struct dlist {
	struct dlist *prev, *next;
};

#define CONTAINER(ptr, type, member)                                           \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static void dl_init(struct dlist *h)
{
	h->prev = h->next = h;
}
static int dl_empty(const struct dlist *h)
{
	return h->next == h;
}
static void dl_del(struct dlist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}
static void dl_push(struct dlist *h, struct dlist *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

struct listener {
	unsigned char kind;
	int fd;
	int codec_slot;
	const tcpchat_codec *codec;
	union net_addr addr;
	socklen_t addr_len;
};

struct sconn {
	struct conn c; /* first */
	tcpchat_server *srv;
	uint64_t id;
	struct dlist member; /* srv->pending, then srv->members */
	struct dlist timer;  /* one of the timer lists */
	struct sconn *hnext; /* name hash chain */
	struct sconn *fnext; /* flush list or dead list */
	struct sconn *cnext; /* srv->close_head, when doomed */
	int64_t last_ms;
	uint64_t dropped, dropped_told;
	int close_err; /* why it is doomed */
	uint8_t state, tlist, in_flush, codec_slot, name_len, doomed;
	char name[TCPCHAT_NAME_MAX + 1];
	union net_addr peer;
	socklen_t peer_len;
};

enum cmd_type { CMD_BROADCAST, CMD_SEND_TO, CMD_KICK };

struct cmd {
	struct loop_cmd node; /* first */
	int type;
	size_t len;
	char name[TCPCHAT_NAME_MAX + 1];
	char text[]; /* NUL-terminated */
};

typedef _Atomic uint64_t counter;

struct tcpchat_server {
	struct loop loop;
	struct reader rd;
	/* options */
	long long max_clients, max_frame, queue_frames, queue_bytes, policy;
	long long hs_timeout, idle_timeout, shutdown_timeout, log_level;
	long long backlog;
	tcpchat_server_handler handler;
	void *userdata;
	/* listeners and codecs */
	struct listener *listeners[MAX_LISTENERS];
	int nlisteners;
	const tcpchat_codec *codecs[MAX_CODECS];
	int ncodecs;
	/* connections */
	struct dlist members, pending; /* joined users; in handshake */
	struct dlist t_handshake, t_active, t_late;
	struct sconn **buckets;
	size_t nbuckets;
	struct sconn *flush_head, *dead_head;
	struct sconn *close_head; /* closes put off until fan-outs end */
	int fanning, reaping;
	uint64_t nconns, nusers;
	uint64_t next_conn_id, next_msg_id;
	int64_t now_ms, wall_ms;
	int reserve_fd;
	int64_t accept_paused_until; /* 0, or when to listen again */
	size_t freed_bytes;          /* see note_freed() */
	int busy;                    /* the last wait returned events */
	int64_t trim_due;
	/* run state */
	int running, stopping, abort_stop;
	int64_t stop_deadline;
	pthread_t thread;
	int has_thread, thread_rc;
	atomic_int stop_req;
	/* statistics, written by the loop thread only */
	counter st_clients, st_users, st_accepted, st_in, st_out, st_bytes_in,
	        st_bytes_out, st_dropped, st_proto, st_refused;
};

static void stat_add(counter *c, uint64_t n)
{
	atomic_store_explicit(c,
	                      atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}
static void stat_set(counter *c, uint64_t v)
{
	atomic_store_explicit(c, v, memory_order_relaxed);
}

/* Counts memory given back by connections; past TRIM_AFTER_BYTES the
 * allocator is asked, a little later, to return free pages to the system
 * (bursts and mass disconnects otherwise leave the heap at its peak). */
static void note_freed(tcpchat_server *srv, size_t bytes)
{
	srv->freed_bytes += bytes;
	if (srv->freed_bytes >= TRIM_AFTER_BYTES && !srv->trim_due)
		srv->trim_due = srv->now_ms + TRIM_DELAY_MS;
}

static void maybe_trim(tcpchat_server *srv)
{
	if (!srv->trim_due || srv->now_ms < srv->trim_due)
		return;
	if (srv->busy) { /* memory in use again soon: wait for a lull */
		srv->trim_due = srv->now_ms + TRIM_DELAY_MS;
		return;
	}
	srv->trim_due = 0;
	srv->freed_bytes = 0;
#if defined(__GLIBC__)
	malloc_trim(0);
#endif
}

/* ---- events and logging ------------------------------------------------ */

static int emit(tcpchat_server *srv, tcpchat_server_event *ev)
{
	if (!srv->handler)
		return 0;
	struct util_cb f;
	util__cb_enter(&f, srv);
	int rc = srv->handler(srv, ev, srv->userdata);
	util__cb_leave(&f);
	return rc;
}

static void slog(tcpchat_server *srv, int level, const char *fmt, ...)
        TC_PRINTF(3, 4);
static void slog(tcpchat_server *srv, int level, const char *fmt, ...)
{
	if (!srv->handler || level > srv->log_level)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	tcpchat_server_event ev = {.type = TCPCHAT_SEV_LOG};
	ev.level = level;
	ev.text = line;
	emit(srv, &ev);
}

static void conn_event(struct sconn *sc, tcpchat_server_event *ev, int type)
{
	memset(ev, 0, sizeof *ev);
	ev->type = type;
	ev->conn_id = sc->id;
	ev->peer = &sc->peer.sa;
	ev->peer_len = sc->peer_len;
	ev->name.ptr = sc->name;
	ev->name.len = sc->name_len;
	ev->codec = sc->c.codec->name;
}

/* ---- name hash ----------------------------------------------------------- */

static size_t name_hash(const char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static struct sconn *name_find(tcpchat_server *srv, const char *p, size_t n)
{
	if (!srv->nbuckets)
		return NULL;
	struct sconn *sc = srv->buckets[name_hash(p, n) & (srv->nbuckets - 1)];
	for (; sc; sc = sc->hnext)
		if (sc->name_len == n && memcmp(sc->name, p, n) == 0)
			return sc;
	return NULL;
}

static int name_insert(tcpchat_server *srv, struct sconn *sc)
{
	if (srv->nusers + 1 > srv->nbuckets) {
		size_t n = srv->nbuckets ? srv->nbuckets * 2 : 64;
		struct sconn **b = calloc(n, sizeof *b);
		if (!b)
			return TCPCHAT_ENOMEM;
		for (size_t i = 0; i < srv->nbuckets; i++) {
			struct sconn *x = srv->buckets[i];
			while (x) {
				struct sconn *next = x->hnext;
				size_t k = name_hash(x->name, x->name_len) &
				           (n - 1);
				x->hnext = b[k];
				b[k] = x;
				x = next;
			}
		}
		free(srv->buckets);
		srv->buckets = b;
		srv->nbuckets = n;
	}
	size_t k = name_hash(sc->name, sc->name_len) & (srv->nbuckets - 1);
	sc->hnext = srv->buckets[k];
	srv->buckets[k] = sc;
	return 0;
}

static void name_remove(tcpchat_server *srv, struct sconn *sc)
{
	struct sconn **pp = &srv->buckets[name_hash(sc->name, sc->name_len) &
	                                  (srv->nbuckets - 1)];
	while (*pp && *pp != sc)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = sc->hnext;
	sc->hnext = NULL;
}

/* ---- timers -------------------------------------------------------------- */

static void timer_set(tcpchat_server *srv, struct sconn *sc, int list)
{
	if (sc->tlist != T_NONE)
		dl_del(&sc->timer);
	sc->tlist = (uint8_t)list;
	if (list == T_HANDSHAKE)
		dl_push(&srv->t_handshake, &sc->timer);
	else if (list == T_ACTIVE)
		dl_push(&srv->t_active, &sc->timer);
	else if (list == T_LATE)
		dl_push(&srv->t_late, &sc->timer);
}

static void touch(tcpchat_server *srv, struct sconn *sc)
{
	if (sc->state != S_JOINED)
		return;
	if (sc->last_ms != srv->now_ms || sc->tlist != T_ACTIVE) {
		sc->last_ms = srv->now_ms;
		timer_set(srv, sc, T_ACTIVE);
	}
}

/* ---- output -------------------------------------------------------------- */

static void want_flush(tcpchat_server *srv, struct sconn *sc)
{
	if (!sc->in_flush) {
		sc->in_flush = 1;
		sc->fnext = srv->flush_head;
		srv->flush_head = sc;
	}
}

static struct frame *encode(tcpchat_server *srv, const tcpchat_codec *codec,
                            const tcpchat_msg *m)
{
	srv->rd.enc.len = 0;
	if (codec->encode(codec->codec_data, m, TCPCHAT_FROM_SERVER,
	                  &srv->rd.enc) != 0)
		return NULL;
	return frame__new(srv->rd.enc.data, srv->rd.enc.len);
}

static void sconn_close(struct sconn *sc, int reason, int error,
                        const char *why);
static void set_events(tcpchat_server *srv, struct sconn *sc, unsigned ev);

/* Closes sc because of a failed delivery (err: TCPCHAT_ESLOW or an
 * allocation failure).  Inside a fan-out the close waits until the
 * outermost one is over: closing fans out a LEAVE, which may close more
 * connections, and those must not be unlinked from the member list while
 * a fan-out is walking it. */
static void close_later(tcpchat_server *srv, struct sconn *sc, int err)
{
	if (sc->doomed)
		return;
	if (!srv->fanning) {
		sconn_close(sc,
		            err == TCPCHAT_ESLOW ? TCPCHAT_REASON_SLOW
		                                 : TCPCHAT_REASON_ERROR,
		            err,
		            err == TCPCHAT_ESLOW ? "too slow to keep up"
		                                 : "out of memory");
		return;
	}
	sc->doomed = 1;
	sc->close_err = err;
	sc->cnext = srv->close_head;
	srv->close_head = sc;
}

/* Carries out the closes put off by close_later(). */
static void close_doomed(tcpchat_server *srv)
{
	if (srv->reaping)
		return; /* the loop below picks up new ones */
	srv->reaping = 1;
	while (srv->close_head) {
		struct sconn *sc = srv->close_head;
		srv->close_head = sc->cnext;
		sc->cnext = NULL;
		sc->doomed = 0;
		close_later(srv, sc, sc->close_err);
	}
	srv->reaping = 0;
}

/* Queues f on sc within the configured limits. */
static int push(tcpchat_server *srv, struct sconn *sc, struct frame *f)
{
	return conn__push(&sc->c, f, (uint32_t)srv->queue_frames,
	                  (size_t)srv->queue_bytes);
}

/* Queues f on sc, applying the slow-consumer policy. */
static void deliver(tcpchat_server *srv, struct sconn *sc, struct frame *f)
{
	if (sc->doomed)
		return; /* closing: nothing more is queued */
	int rc = push(srv, sc, f);
	if (rc == TCPCHAT_EQUEUEFULL && !(sc->c.events & LOOP_WRITE)) {
		/* Output is flushed at the end of the iteration, so a fast
		 * reader's queue can fill within one burst of input.  It is
		 * only full if the socket takes nothing more either. */
		size_t bytes, frames;
		int frc = conn__flush(&sc->c, &srv->rd, &bytes, &frames);
		stat_add(&srv->st_bytes_out, bytes);
		if (frc < 0) {
			want_flush(srv, sc); /* flush_all() closes it */
			return;
		}
		if (frc == 1)
			set_events(srv, sc, LOOP_READ | LOOP_WRITE);
		rc = push(srv, sc, f);
	}
	if (rc == TCPCHAT_EQUEUEFULL) {
		sc->dropped++;
		stat_add(&srv->st_dropped, 1);
		if (srv->policy == TCPCHAT_SLOW_DISCONNECT) {
			close_later(srv, sc, TCPCHAT_ESLOW);
			return;
		}
		want_flush(srv, sc); /* reports the drop */
		if (srv->policy == TCPCHAT_SLOW_DROP_OLDEST &&
		    conn__drop_oldest(&sc->c))
			rc = push(srv, sc, f);
		if (rc == TCPCHAT_EQUEUEFULL)
			return;
	}
	if (rc) {
		close_later(srv, sc, rc);
		return;
	}
	stat_add(&srv->st_out, 1);
	want_flush(srv, sc);
}

/* Sends one message to one connection (control messages: no policy). */
static void send_one(tcpchat_server *srv, struct sconn *sc,
                     const tcpchat_msg *m)
{
	struct frame *f = encode(srv, sc->c.codec, m);
	if (!f) {
		slog(srv, TCPCHAT_LOG_ERROR, "conn %llu: cannot encode %s",
		     (unsigned long long)sc->id,
		     tcpchat_msg_type_name((int)m->type));
		return;
	}
	if (conn__push(&sc->c, f, UINT32_MAX, SIZE_MAX) == 0) {
		stat_add(&srv->st_out, 1);
		want_flush(srv, sc);
	}
	frame__unref(f);
}

static tcpchat_msg error_msg(const tcpchat_server *srv, int err,
                             const char *why)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_ERROR};
	m.code = (uint32_t)-err;
	m.timestamp = srv->wall_ms;
	m.body.ptr = why;
	m.body.len = strlen(why);
	return m;
}

static void send_error(tcpchat_server *srv, struct sconn *sc, int err,
                       const char *why)
{
	tcpchat_msg m = error_msg(srv, err, why);
	send_one(srv, sc, &m);
}

/* Sends m to every joined user except `except`, encoding it once per
 * codec in use. */
static void fanout(tcpchat_server *srv, const tcpchat_msg *m,
                   const struct sconn *except)
{
	struct frame *cache[MAX_CODECS] = {0};
	int bad[MAX_CODECS] = {0};
	struct dlist *it = srv->members.next;
	srv->fanning++; /* nobody leaves the list during the walk */
	while (it != &srv->members) {
		struct sconn *sc = CONTAINER(it, struct sconn, member);
		it = it->next;
		if (sc == except)
			continue;
		int slot = sc->codec_slot;
		if (!cache[slot] && !bad[slot]) {
			cache[slot] = encode(srv, sc->c.codec, m);
			bad[slot] = cache[slot] == NULL;
			if (bad[slot])
				slog(srv, TCPCHAT_LOG_ERROR,
				     "codec %s cannot encode a %s message",
				     sc->c.codec->name,
				     tcpchat_msg_type_name((int)m->type));
		}
		if (cache[slot])
			deliver(srv, sc, cache[slot]);
	}
	srv->fanning--;
	for (int i = 0; i < srv->ncodecs; i++)
		frame__unref(cache[i]);
	if (!srv->fanning)
		close_doomed(srv);
}

/* ---- closing ------------------------------------------------------------- */

static void sconn_close(struct sconn *sc, int reason, int error,
                        const char *why)
{
	tcpchat_server *srv = sc->srv;
	if (sc->state == S_DEAD)
		return;
	int joined = sc->state == S_JOINED || sc->state == S_DRAINING;
	sc->state = S_DEAD;
	timer_set(srv, sc, T_NONE);
	dl_del(&sc->member);
	if (joined) {
		name_remove(srv, sc);
		srv->nusers--;
		stat_set(&srv->st_users, srv->nusers);
	}
	tcpchat_server_event ev;
	conn_event(sc, &ev,
	           joined ? TCPCHAT_SEV_LEAVE : TCPCHAT_SEV_DISCONNECT);
	ev.reason = reason;
	ev.error = error;
	ev.text = why;
	emit(srv, &ev);
	if (joined && !srv->stopping) { /* a shutdown tells everyone */
		tcpchat_msg m = {.type = TCPCHAT_MSG_LEAVE};
		m.code = (uint32_t)reason;
		m.id = ++srv->next_msg_id;
		m.timestamp = srv->wall_ms;
		m.sender.ptr = sc->name;
		m.sender.len = sc->name_len;
		if (reason == TCPCHAT_REASON_KICKED && why) {
			m.body.ptr = why;
			m.body.len = strlen(why);
		}
		fanout(srv, &m, sc);
	}
	if (sc->c.fd >= 0)
		loop__del(&srv->loop, sc->c.fd);
	if (reason == TCPCHAT_REASON_SLOW) {
		/* Nothing more of the chat: only the reason, if it fits. */
		conn__drop_unsent(&sc->c);
		send_error(srv, sc, TCPCHAT_ESLOW, why);
	}
	want_flush(srv, sc); /* a last flush, then it is freed */
}

static void sconn_fail(struct sconn *sc, int reason, int err, const char *why)
{
	if (sc->state == S_DEAD)
		return;
	send_error(sc->srv, sc, err, why);
	sconn_close(sc, reason, err, why);
}

static void sconn_free(tcpchat_server *srv, struct sconn *sc)
{
	if (sc->c.fd >= 0) {
		/* Read what the peer still sent, so that close() does not
		 * answer with a reset that could discard our last frames. */
		char junk[4096];
		for (int i = 0; i < 16; i++)
			if (read(sc->c.fd, junk, sizeof junk) <= 0)
				break;
		close(sc->c.fd);
	}
	note_freed(srv, sizeof *sc + sc->c.qcap * sizeof(struct frame *));
	conn__clear(&sc->c);
	srv->nconns--;
	stat_set(&srv->st_clients, srv->nconns);
	free(sc);
}

/* ---- incoming messages --------------------------------------------------- */

static int on_hello(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	if (m->type != TCPCHAT_MSG_HELLO) {
		sconn_fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_EPROTO,
		           "expected HELLO");
		stat_add(&srv->st_proto, 1);
		return 1;
	}
	if (m->code != TCPCHAT_PROTOCOL_VERSION) {
		stat_add(&srv->st_proto, 1);
		sconn_fail(
		        sc, TCPCHAT_REASON_ERROR, TCPCHAT_EVERSION,
		        "unsupported protocol version (this server speaks 1)");
		return 1;
	}
	if (tcpchat_name_check(m->sender.ptr, m->sender.len) != 0) {
		sconn_fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_EBADNAME,
		           "invalid name: use 1-32 bytes of printable UTF-8 "
		           "without spaces");
		stat_add(&srv->st_refused, 1);
		return 1;
	}
	if (name_find(srv, m->sender.ptr, m->sender.len)) {
		sconn_fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_ENAMEINUSE,
		           "name already in use");
		stat_add(&srv->st_refused, 1);
		return 1;
	}
	memcpy(sc->name, m->sender.ptr, m->sender.len);
	sc->name[m->sender.len] = '\0';
	sc->name_len = (uint8_t)m->sender.len;

	tcpchat_server_event ev;
	conn_event(sc, &ev, TCPCHAT_SEV_JOIN);
	if (emit(srv, &ev)) {
		const char *why = ev.refuse_reason ? ev.refuse_reason
		                                   : "refused by the server";
		sc->name_len = 0;
		sc->name[0] = '\0';
		sconn_fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_EREFUSED, why);
		stat_add(&srv->st_refused, 1);
		return 1;
	}
	if (name_insert(srv, sc) != 0) {
		sconn_fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_ENOMEM,
		           "server out of memory");
		return 1;
	}
	sc->state = S_JOINED;
	sc->c.dflags = 0;
	dl_del(&sc->member);
	dl_push(&srv->members, &sc->member);
	srv->nusers++;
	stat_set(&srv->st_users, srv->nusers);
	touch(srv, sc);

	tcpchat_msg w = {.type = TCPCHAT_MSG_WELCOME};
	w.code = TCPCHAT_PROTOCOL_VERSION;
	w.timestamp = srv->wall_ms;
	w.sender.ptr = sc->name;
	w.sender.len = sc->name_len;
	send_one(srv, sc, &w);

	tcpchat_msg j = {.type = TCPCHAT_MSG_JOIN};
	j.id = ++srv->next_msg_id;
	j.timestamp = srv->wall_ms;
	j.sender = w.sender;
	fanout(srv, &j, sc);
	return 0;
}

static int on_text(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	if (!util__text_ok(m->body.ptr, m->body.len)) {
		send_error(srv, sc, TCPCHAT_EBADMSG,
		           "message must be non-empty UTF-8 text without "
		           "control characters");
		return 0;
	}
	tcpchat_msg out = {.type = TCPCHAT_MSG_TEXT};
	out.id = ++srv->next_msg_id;
	out.timestamp = srv->wall_ms;
	out.sender.ptr = sc->name;
	out.sender.len = sc->name_len;
	out.body = m->body;
	if (srv->handler) {
		tcpchat_server_event ev;
		conn_event(sc, &ev, TCPCHAT_SEV_MESSAGE);
		ev.msg = &out;
		if (emit(srv, &ev)) {
			send_error(srv, sc, TCPCHAT_EREFUSED,
			           ev.refuse_reason ? ev.refuse_reason
			                            : "message refused");
			return 0;
		}
	}
	fanout(srv, &out, sc);
	return 0;
}

/* Answers WHO: the number of users and their names in join order (the
 * list is cut at WHO_MAX_BYTES; the number stays exact). */
static void send_who(tcpchat_server *srv, struct sconn *sc)
{
	tcpchat_buf names = {0};
	struct dlist *it;
	for (it = srv->members.next; it != &srv->members; it = it->next) {
		struct sconn *u = CONTAINER(it, struct sconn, member);
		if (names.len + u->name_len + 1 > WHO_MAX_BYTES)
			break;
		if ((names.len && tcpchat_buf_append(&names, " ", 1)) ||
		    tcpchat_buf_append(&names, u->name, u->name_len))
			break;
	}
	tcpchat_msg m = {.type = TCPCHAT_MSG_WHO};
	m.code = (uint32_t)srv->nusers;
	m.timestamp = srv->wall_ms;
	m.body.ptr = names.data;
	m.body.len = names.len;
	send_one(srv, sc, &m);
	tcpchat_buf_free(&names);
}

static int on_msg(void *ctx, tcpchat_msg *m)
{
	struct sconn *sc = ctx;
	tcpchat_server *srv = sc->srv;
	stat_add(&srv->st_in, 1);
	if (sc->state == S_HANDSHAKE)
		return on_hello(srv, sc, m);
	if (sc->state != S_JOINED)
		return 0; /* draining on shutdown: ignore */
	touch(srv, sc);
	switch (m->type) {
	case TCPCHAT_MSG_TEXT:
		return on_text(srv, sc, m);
	case TCPCHAT_MSG_PING: {
		tcpchat_msg p = {.type = TCPCHAT_MSG_PONG};
		p.id = m->id;
		p.timestamp = srv->wall_ms;
		send_one(srv, sc, &p);
		return 0;
	}
	case TCPCHAT_MSG_PONG:
	case TCPCHAT_MSG_ERROR:
		return 0;
	case TCPCHAT_MSG_WHO:
		send_who(srv, sc);
		return 0;
	case TCPCHAT_MSG_LEAVE:
		sconn_close(sc, TCPCHAT_REASON_QUIT, 0, "quit");
		return 1;
	default:
		stat_add(&srv->st_proto, 1);
		sconn_fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_EPROTO,
		           "unexpected message type");
		return 1;
	}
}

static void on_readable(tcpchat_server *srv, struct sconn *sc)
{
	struct conn_read_result res;
	int rc = conn__read(&sc->c, &srv->rd, (size_t)srv->max_frame, on_msg,
	                    sc, &res);
	stat_add(&srv->st_bytes_in, res.bytes);
	if (rc == 0 || rc == 1 || sc->state == S_DEAD)
		return;
	if (rc == TCPCHAT_ECLOSED ||
	    (rc == TCPCHAT_ESYS && errno == ECONNRESET)) {
		sconn_close(sc, TCPCHAT_REASON_CLOSED, 0, "connection closed");
	} else if (rc == TCPCHAT_EPROTO || rc == TCPCHAT_EMSGSIZE) {
		stat_add(&srv->st_proto, 1);
		slog(srv, TCPCHAT_LOG_WARN, "conn %llu: %s: %s",
		     (unsigned long long)sc->id, tcpchat_strerror(rc),
		     res.error);
		sconn_fail(sc, TCPCHAT_REASON_ERROR, rc, res.error);
	} else {
		sconn_close(sc, TCPCHAT_REASON_ERROR, rc,
		            rc == TCPCHAT_ESYS ? strerror(errno)
		                               : tcpchat_strerror(rc));
	}
}

static void set_events(tcpchat_server *srv, struct sconn *sc, unsigned ev)
{
	if (sc->c.events == ev || sc->state == S_DEAD)
		return;
	if (loop__mod(&srv->loop, sc->c.fd, ev, sc) == 0)
		sc->c.events = ev;
}

static void do_flush(tcpchat_server *srv, struct sconn *sc)
{
	size_t bytes, frames;
	uint32_t cap = sc->c.qcap;
	int rc = conn__flush(&sc->c, &srv->rd, &bytes, &frames);
	if (sc->c.qcap < cap)
		note_freed(srv, cap * sizeof(struct frame *));
	stat_add(&srv->st_bytes_out, bytes);
	if (rc < 0) {
		if (sc->state != S_DEAD)
			sconn_close(sc, TCPCHAT_REASON_ERROR, rc,
			            strerror(errno));
		return;
	}
	set_events(srv, sc, LOOP_READ | (rc == 1 ? LOOP_WRITE : 0));
}

/* End of an iteration: flush every connection that got output, report
 * drops, free closed connections. */
static void flush_all(tcpchat_server *srv)
{
	while (srv->flush_head) {
		struct sconn *list = srv->flush_head;
		srv->flush_head = NULL;
		while (list) {
			struct sconn *sc = list;
			list = sc->fnext;
			sc->in_flush = 0;
			sc->fnext = NULL;
			if (sc->state == S_DEAD) {
				size_t b, f;
				if (sc->c.qcount) {
					conn__flush(&sc->c, &srv->rd, &b, &f);
					stat_add(&srv->st_bytes_out, b);
				}
				sc->fnext = srv->dead_head;
				srv->dead_head = sc;
				continue;
			}
			if (!(sc->c.events & LOOP_WRITE))
				do_flush(srv, sc);
			if (sc->dropped != sc->dropped_told &&
			    sc->state != S_DEAD) {
				sc->dropped_told = sc->dropped;
				tcpchat_server_event ev;
				conn_event(sc, &ev, TCPCHAT_SEV_DROP);
				ev.dropped = sc->dropped;
				emit(srv, &ev);
			}
		}
	}
	while (srv->dead_head) {
		struct sconn *sc = srv->dead_head;
		srv->dead_head = sc->fnext;
		sconn_free(srv, sc);
	}
}

/* ---- accepting ----------------------------------------------------------- */

static void refuse_now(tcpchat_server *srv, int fd, const tcpchat_codec *codec,
                       int err, const char *why)
{
	tcpchat_msg m = error_msg(srv, err, why);
	srv->rd.enc.len = 0;
	if (codec->encode(codec->codec_data, &m, TCPCHAT_FROM_SERVER,
	                  &srv->rd.enc) == 0) {
		ssize_t n = send(fd, srv->rd.enc.data, srv->rd.enc.len,
		                 MSG_NOSIGNAL);
		TC_UNUSED(n);
	}
	close(fd);
	stat_add(&srv->st_refused, 1);
}

/* A descriptor kept in reserve: closed to accept (and refuse) one
 * connection when the process has run out, so the loop does not spin on
 * a listener it cannot serve.  -1 if none could be had. */
static int spare_fd(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void listeners_watch(tcpchat_server *srv, unsigned events)
{
	for (int i = 0; i < srv->nlisteners; i++) {
		struct listener *l = srv->listeners[i];
		if (l->fd >= 0)
			loop__mod(&srv->loop, l->fd, events, l);
	}
}

static void pause_accepting(tcpchat_server *srv)
{
	srv->accept_paused_until = srv->now_ms + ACCEPT_PAUSE_MS;
	listeners_watch(srv, 0);
}

static void accept_some(tcpchat_server *srv, struct listener *l)
{
	for (int i = 0; i < ACCEPT_BURST; i++) {
		union net_addr peer;
		socklen_t plen;
		int fd;
		if (net__accept(l->fd, &fd, &peer, &plen) != 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: use the spare one to take
				 * the connection off the queue and close it, so
				 * the loop does not spin on a ready listener. */
				slog(srv, TCPCHAT_LOG_WARN,
				     "accept: %s; refusing a connection",
				     strerror(errno));
				if (srv->reserve_fd >= 0) {
					close(srv->reserve_fd);
					int t = accept(l->fd, NULL, NULL);
					if (t >= 0)
						close(t);
					srv->reserve_fd = spare_fd();
					stat_add(&srv->st_refused, 1);
					continue;
				}
				/* No spare either: stop listening for a while. */
				pause_accepting(srv);
				return;
			}
			if (errno == ECONNABORTED || errno == EINTR ||
			    errno == EPROTO)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				slog(srv, TCPCHAT_LOG_ERROR, "accept: %s",
				     strerror(errno));
			return;
		}
		if (srv->nconns >= (uint64_t)srv->max_clients) {
			slog(srv, TCPCHAT_LOG_WARN,
			     "refusing a connection: server full (%llu)",
			     (unsigned long long)srv->nconns);
			refuse_now(srv, fd, l->codec, TCPCHAT_EFULL,
			           "server full");
			continue;
		}
		struct sconn *sc = calloc(1, sizeof *sc);
		if (!sc) {
			refuse_now(srv, fd, l->codec, TCPCHAT_ENOMEM,
			           "server out of memory");
			continue;
		}
		sc->c.kind = KIND_CONN;
		sc->c.fd = fd;
		sc->c.codec = l->codec;
		sc->c.dflags = TCPCHAT_HANDSHAKE;
		sc->srv = srv;
		sc->id = ++srv->next_conn_id;
		sc->codec_slot = (uint8_t)l->codec_slot;
		sc->peer = peer;
		sc->peer_len = plen;
		sc->last_ms = srv->now_ms;
		sc->member.prev = sc->member.next = &sc->member;
		sc->timer.prev = sc->timer.next = &sc->timer;
		sc->state = S_HANDSHAKE;

		tcpchat_server_event ev;
		conn_event(sc, &ev, TCPCHAT_SEV_CONNECT);
		if (emit(srv, &ev)) {
			close(fd);
			free(sc);
			stat_add(&srv->st_refused, 1);
			continue;
		}
		if (loop__add(&srv->loop, fd, LOOP_READ, sc) != 0) {
			slog(srv, TCPCHAT_LOG_ERROR, "cannot watch socket: %s",
			     strerror(errno));
			close(fd);
			free(sc);
			continue;
		}
		sc->c.events = LOOP_READ;
		dl_push(&srv->pending, &sc->member);
		srv->nconns++;
		stat_set(&srv->st_clients, srv->nconns);
		stat_add(&srv->st_accepted, 1);
		if (srv->hs_timeout > 0)
			timer_set(srv, sc, T_HANDSHAKE);
	}
}

/* ---- timers -------------------------------------------------------------- */

static void run_timers(tcpchat_server *srv)
{
	maybe_trim(srv);
	if (srv->accept_paused_until &&
	    srv->now_ms >= srv->accept_paused_until) {
		srv->accept_paused_until = 0;
		if (srv->reserve_fd < 0)
			srv->reserve_fd = spare_fd();
		if (!srv->stopping)
			listeners_watch(srv, LOOP_READ);
	}
	int64_t now = srv->now_ms;
	while (!dl_empty(&srv->t_handshake)) {
		struct sconn *sc =
		        CONTAINER(srv->t_handshake.next, struct sconn, timer);
		if (now - sc->last_ms < srv->hs_timeout)
			break;
		sconn_fail(sc, TCPCHAT_REASON_TIMEOUT, TCPCHAT_ETIMEDOUT,
		           "handshake timeout");
	}
	if (srv->idle_timeout <= 0)
		return;
	int64_t half = srv->idle_timeout / 2;
	while (!dl_empty(&srv->t_active)) {
		struct sconn *sc =
		        CONTAINER(srv->t_active.next, struct sconn, timer);
		if (now - sc->last_ms < half)
			break;
		timer_set(srv, sc, T_LATE);
		if (!(sc->c.codec->flags & TCPCHAT_CODEC_NO_PING)) {
			tcpchat_msg p = {.type = TCPCHAT_MSG_PING};
			p.timestamp = srv->wall_ms;
			send_one(srv, sc, &p);
		}
	}
	while (!dl_empty(&srv->t_late)) {
		struct sconn *sc =
		        CONTAINER(srv->t_late.next, struct sconn, timer);
		if (now - sc->last_ms < srv->idle_timeout)
			break;
		sconn_fail(sc, TCPCHAT_REASON_TIMEOUT, TCPCHAT_ETIMEDOUT,
		           "idle timeout");
	}
}

static int64_t next_timer(tcpchat_server *srv)
{
	int64_t due = INT64_MAX;
	if (srv->accept_paused_until)
		due = srv->accept_paused_until;
	if (srv->trim_due)
		due = TC_MIN(due, srv->trim_due);
	if (!dl_empty(&srv->t_handshake)) {
		struct sconn *sc =
		        CONTAINER(srv->t_handshake.next, struct sconn, timer);
		due = TC_MIN(due, sc->last_ms + srv->hs_timeout);
	}
	if (srv->idle_timeout > 0 && !dl_empty(&srv->t_active)) {
		struct sconn *sc =
		        CONTAINER(srv->t_active.next, struct sconn, timer);
		due = TC_MIN(due, sc->last_ms + srv->idle_timeout / 2);
	}
	if (srv->idle_timeout > 0 && !dl_empty(&srv->t_late)) {
		struct sconn *sc =
		        CONTAINER(srv->t_late.next, struct sconn, timer);
		due = TC_MIN(due, sc->last_ms + srv->idle_timeout);
	}
	if (srv->stopping)
		due = TC_MIN(due, srv->stop_deadline);
	return due;
}

/* ---- commands from other threads ----------------------------------------- */

static int post(tcpchat_server *srv, int type, const char *name,
                const char *text, size_t len)
{
	size_t nlen = name ? strlen(name) : 0;
	if (name && (nlen == 0 || nlen > TCPCHAT_NAME_MAX))
		return TCPCHAT_EINVAL;
	struct cmd *c = malloc(sizeof *c + len + 1);
	if (!c)
		return TCPCHAT_ENOMEM;
	c->type = type;
	c->len = len;
	memset(c->name, 0, sizeof c->name);
	if (name)
		memcpy(c->name, name, nlen);
	if (len)
		memcpy(c->text, text, len);
	c->text[len] = '\0';
	loop__post(&srv->loop, &c->node);
	return 0;
}

static int check_text(const tcpchat_server *srv, const char *text, size_t len)
{
	if (!util__text_ok(text, len))
		return TCPCHAT_EINVAL;
	if (len > (size_t)srv->max_frame)
		return TCPCHAT_EMSGSIZE;
	return 0;
}

TCPCHAT_API int tcpchat_server_broadcast(tcpchat_server *srv, const char *text,
                                         size_t len)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	int rc = check_text(srv, text, len);
	return rc ? rc : post(srv, CMD_BROADCAST, NULL, text, len);
}

TCPCHAT_API int tcpchat_server_send_to(tcpchat_server *srv, const char *name,
                                       const char *text, size_t len)
{
	if (!srv || !name)
		return TCPCHAT_EINVAL;
	int rc = check_text(srv, text, len);
	return rc ? rc : post(srv, CMD_SEND_TO, name, text, len);
}

TCPCHAT_API int tcpchat_server_kick(tcpchat_server *srv, const char *name,
                                    const char *reason)
{
	if (!srv || !name)
		return TCPCHAT_EINVAL;
	if (!reason || !*reason)
		reason = "kicked";
	size_t len = strlen(reason);
	if (len > 256)
		len = 256;
	return post(srv, CMD_KICK, name, reason, len);
}

/* Carries out one command posted by another thread. */
static void run_command(tcpchat_server *srv, const struct cmd *c)
{
	if (srv->stopping)
		return; /* the server is going away */
	tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT};
	m.timestamp = srv->wall_ms;
	m.body.ptr = c->text;
	m.body.len = c->len;
	if (c->type == CMD_BROADCAST) {
		m.id = ++srv->next_msg_id;
		fanout(srv, &m, NULL);
		return;
	}
	struct sconn *to = name_find(srv, c->name, strlen(c->name));
	if (!to) {
		slog(srv, TCPCHAT_LOG_INFO, "%s: no user called %s",
		     c->type == CMD_KICK ? "kick" : "send", c->name);
	} else if (c->type == CMD_SEND_TO) {
		m.id = ++srv->next_msg_id;
		struct frame *f = encode(srv, to->c.codec, &m);
		if (f) {
			deliver(srv, to, f);
			frame__unref(f);
		}
	} else {
		slog(srv, TCPCHAT_LOG_INFO, "kicking %s: %s", c->name, c->text);
		sconn_fail(to, TCPCHAT_REASON_KICKED, TCPCHAT_EKICKED, c->text);
	}
}

static void run_commands(tcpchat_server *srv)
{
	struct loop_cmd *n = loop__take(&srv->loop);
	while (n) {
		struct loop_cmd *next = n->next;
		run_command(srv, (struct cmd *)n);
		free(n);
		n = next;
	}
}

/* ---- the loop ------------------------------------------------------------ */

static void close_listeners(tcpchat_server *srv)
{
	for (int i = 0; i < srv->nlisteners; i++) {
		struct listener *l = srv->listeners[i];
		if (l->fd >= 0) {
			loop__del(&srv->loop, l->fd);
			close(l->fd);
			l->fd = -1;
		}
	}
}

static int open_listeners(tcpchat_server *srv)
{
	for (int i = 0; i < srv->nlisteners; i++) {
		struct listener *l = srv->listeners[i];
		if (l->fd < 0) {
			int rc = net__listen(&l->addr, l->addr_len,
			                     (int)srv->backlog, &l->fd);
			if (rc)
				return rc;
		}
		if (loop__add(&srv->loop, l->fd, LOOP_READ, l) != 0 &&
		    errno != EEXIST)
			return TCPCHAT_ESYS;
	}
	return 0;
}

static void begin_shutdown(tcpchat_server *srv)
{
	srv->stopping = 1;
	srv->stop_deadline =
	        srv->now_ms + (srv->abort_stop ? 0 : srv->shutdown_timeout);
	close_listeners(srv);
	slog(srv, TCPCHAT_LOG_INFO, "shutting down (%llu users)",
	     (unsigned long long)srv->nusers);
	/* Connections still in the handshake go at once. */
	while (!dl_empty(&srv->pending)) {
		struct sconn *sc =
		        CONTAINER(srv->pending.next, struct sconn, member);
		sconn_fail(sc, TCPCHAT_REASON_SHUTDOWN, TCPCHAT_ESHUTDOWN,
		           "server shutting down");
	}
	struct dlist *it;
	for (it = srv->members.next; it != &srv->members; it = it->next) {
		struct sconn *sc = CONTAINER(it, struct sconn, member);
		send_error(srv, sc, TCPCHAT_ESHUTDOWN, "server shutting down");
		sc->state = S_DRAINING;
		timer_set(srv, sc, T_NONE);
	}
}

/* Closes the remaining users once their queues are empty or time is up
 * (they are freed, and counted out, by the next flush_all()). */
static void finish_shutdown(tcpchat_server *srv)
{
	int late = srv->now_ms >= srv->stop_deadline;
	struct dlist *it = srv->members.next;
	while (it != &srv->members) {
		struct sconn *sc = CONTAINER(it, struct sconn, member);
		it = it->next;
		if (late || sc->c.qcount == 0)
			sconn_close(sc, TCPCHAT_REASON_SHUTDOWN,
			            TCPCHAT_ESHUTDOWN, "server shutting down");
	}
}

/* Carries out what other threads asked for, if the last wait was woken. */
static void handle_wake(tcpchat_server *srv)
{
	if (!srv->loop.woken)
		return;
	/* Read the stop request before taking the commands: what was posted
	 * before stop() is then carried out before the shutdown drops
	 * commands. */
	int stop = atomic_load(&srv->stop_req);
	run_commands(srv);
	if (stop && !srv->stopping)
		begin_shutdown(srv);
}

/* Handles ready sockets; returns how many had input to read. */
static int handle_events(tcpchat_server *srv, struct loop_event *evs, int n)
{
	int inputs = 0;
	for (int i = 0; i < n; i++) {
		unsigned char kind = *(unsigned char *)evs[i].ptr;
		if (kind == KIND_LISTENER) {
			if (!srv->stopping)
				accept_some(srv, evs[i].ptr);
			continue;
		}
		struct sconn *sc = evs[i].ptr;
		if (sc->state == S_DEAD)
			continue;
		if (evs[i].events & LOOP_WRITE)
			do_flush(srv, sc);
		if (sc->state != S_DEAD &&
		    (evs[i].events & (LOOP_READ | LOOP_ERROR))) {
			on_readable(srv, sc);
			inputs++;
		}
	}
	return inputs;
}

static int iterate(tcpchat_server *srv, int timeout_ms)
{
	struct loop_event evs[EVENT_BATCH];
	int n = loop__wait(&srv->loop, timeout_ms, evs, EVENT_BATCH);
	if (n < 0)
		return n;
	srv->now_ms = util__now_ms();
	srv->wall_ms = util__wall_ms();
	srv->busy = n > 0;
	handle_wake(srv);
	int inputs = handle_events(srv, evs, n);
	/* Output waits for the end of the iteration.  While input keeps
	 * arriving, take a little more first (without blocking), so that
	 * messages that arrive together leave together in one write. */
	for (int round = 0; inputs && round < INPUT_ROUNDS; round++) {
		n = loop__wait(&srv->loop, 0, evs, EVENT_BATCH);
		if (n < 0)
			break;
		handle_wake(srv);
		inputs = handle_events(srv, evs, n);
	}
	run_timers(srv);
	flush_all(srv);
	if (srv->stopping) {
		/* Connections closed by finish_shutdown() are only counted
		 * out by flush_all(): test for the end after it, or the loop
		 * waits for the shutdown deadline with nothing left to do. */
		finish_shutdown(srv);
		flush_all(srv);
		if (dl_empty(&srv->members) && srv->nconns == 0)
			return 1;
	}
	return 0;
}

static int wait_ms(tcpchat_server *srv)
{
	int64_t due = next_timer(srv);
	if (due == INT64_MAX)
		return -1;
	int64_t d = due - util__now_ms();
	if (d < 0)
		d = 0;
	return d > 60000 ? 60000 : (int)d;
}

static int begin(tcpchat_server *srv)
{
	if (srv->running)
		return 0;
	int rc = open_listeners(srv);
	if (rc)
		return rc;
	srv->running = 1;
	srv->stopping = 0;
	srv->now_ms = util__now_ms();
	srv->wall_ms = util__wall_ms();
	slog(srv, TCPCHAT_LOG_INFO, "server running, %d listener(s)",
	     srv->nlisteners);
	return 0;
}

static void end(tcpchat_server *srv)
{
	srv->running = 0;
	srv->stopping = 0;
	atomic_store(&srv->stop_req, 0);
	slog(srv, TCPCHAT_LOG_INFO, "server stopped");
}

static int run_loop(tcpchat_server *srv)
{
	int rc = begin(srv);
	if (rc)
		return rc;
	for (;;) {
		rc = iterate(srv, wait_ms(srv));
		if (rc != 0)
			break;
	}
	end(srv);
	return rc < 0 ? rc : 0;
}

TCPCHAT_API int tcpchat_server_run(tcpchat_server *srv)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	if (util__in_callback(srv))
		return TCPCHAT_ERECURSIVE;
	/* has_thread first: it belongs to the caller of start(), while
	 * running is written by the library's thread. */
	if (srv->has_thread || srv->running)
		return TCPCHAT_ESTATE;
	return run_loop(srv);
}

static void *thread_main(void *arg)
{
	tcpchat_server *srv = arg;
	srv->thread_rc = run_loop(srv);
	return NULL;
}

TCPCHAT_API int tcpchat_server_start(tcpchat_server *srv)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	if (util__in_callback(srv))
		return TCPCHAT_ERECURSIVE;
	/* has_thread first: it belongs to the caller of start(), while
	 * running is written by the library's thread. */
	if (srv->has_thread || srv->running)
		return TCPCHAT_ESTATE;
	/* Open the listeners here so that errors reach the caller. */
	int rc = open_listeners(srv);
	if (rc)
		return rc;
	rc = pthread_create(&srv->thread, NULL, thread_main, srv);
	if (rc) {
		errno = rc;
		return TCPCHAT_ESYS;
	}
	srv->has_thread = 1;
	return 0;
}

TCPCHAT_API int tcpchat_server_join(tcpchat_server *srv)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	if (util__in_callback(srv))
		return TCPCHAT_ERECURSIVE;
	if (!srv->has_thread)
		return TCPCHAT_ESTATE;
	pthread_join(srv->thread, NULL);
	srv->has_thread = 0;
	return srv->thread_rc;
}

TCPCHAT_API int tcpchat_server_stop(tcpchat_server *srv)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	atomic_store(&srv->stop_req, 1);
	loop__wake(&srv->loop);
	return 0;
}

TCPCHAT_API int tcpchat_server_fd(const tcpchat_server *srv)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	return loop__fd(&srv->loop);
}

TCPCHAT_API int tcpchat_server_timeout_ms(tcpchat_server *srv)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	if (!srv->running)
		return 0; /* step() must be called to start */
	return wait_ms(srv);
}

TCPCHAT_API int tcpchat_server_step(tcpchat_server *srv)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	if (util__in_callback(srv))
		return TCPCHAT_ERECURSIVE;
	if (srv->has_thread)
		return TCPCHAT_ESTATE;
	if (!srv->running) {
		int rc = begin(srv);
		if (rc)
			return rc;
	}
	int rc = iterate(srv, 0);
	if (rc != 0) {
		end(srv);
		return rc < 0 ? rc : 1;
	}
	return 0;
}

/* ---- setup --------------------------------------------------------------- */

TCPCHAT_API int tcpchat_server_new(tcpchat_server **out)
{
	if (!out)
		return TCPCHAT_EINVAL;
	*out = NULL;
	tcpchat_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return TCPCHAT_ENOMEM;
	srv->max_clients = 10000;
	srv->max_frame = 65536;
	srv->queue_frames = 1024;
	srv->queue_bytes = 1 << 20;
	srv->policy = TCPCHAT_SLOW_DROP_NEWEST;
	srv->hs_timeout = 10000;
	srv->idle_timeout = 120000;
	srv->shutdown_timeout = 2000;
	srv->log_level = TCPCHAT_LOG_INFO;
	srv->backlog = 511;
	dl_init(&srv->members);
	dl_init(&srv->pending);
	dl_init(&srv->t_handshake);
	dl_init(&srv->t_active);
	dl_init(&srv->t_late);
	atomic_init(&srv->stop_req, 0);
	int rc = loop__init(&srv->loop);
	if (rc) {
		free(srv);
		return rc;
	}
	rc = reader__init(&srv->rd, (size_t)srv->max_frame);
	if (rc) {
		loop__fini(&srv->loop);
		free(srv);
		return rc;
	}
	srv->reserve_fd = spare_fd();
	*out = srv;
	return 0;
}

TCPCHAT_API void tcpchat_server_destroy(tcpchat_server *srv)
{
	if (!srv)
		return;
	if (srv->has_thread) {
		srv->abort_stop = 1;
		tcpchat_server_stop(srv);
		pthread_join(srv->thread, NULL);
		srv->has_thread = 0;
	}
	/* Close whatever is left, without events: the host is tearing the
	 * server down. */
	srv->handler = NULL;
	srv->stopping = 1; /* no LEAVE fan-out */
	struct dlist *lists[] = {&srv->members, &srv->pending};
	for (size_t i = 0; i < TC_ARRAY_LEN(lists); i++) {
		while (!dl_empty(lists[i])) {
			struct sconn *sc =
			        CONTAINER(lists[i]->next, struct sconn, member);
			conn__clear(&sc->c); /* no last flush */
			sconn_close(sc, TCPCHAT_REASON_SHUTDOWN,
			            TCPCHAT_ESHUTDOWN, "server destroyed");
		}
	}
	/* Closed connections wait in the flush list to be freed. */
	while (srv->flush_head) {
		struct sconn *sc = srv->flush_head;
		srv->flush_head = sc->fnext;
		sconn_free(srv, sc);
	}
	while (srv->dead_head) {
		struct sconn *sc = srv->dead_head;
		srv->dead_head = sc->fnext;
		sconn_free(srv, sc);
	}
	close_listeners(srv);
	for (int i = 0; i < srv->nlisteners; i++)
		free(srv->listeners[i]);
	struct loop_cmd *n = loop__take(&srv->loop);
	while (n) {
		struct loop_cmd *next = n->next;
		free(n);
		n = next;
	}
	if (srv->reserve_fd >= 0)
		close(srv->reserve_fd);
	free(srv->buckets);
	reader__fini(&srv->rd);
	loop__fini(&srv->loop);
	free(srv);
}

TCPCHAT_API int tcpchat_server_listen(tcpchat_server *srv, const char *addr,
                                      const tcpchat_codec *codec)
{
	if (!srv || !addr)
		return TCPCHAT_EINVAL;
	if (!codec)
		codec = tcpchat_codec_binary();
	if (codec->abi != TCPCHAT_CODEC_ABI || !codec->encode ||
	    !codec->decode || !codec->name)
		return TCPCHAT_EINVAL;
	if (srv->nlisteners == MAX_LISTENERS)
		return TCPCHAT_EINVAL;
	int slot = -1;
	for (int i = 0; i < srv->ncodecs; i++)
		if (srv->codecs[i] == codec)
			slot = i;
	if (slot < 0 && srv->ncodecs == MAX_CODECS)
		return TCPCHAT_EINVAL;
	struct listener *l = calloc(1, sizeof *l);
	if (!l)
		return TCPCHAT_ENOMEM;
	l->kind = KIND_LISTENER;
	l->codec = codec;
	int rc = net__resolve(addr, 1, &l->addr, &l->addr_len);
	if (rc == 0)
		rc = net__listen(&l->addr, l->addr_len, (int)srv->backlog,
		                 &l->fd);
	if (rc) {
		free(l);
		return rc;
	}
	/* Remember the bound port, so a restart listens on the same one. */
	int port = net__local_port(l->fd);
	if (port > 0) {
		if (l->addr.sa.sa_family == AF_INET)
			l->addr.in4.sin_port = htons((uint16_t)port);
		else
			l->addr.in6.sin6_port = htons((uint16_t)port);
	}
	if (slot < 0) {
		slot = srv->ncodecs++;
		srv->codecs[slot] = codec;
	}
	l->codec_slot = slot;
	if (srv->running && loop__add(&srv->loop, l->fd, LOOP_READ, l) != 0) {
		close(l->fd);
		free(l);
		return TCPCHAT_ESYS;
	}
	srv->listeners[srv->nlisteners++] = l;
	return 0;
}

TCPCHAT_API int tcpchat_server_port(const tcpchat_server *srv, int index)
{
	if (!srv || index < 0 || index >= srv->nlisteners)
		return TCPCHAT_EINVAL;
	const struct listener *l = srv->listeners[index];
	return ntohs(l->addr.sa.sa_family == AF_INET ? l->addr.in4.sin_port
	                                             : l->addr.in6.sin6_port);
}

TCPCHAT_API void tcpchat_server_set_handler(tcpchat_server *srv,
                                            tcpchat_server_handler fn,
                                            void *userdata)
{
	if (!srv)
		return;
	srv->handler = fn;
	srv->userdata = userdata;
}

static long long *option_ptr(tcpchat_server *srv, int option, long long *min,
                             long long *max)
{
	*min = 0;
	*max = INT32_MAX;
	switch (option) {
	case TCPCHAT_SOPT_MAX_CLIENTS:
		*min = 1;
		return &srv->max_clients;
	case TCPCHAT_SOPT_MAX_FRAME:
		*min = 64;
		*max = 64 << 20;
		return &srv->max_frame;
	case TCPCHAT_SOPT_QUEUE_FRAMES:
		*min = 1;
		return &srv->queue_frames;
	case TCPCHAT_SOPT_QUEUE_BYTES:
		*min = 64;
		return &srv->queue_bytes;
	case TCPCHAT_SOPT_SLOW_POLICY:
		*max = TCPCHAT_SLOW_DISCONNECT;
		return &srv->policy;
	case TCPCHAT_SOPT_HANDSHAKE_TIMEOUT:
		return &srv->hs_timeout;
	case TCPCHAT_SOPT_IDLE_TIMEOUT:
		return &srv->idle_timeout;
	case TCPCHAT_SOPT_SHUTDOWN_TIMEOUT:
		return &srv->shutdown_timeout;
	case TCPCHAT_SOPT_LOG_LEVEL:
		*max = TCPCHAT_LOG_DEBUG;
		return &srv->log_level;
	case TCPCHAT_SOPT_BACKLOG:
		*min = 1;
		*max = 65535;
		return &srv->backlog;
	default:
		return NULL;
	}
}

TCPCHAT_API int tcpchat_server_set_option(tcpchat_server *srv, int option,
                                          long long value)
{
	long long min, max;
	long long *p = srv ? option_ptr(srv, option, &min, &max) : NULL;
	if (!p || value < min || value > max)
		return TCPCHAT_EINVAL;
	if (option == TCPCHAT_SOPT_HANDSHAKE_TIMEOUT && value == 0 &&
	    !dl_empty(&srv->t_handshake))
		return TCPCHAT_ESTATE;
	*p = value;
	return 0;
}

TCPCHAT_API int tcpchat_server_get_option(const tcpchat_server *srv, int option,
                                          long long *value)
{
	long long min, max;
	long long *p = (srv && value) ? option_ptr((tcpchat_server *)srv,
	                                           option, &min, &max)
	                              : NULL;
	if (!p)
		return TCPCHAT_EINVAL;
	*value = *p;
	return 0;
}

TCPCHAT_API int tcpchat_server_stats_get(tcpchat_server *srv,
                                         tcpchat_server_stats *out)
{
	if (!srv || !out || out->size < sizeof(size_t))
		return TCPCHAT_EINVAL;
	tcpchat_server_stats s;
	memset(&s, 0, sizeof s);
	s.size = TC_MIN(out->size, sizeof s);
#define LD(x) atomic_load_explicit(&srv->x, memory_order_relaxed)
	s.clients = LD(st_clients);
	s.users = LD(st_users);
	s.accepted = LD(st_accepted);
	s.msgs_in = LD(st_in);
	s.msgs_out = LD(st_out);
	s.bytes_in = LD(st_bytes_in);
	s.bytes_out = LD(st_bytes_out);
	s.dropped = LD(st_dropped);
	s.proto_errors = LD(st_proto);
	s.refused = LD(st_refused);
#undef LD
	memcpy(out, &s, s.size);
	return 0;
}
