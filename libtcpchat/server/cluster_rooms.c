/* libtcpchat - rooms across the servers of a cluster.
 *
 * A server follows a room while it has members there.  A text posted
 * here goes to the bus, which numbers it (one seq for the whole cluster),
 * keeps it and hands it to every server following the room, this one
 * included: each fans it out to its own members when it comes back, so
 * every member everywhere sees the room's texts in one order.  The
 * sender's ACK waits for the bus's answer: an acknowledged text is in
 * the engine's history.
 *
 * A room that starts being followed catches up first: its recent
 * history is fetched into the local ring (HISTORY and resumes are then
 * answered here), and the joins that wait for it go on after.  A gap in
 * the numbers (texts missed while the bus was away) is filled the same
 * way, the texts fanned out late but in order.
 *
 * While the bus is down, users here go on chatting: a text is shown at
 * once to the members here, unnumbered, and held (at most TCPCHAT_CLUSTER_HELD_MAX,
 * then refused with an ERROR, counted) until the bus is back, when it is
 * posted and so reaches the other servers; the members here do not see
 * it twice.  Texts of the other servers come after recovery, caught up
 * from the history. */
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"

/* The record's code field (binary codec: 4-byte length, then version,
 * type, flags, id and timestamp): a text already shown to the members
 * of its own server, while the bus was down. */
#define REC_CODE_OFF 24
#define REC_SHOWN 1u

enum { CL_OFF, CL_SYNC, CL_LIVE, CL_STALE };

static uint32_t fetch_max(const tcpchat_server *srv)
{
	return (uint32_t)TC_MIN(srv->history_msgs, 10000);
}

static void stash_clear(struct room *r)
{
	while (r->cl_stash) {
		struct cl_stash *s = r->cl_stash;
		r->cl_stash = s->next;
		free(s);
	}
}

/* Asks the bus for r's texts after its last seq: the room is in step
 * again when they come (catchup: fanned out to the members). */
static int catch_up(tcpchat_server *srv, struct room *r, int catchup)
{
	struct bus *b = srv->cl->bus;
	struct cl_token *t = cl__token(srv, CL_TOK_FETCH);
	if (!t)
		return TCPCHAT_ENOMEM;
	t->catchup = catchup;
	t->rlen = r->name_len;
	memcpy(t->room, r->name, r->name_len);
	int rc = b->ops->fetch(b, r->name, r->name_len, r->last_seq,
	                       fetch_max(srv), t);
	if (rc) {
		cl__token_free(t);
		return rc;
	}
	r->cl_state = CL_SYNC;
	return 0;
}

static int follow(tcpchat_server *srv, struct room *r, int catchup)
{
	struct bus *b = srv->cl->bus;
	int rc = b->ops->follow(b, r->name, r->name_len);
	if (rc == 0)
		rc = catch_up(srv, r, catchup);
	return rc;
}

/* The joins that waited for r go on (in step, or not when the bus is
 * lost). */
static void release_waiters(tcpchat_server *srv, struct room *r)
{
	while (r->cl_waiting) {
		struct cl_wait *w = r->cl_waiting;
		r->cl_waiting = w->next;
		struct sconn *sc = srv__id_find(srv, w->conn_id);
		if (sc && sc->state == S_JOINED && sc->cl_wait) {
			tcpchat_msg req = {.type = TCPCHAT_MSG_JOIN};
			req.flags = TCPCHAT_MSGF_AFTER;
			req.seq = w->seq;
			req.epoch = w->epoch;
			sc->cl_wait = 0;
			srv__join_room(srv, sc, r->name, r->name_len, w->how,
			               w->resume ? &req : NULL);
			srv__resume(srv, sc);
		}
		free(w);
	}
}

int srv__cluster_join_wait(tcpchat_server *srv, struct sconn *sc,
                           const char *room, size_t len, int how,
                           const tcpchat_msg *resume)
{
	struct room *r;
	if (!srv->cl->bus->up || srv__room_get(srv, room, len, &r) != 0)
		return 0; /* joined here alone; in step when the bus is back */
	if (r->cl_state == CL_LIVE)
		return 0;
	struct cl_wait *w = calloc(1, sizeof *w);
	if (!w)
		return 0;
	if (r->cl_state != CL_SYNC && follow(srv, r, 0) != 0) {
		free(w);
		return 0;
	}
	w->conn_id = sc->id;
	w->how = how;
	if (resume) {
		w->resume = 1;
		w->seq = resume->seq;
		w->epoch = resume->epoch;
	}
	struct cl_wait **pp = &r->cl_waiting;
	while (*pp)
		pp = &(*pp)->next;
	*pp = w;
	sc->cl_wait = 1;
	srv__pause(srv, sc);
	return 1;
}

void srv__cluster_room_empty(tcpchat_server *srv, struct room *r)
{
	if (r->nmembers || r->cl_waiting || r->cl_state == CL_OFF)
		return;
	srv->cl->bus->ops->unfollow(srv->cl->bus, r->name, r->name_len);
	stash_clear(r);
	r->cl_state = CL_OFF;
}

/* ---- texts ------------------------------------------------------------------ */

/* A numbered record of r: kept, and fanned out unless `quiet` (texts
 * that only fill the history). */
static void apply(tcpchat_server *srv, struct room *r, uint64_t seq,
                  const uint8_t *rec, size_t len, int quiet)
{
	tcpchat_msg m;
	if (cl__decode(srv, rec, len, &m) != 0)
		return;
	if (m.type != TCPCHAT_MSG_TEXT || !m.sender.len ||
	    !util__chat_text_ok(m.body.ptr, m.body.len)) {
		r->last_seq = seq; /* numbered all the same */
		return;
	}
	if (seq > r->last_seq + 1 && r->last_seq)
		srv->cl->gaps++;
	r->last_seq = seq;
	int mine = cl__is_me(srv, &m.cursor);
	int shown = mine && (m.code & REC_SHOWN);
	m.cursor.len = 0;
	m.target.len = 0; /* a room text, not a private one */
	m.code = 0;
	m.seq = seq;
	m.flags &= ~(uint32_t)TCPCHAT_MSGF_DEFAULT_ROOM;
	srv__room_stamp(srv, r, &m);
	if (quiet || shown) {
		srv__hist_add(srv, r, &m);
		return;
	}
	const struct sconn *except =
	        mine ? srv__name_find(srv, m.sender.ptr, m.sender.len) : NULL;
	srv__room_publish(srv, r, &m, except);
}

static int stash(struct room *r, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct cl_stash *s = malloc(sizeof *s + len);
	if (!s)
		return -1;
	s->next = NULL;
	s->seq = seq;
	s->len = len;
	memcpy(s->data, rec, len);
	struct cl_stash **pp = &r->cl_stash;
	while (*pp)
		pp = &(*pp)->next;
	*pp = s;
	return 0;
}

void cl__on_room(tcpchat_server *srv, const char *room, size_t rlen,
                 uint64_t seq, const uint8_t *rec, size_t len)
{
	struct room *r = srv__room_find(srv, room, rlen);
	if (!r || r->cl_state == CL_OFF || r->cl_state == CL_STALE ||
	    seq <= r->last_seq)
		return; /* not followed (any more), or seen */
	if (r->cl_state == CL_SYNC) {
		stash(r, seq, rec, len);
		return;
	}
	if (seq > r->last_seq + 1) {
		/* Missed some: fetch them, keep this one for after. */
		srv->cl->gaps++;
		if (stash(r, seq, rec, len) == 0 && catch_up(srv, r, 1) == 0)
			return;
		stash_clear(r);
	}
	apply(srv, r, seq, rec, len, 0);
}

void cl__fetched(tcpchat_server *srv, struct cl_token *t, int err,
                 const struct bus_rec *recs, size_t n, uint64_t last)
{
	struct room *r = srv__room_find(srv, t->room, t->rlen);
	int catchup = t->catchup;
	cl__token_free(t);
	if (!r || r->cl_state != CL_SYNC)
		return; /* unfollowed, or the bus was lost meanwhile */
	if (err) {
		srv__log(srv, TCPCHAT_LOG_WARN,
		         "cluster: cannot read the history of %s: %s", r->name,
		         tcpchat_strerror(err));
		if (srv->cl->bus->up && catch_up(srv, r, catchup) == 0)
			return;
		r->cl_state = CL_STALE;
		stash_clear(r);
		release_waiters(srv, r);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (recs[i].seq > r->last_seq)
			apply(srv, r, recs[i].seq, recs[i].data, recs[i].len,
			      !catchup);
	if (last > r->last_seq && !n)
		r->last_seq = last; /* texts gone from the history */
	r->cl_state = CL_LIVE;
	while (r->cl_stash) {
		struct cl_stash *s = r->cl_stash;
		r->cl_stash = s->next;
		if (s->seq > r->last_seq)
			apply(srv, r, s->seq, s->data, s->len, 0);
		free(s);
	}
	release_waiters(srv, r);
}

/* ---- posting ------------------------------------------------------------------- */

static int send_post(tcpchat_server *srv, struct outrec *o)
{
	struct bus *b = srv->cl->bus;
	struct cl_token *t = cl__token(srv, CL_TOK_POST);
	if (!t)
		return TCPCHAT_ENOMEM;
	t->out = o;
	struct room *r = srv__room_find(srv, o->room, o->rlen);
	int rc = b->ops->post(b, o->room, o->rlen, r ? r->last_seq : 0, o->data,
	                      o->len, t);
	if (rc) {
		t->out = NULL;
		cl__token_free(t);
		return rc;
	}
	srv->cl->inflight++;
	return 0;
}

static void hold(struct cluster *cl, struct outrec *o)
{
	o->next = NULL;
	if (cl->out_tail)
		cl->out_tail->next = o;
	else
		cl->out_head = o;
	cl->out_tail = o;
	cl->nout++;
}

/* Shows the text of o to the members here now, unnumbered, and marks
 * it so that they do not get it again when it comes back numbered. */
static void show_here(tcpchat_server *srv, struct outrec *o)
{
	struct room *r = srv__room_find(srv, o->room, o->rlen);
	tcpchat_msg m;
	o->data[REC_CODE_OFF + 3] |= REC_SHOWN;
	if (!r || cl__decode(srv, o->data, o->len, &m) != 0)
		return;
	m.cursor.len = 0;
	m.code = 0;
	m.flags &= ~(uint32_t)TCPCHAT_MSGF_DEFAULT_ROOM;
	srv__room_stamp(srv, r, &m);
	const struct sconn *from =
	        o->conn_id ? srv__id_find(srv, o->conn_id) : NULL;
	srv__fanout_room(srv, r, &m, from);
}

void srv__cluster_post(tcpchat_server *srv, struct room *r, tcpchat_msg *m,
                       struct sconn *from, tcpchat_str ref)
{
	struct cluster *cl = srv->cl;
	m->seq = 0;
	int rc = cl__encode(srv, m);
	struct outrec *o = rc ? NULL : malloc(sizeof *o + cl->enc.len);
	if (!o) {
		if (from) {
			tcpchat_msg req = *m;
			req.ref = ref;
			srv__req_error(srv, from, &req, TCPCHAT_ENOMEM,
			               "server out of memory: not posted");
		}
		return;
	}
	memset(o, 0, sizeof *o);
	memcpy(o->data, cl->enc.data, cl->enc.len);
	o->len = cl->enc.len;
	o->rlen = r->name_len;
	memcpy(o->room, r->name, r->name_len);
	o->conn_id = from ? from->id : 0;
	if (cl->bus->up && send_post(srv, o) == 0) {
		if (ref.len && from) {
			tcpchat_msg a = *m;
			a.ref = ref;
			o->ack = srv__ack_new(srv, from, &a, 1);
		}
		return;
	}
	if (cl->nout >= TCPCHAT_CLUSTER_HELD_MAX) {
		cl->refused_down++;
		free(o);
		if (from) {
			tcpchat_msg req = *m;
			req.ref = ref;
			srv__req_error(srv, from, &req, TCPCHAT_EBUS,
			               "the cluster bus is down and too many "
			               "texts wait for it: not sent");
		}
		return;
	}
	if (ref.len && from) {
		tcpchat_msg a = *m;
		a.ref = ref;
		o->ack = srv__ack_new(srv, from, &a, 1);
	}
	hold(cl, o);
	show_here(srv, o);
}

void cl__posted(tcpchat_server *srv, struct cl_token *t, int err, uint64_t seq)
{
	struct cluster *cl = srv->cl;
	struct outrec *o = t->out;
	t->out = NULL;
	cl__token_free(t);
	cl->inflight--;
	if (err) {
		/* Not taken (or the answer was lost with the bus): posted
		 * again when the bus is back, shown here meanwhile. */
		if (!(o->data[REC_CODE_OFF + 3] & REC_SHOWN))
			show_here(srv, o);
		hold(cl, o);
		return;
	}
	if (o->ack) {
		tcpchat_msg m;
		if (cl__decode(srv, o->data, o->len, &m) == 0) {
			m.seq = seq;
			srv__ack_commit(srv, o->ack, &m);
		} else {
			srv__ack_forget(srv, o->ack);
		}
	}
	free(o);
}

/* ---- the bus lost and back ---------------------------------------------------------- */

void cl__rooms_down(tcpchat_server *srv)
{
	struct dlist *it;
	for (it = srv->rooms.next; it != &srv->rooms; it = it->next) {
		struct room *r = CONTAINER(it, struct room, link);
		if (r->cl_state == CL_OFF)
			continue;
		r->cl_state = CL_STALE;
		stash_clear(r);
		release_waiters(srv, r);
	}
}

void cl__rooms_up(tcpchat_server *srv)
{
	struct cluster *cl = srv->cl;
	struct dlist *it;
	for (it = srv->rooms.next; it != &srv->rooms; it = it->next) {
		struct room *r = CONTAINER(it, struct room, link);
		if (r->cl_state == CL_STALE)
			catch_up(srv, r, 1);
		else if (r->cl_state == CL_OFF && r->nmembers)
			follow(srv, r, 1);
	}
	size_t n = cl->nout;
	while (n-- && cl->out_head && cl->bus->up) {
		struct outrec *o = cl->out_head;
		cl->out_head = o->next;
		if (!cl->out_head)
			cl->out_tail = NULL;
		cl->nout--;
		if (send_post(srv, o) != 0) {
			hold(cl, o);
			break;
		}
	}
	if (cl->nout == 0)
		srv__log(srv, TCPCHAT_LOG_INFO,
		         "cluster: every text held while the bus was down is "
		         "posted");
}

void cl__rooms_fini(tcpchat_server *srv)
{
	struct cluster *cl = srv->cl;
	struct dlist *it;
	for (it = srv->rooms.next; it != &srv->rooms; it = it->next) {
		struct room *r = CONTAINER(it, struct room, link);
		stash_clear(r);
		while (r->cl_waiting) {
			struct cl_wait *w = r->cl_waiting;
			r->cl_waiting = w->next;
			free(w);
		}
		r->cl_state = CL_OFF;
	}
	if (cl->nout)
		srv__log(srv, TCPCHAT_LOG_ERROR,
		         "cluster: %zu texts never reached the bus", cl->nout);
	while (cl->out_head) {
		struct outrec *o = cl->out_head;
		cl->out_head = o->next;
		free(o);
	}
	cl->out_tail = NULL;
	cl->nout = 0;
}
