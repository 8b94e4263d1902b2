/* libtcpchat - the users of the other servers of a cluster.
 *
 * Names: a name is claimed in the engine (bus claim) when its user has
 * been accepted, before the WELCOME, and given back when the user goes;
 * a name held by a server that is gone is taken over.
 *
 * Presence: each server tells the others, by broadcast records, when a
 * user comes (JOIN without room), joins or parts a room (JOIN, LEAVE
 * with room), sets a topic (TOPIC) and goes (LEAVE without room).  Each
 * keeps what it heard in a table of remote users, so that WHO, the room
 * list and a room's members are answered at once, cluster-wide, and its
 * own users are told of joins and parts in their rooms as for local
 * ones.  A snapshot (ROOMS begin, the JOINs, ROOMS end) replaces what a
 * server knew of another: sent to a server that asks (WHO), and to all
 * when the bus comes back.
 *
 * Private messages to a user of another server go to that server alone;
 * if the user has gone meanwhile, an ERROR record comes back for the
 * sender. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"

#define SNAP_BEGIN 1
#define SNAP_END 2

/* ---- the table ------------------------------------------------------------ */

static size_t user_slot(const tcpchat_server *srv, const char *p, size_t n,
                        size_t nb)
{
	return (size_t)util__siphash(srv->hash_key, p, n) & (nb - 1);
}

static struct ruser *user_find(tcpchat_server *srv, const char *p, size_t n)
{
	struct cluster *cl = srv->cl;
	if (!cl->nubuckets)
		return NULL;
	struct ruser *u = cl->ubuckets[user_slot(srv, p, n, cl->nubuckets)];
	while (u && !(u->name_len == n && memcmp(u->name, p, n) == 0))
		u = u->hnext;
	return u;
}

static int user_rehash(tcpchat_server *srv)
{
	struct cluster *cl = srv->cl;
	size_t nb = cl->nubuckets ? cl->nubuckets * 2 : 64;
	struct ruser **b = calloc(nb, sizeof *b);
	if (!b)
		return TCPCHAT_ENOMEM;
	for (size_t i = 0; i < cl->nubuckets; i++) {
		struct ruser *u = cl->ubuckets[i], *next;
		for (; u; u = next) {
			next = u->hnext;
			size_t k = user_slot(srv, u->name, u->name_len, nb);
			u->hnext = b[k];
			b[k] = u;
		}
	}
	free(cl->ubuckets);
	cl->ubuckets = b;
	cl->nubuckets = nb;
	return 0;
}

/* The user name[0..n) of server x, made when unknown: NULL when out of
 * memory, or when the name is a user of this server's (a claim race the
 * engine settles: the remote one is ignored here). */
static struct ruser *user_get(tcpchat_server *srv, struct rnode *x,
                              const char *p, size_t n)
{
	struct cluster *cl = srv->cl;
	struct ruser *u = user_find(srv, p, n);
	if (u) {
		if (u->node != x) { /* moved to another server */
			dl_del(&u->link);
			u->node->nusers--;
			u->node = x;
			dl_push(&x->users, &u->link);
			x->nusers++;
		}
		u->gen = x->gen;
		return u;
	}
	struct sconn *local = srv__name_find(srv, p, n);
	if (local) {
		srv__log(srv, TCPCHAT_LOG_WARN,
		         "cluster: %.*s is on %s and here: ignored there",
		         (int)n, p, x->id);
		return NULL;
	}
	if (x->nusers >= CL_NODE_USERS_MAX) {
		srv__log(srv, TCPCHAT_LOG_WARN,
		         "cluster: %s says it has more than %d users: %.*s "
		         "ignored",
		         x->id, CL_NODE_USERS_MAX, (int)n, p);
		return NULL;
	}
	if (cl->nusers + 1 > cl->nubuckets && user_rehash(srv))
		return NULL;
	u = calloc(1, sizeof *u);
	if (!u)
		return NULL;
	memcpy(u->name, p, n);
	u->name_len = (uint8_t)n;
	u->node = x;
	u->gen = x->gen;
	dl_push(&x->users, &u->link);
	x->nusers++;
	size_t k = user_slot(srv, p, n, cl->nubuckets);
	u->hnext = cl->ubuckets[k];
	cl->ubuckets[k] = u;
	cl->nusers++;
	return u;
}

static struct rmember *rmember_of(const struct ruser *u, const struct room *r)
{
	struct rmember *rm = u->rooms;
	while (rm && rm->room != r)
		rm = rm->unext;
	return rm;
}

static void rmember_free(tcpchat_server *srv, struct rmember *rm)
{
	struct ruser *u = rm->u;
	struct rmember **pp = &u->rooms;
	while (*pp != rm)
		pp = &(*pp)->unext;
	*pp = rm->unext;
	u->nrooms--;
	struct room *r = rm->room;
	dl_del(&rm->link);
	r->nrmembers--;
	free(rm);
	srv__room_gc(srv, r);
}

static void user_free(tcpchat_server *srv, struct ruser *u)
{
	struct cluster *cl = srv->cl;
	while (u->rooms)
		rmember_free(srv, u->rooms);
	struct ruser **pp = &cl->ubuckets[user_slot(srv, u->name, u->name_len,
	                                            cl->nubuckets)];
	while (*pp != u)
		pp = &(*pp)->hnext;
	*pp = u->hnext;
	dl_del(&u->link);
	u->node->nusers--;
	cl->nusers--;
	free(u);
}

void cl__users_fini(tcpchat_server *srv)
{
	struct cluster *cl = srv->cl;
	for (struct rnode *x = cl->nodes; x; x = x->next)
		while (!dl_empty(&x->users))
			user_free(srv,
			          CONTAINER(x->users.next, struct ruser, link));
	free(cl->ubuckets);
	cl->ubuckets = NULL;
	cl->nubuckets = 0;
}

/* ---- what this server's users are told -------------------------------------- */

static uint64_t room_size(const struct room *r)
{
	return r->nmembers + r->nrmembers;
}

static void tell_join(tcpchat_server *srv, struct ruser *u, struct room *r,
                      const tcpchat_msg *m)
{
	if (!r->nmembers || room_size(r) > (uint64_t)srv->announce_max)
		return;
	tcpchat_msg j = {.type = TCPCHAT_MSG_JOIN};
	j.id = ++srv->next_msg_id;
	j.timestamp = m->timestamp ? m->timestamp : srv->wall_ms;
	j.sender.ptr = u->name;
	j.sender.len = u->name_len;
	j.code = (uint32_t)TC_MIN(room_size(r), UINT32_MAX);
	srv__room_stamp(srv, r, &j);
	srv__room_mark(srv, r, &j);
	srv__fanout_room(srv, r, &j, NULL);
}

static void tell_part(tcpchat_server *srv, struct ruser *u, struct room *r,
                      uint32_t reason, tcpchat_str why)
{
	if (!r->nmembers || room_size(r) > (uint64_t)srv->announce_max)
		return;
	tcpchat_msg l = {.type = TCPCHAT_MSG_LEAVE};
	l.id = ++srv->next_msg_id;
	l.timestamp = srv->wall_ms;
	l.code = reason;
	l.sender.ptr = u->name;
	l.sender.len = u->name_len;
	l.body = why;
	srv__room_stamp(srv, r, &l);
	srv__fanout_room(srv, r, &l, NULL);
}

/* u goes: one LEAVE without room to each user here who shares an
 * announced room with u, then u is forgotten. */
static void user_gone(tcpchat_server *srv, struct ruser *u, uint32_t reason,
                      tcpchat_str why)
{
	struct room *rooms[64];
	size_t n = 0;
	for (struct rmember *rm = u->rooms; rm; rm = rm->unext) {
		struct room *r = rm->room;
		if (r->nmembers &&
		    room_size(r) <= (uint64_t)srv->announce_max) {
			if (n == TC_ARRAY_LEN(rooms)) {
				srv__fanout_room_list(srv, rooms, n, NULL);
				n = 0;
			}
			rooms[n++] = r;
		}
	}
	if (n) {
		tcpchat_msg l = {.type = TCPCHAT_MSG_LEAVE};
		l.id = ++srv->next_msg_id;
		l.timestamp = srv->wall_ms;
		l.code = reason;
		l.sender.ptr = u->name;
		l.sender.len = u->name_len;
		l.body.ptr = why.ptr;
		l.body.len = util__utf8_cut(why.ptr, why.len, 256);
		srv__fanout_room_list(srv, rooms, n, &l);
	}
	user_free(srv, u);
}

void cl__node_gone(tcpchat_server *srv, struct rnode *x, const char *why)
{
	tcpchat_str w = {why, strlen(why)};
	while (!dl_empty(&x->users))
		user_gone(srv, CONTAINER(x->users.next, struct ruser, link),
		          TCPCHAT_REASON_LOST, w);
}

/* ---- records from the others ------------------------------------------------- */

static void on_room_join(tcpchat_server *srv, struct rnode *x,
                         const tcpchat_msg *m)
{
	struct ruser *u = user_get(srv, x, m->sender.ptr, m->sender.len);
	struct room *r = srv__room_find(srv, m->room.ptr, m->room.len);
	/* Rooms of the other servers count against MAX_ROOMS too. */
	if (!u || (!r && srv->nrooms >= (uint64_t)srv->max_rooms) ||
	    (!r && srv__room_get(srv, m->room.ptr, m->room.len, &r) != 0))
		return;
	struct rmember *rm = rmember_of(u, r);
	if (rm) {
		rm->gen = x->gen;
		return;
	}
	if (u->nrooms >= CL_USER_ROOMS_MAX) {
		srv__room_gc(srv, r);
		return;
	}
	rm = calloc(1, sizeof *rm);
	if (!rm) {
		srv__room_gc(srv, r);
		return;
	}
	rm->u = u;
	rm->room = r;
	rm->gen = x->gen;
	rm->unext = u->rooms;
	u->rooms = rm;
	u->nrooms++;
	dl_push(&r->rmembers, &rm->link);
	r->nrmembers++;
	tell_join(srv, u, r, m);
}

static void on_room_part(tcpchat_server *srv, struct rnode *x,
                         const tcpchat_msg *m)
{
	struct ruser *u = user_find(srv, m->sender.ptr, m->sender.len);
	struct room *r = srv__room_find(srv, m->room.ptr, m->room.len);
	struct rmember *rm = u && u->node == x && r ? rmember_of(u, r) : NULL;
	if (!rm)
		return;
	tell_part(srv, u, r, m->code, m->body);
	rmember_free(srv, rm);
}

static void on_topic(tcpchat_server *srv, const tcpchat_msg *m)
{
	struct room *r = srv__room_find(srv, m->room.ptr, m->room.len);
	if (!r || m->body.len > TCPCHAT_TOPIC_MAX ||
	    srv__room_set_topic(r, m) != 0)
		return;
	tcpchat_msg t = *m;
	t.cursor.len = 0;
	t.target.len = 0;
	t.id = ++srv->next_msg_id;
	t.body.ptr = r->topic;
	srv__room_stamp(srv, r, &t);
	srv__fanout_room(srv, r, &t, NULL);
}

/* The end of a snapshot of x: what it did not name again is gone. */
static void snapshot_end(tcpchat_server *srv, struct rnode *x)
{
	struct dlist *it = x->users.next, *next;
	tcpchat_str gone = {"gone", 4};
	for (; it != &x->users; it = next) {
		next = it->next;
		struct ruser *u = CONTAINER(it, struct ruser, link);
		if (u->gen != x->gen) {
			user_gone(srv, u, TCPCHAT_REASON_LOST, gone);
			continue;
		}
		struct rmember *rm = u->rooms, *rnext;
		for (; rm; rm = rnext) {
			rnext = rm->unext;
			if (rm->gen != x->gen) {
				tell_part(srv, u, rm->room, TCPCHAT_REASON_PART,
				          gone);
				rmember_free(srv, rm);
			}
		}
	}
}

/* A private message from a user of x to one of this server's. */
static void on_private(tcpchat_server *srv, struct rnode *x,
                       const tcpchat_msg *m)
{
	struct sconn *to = srv__name_find(srv, m->target.ptr, m->target.len);
	if (to && to->state == S_JOINED && to->proto >= 2 &&
	    util__chat_text_ok(m->body.ptr, m->body.len)) {
		tcpchat_msg p = *m;
		p.cursor.len = 0;
		p.room.len = 0;
		p.flags &= ~(uint32_t)TCPCHAT_MSGF_ECHO;
		srv__send_to(srv, to, &p);
		srv->st.privates++;
		return;
	}
	/* Tell the sender's server: the sender learns why. */
	char why[96];
	snprintf(why, sizeof why, "no user called %.*s", (int)m->target.len,
	         m->target.ptr);
	tcpchat_msg e = {.type = TCPCHAT_MSG_ERROR};
	e.sender = m->target;
	e.target = m->sender;
	e.body.ptr = why;
	e.body.len = strlen(why);
	struct bus *b = srv->cl->bus;
	if (cl__encode(srv, &e) == 0)
		b->ops->send(b, x->id, x->id_len, srv->cl->enc.data,
		             srv->cl->enc.len);
}

static void on_private_failed(tcpchat_server *srv, const tcpchat_msg *m)
{
	struct sconn *sc = srv__name_find(srv, m->target.ptr, m->target.len);
	if (!sc || sc->state != S_JOINED)
		return;
	tcpchat_msg req = {.type = TCPCHAT_MSG_TEXT};
	req.target = m->sender;
	srv__req_error(srv, sc, &req, TCPCHAT_ENOTFOUND,
	               m->body.len ? "that user has gone" : "no such user");
}

void cl__on_people(tcpchat_server *srv, struct rnode *x, const tcpchat_msg *m)
{
	switch (m->type) {
	case TCPCHAT_MSG_WHO:
		cl__snapshot(srv, x);
		return;
	case TCPCHAT_MSG_ROOMS:
		if (m->code == SNAP_BEGIN)
			x->gen++;
		else if (m->code == SNAP_END)
			snapshot_end(srv, x);
		return;
	case TCPCHAT_MSG_JOIN:
		if (!m->sender.len)
			return;
		if (m->room.len)
			on_room_join(srv, x, m);
		else
			user_get(srv, x, m->sender.ptr, m->sender.len);
		return;
	case TCPCHAT_MSG_LEAVE: {
		if (m->room.len) {
			on_room_part(srv, x, m);
			return;
		}
		struct ruser *u = user_find(srv, m->sender.ptr, m->sender.len);
		if (u && u->node == x)
			user_gone(srv, u, m->code, m->body);
		return;
	}
	case TCPCHAT_MSG_TOPIC:
		if (m->room.len)
			on_topic(srv, m);
		return;
	case TCPCHAT_MSG_TEXT:
		if (m->target.len && m->sender.len &&
		    tcpchat_name_check(m->target.ptr, m->target.len) == 0)
			on_private(srv, x, m);
		return;
	case TCPCHAT_MSG_ERROR:
		if (m->target.len && m->sender.len)
			on_private_failed(srv, m);
		return;
	default:
		return; /* a newer server's record */
	}
}

/* ---- what this server tells the others ------------------------------------------- */

static void out(tcpchat_server *srv, const struct rnode *to, tcpchat_msg *m)
{
	struct bus *b = srv->cl->bus;
	if (!b->up || cl__encode(srv, m) != 0)
		return;
	if (to)
		b->ops->send(b, to->id, to->id_len, srv->cl->enc.data,
		             srv->cl->enc.len);
	else
		b->ops->broadcast(b, srv->cl->enc.data, srv->cl->enc.len);
}

void cl__snapshot(tcpchat_server *srv, const struct rnode *to)
{
	tcpchat_msg s = {.type = TCPCHAT_MSG_ROOMS, .code = SNAP_BEGIN};
	out(srv, to, &s);
	struct dlist *it;
	for (it = srv->members.next; it != &srv->members; it = it->next) {
		struct sconn *sc = CONTAINER(it, struct sconn, member);
		tcpchat_msg j = {.type = TCPCHAT_MSG_JOIN};
		j.sender.ptr = sc->name;
		j.sender.len = sc->name_len;
		out(srv, to, &j);
		for (struct member *mb = sc->rooms; mb; mb = mb->unext) {
			j.room.ptr = mb->room->name;
			j.room.len = mb->room->name_len;
			out(srv, to, &j);
		}
	}
	for (it = srv->rooms.next; it != &srv->rooms; it = it->next) {
		struct room *r = CONTAINER(it, struct room, link);
		if (!r->nmembers || !r->topic_len)
			continue;
		tcpchat_msg t = {.type = TCPCHAT_MSG_TOPIC};
		t.timestamp = r->topic_ts;
		t.sender.ptr = r->topic_by;
		t.sender.len = r->topic_by_len;
		t.body.ptr = r->topic;
		t.body.len = r->topic_len;
		srv__room_stamp(srv, r, &t);
		t.flags = 0;
		out(srv, to, &t);
	}
	s.code = SNAP_END;
	out(srv, to, &s);
}

void srv__cluster_online(tcpchat_server *srv, struct sconn *sc)
{
	tcpchat_msg j = {.type = TCPCHAT_MSG_JOIN};
	j.sender.ptr = sc->name;
	j.sender.len = sc->name_len;
	out(srv, NULL, &j);
}

void srv__cluster_offline(tcpchat_server *srv, struct sconn *sc, int joined,
                          int reason, const char *why)
{
	if (joined) {
		tcpchat_msg l = {.type = TCPCHAT_MSG_LEAVE};
		l.code = (uint32_t)reason;
		l.sender.ptr = sc->name;
		l.sender.len = sc->name_len;
		if (why && srv__why_says_more(reason, why)) {
			l.body.ptr = why;
			l.body.len = util__utf8_cut(why, strlen(why), 256);
		}
		out(srv, NULL, &l);
	}
	if (sc->claimed && srv->cl->bus->up)
		srv->cl->bus->ops->release(srv->cl->bus, sc->name,
		                           sc->name_len);
	sc->claimed = 0;
}

void srv__cluster_joined(tcpchat_server *srv, struct sconn *sc,
                         const struct room *r)
{
	tcpchat_msg j = {.type = TCPCHAT_MSG_JOIN};
	j.timestamp = srv->wall_ms;
	j.sender.ptr = sc->name;
	j.sender.len = sc->name_len;
	j.room.ptr = r->name;
	j.room.len = r->name_len;
	out(srv, NULL, &j);
}

void srv__cluster_parted(tcpchat_server *srv, struct sconn *sc,
                         const struct room *r, int reason, const char *why,
                         size_t len)
{
	tcpchat_msg l = {.type = TCPCHAT_MSG_LEAVE};
	l.code = (uint32_t)reason;
	l.sender.ptr = sc->name;
	l.sender.len = sc->name_len;
	l.room.ptr = r->name;
	l.room.len = r->name_len;
	l.body.ptr = why;
	l.body.len = len;
	out(srv, NULL, &l);
}

void srv__cluster_topic(tcpchat_server *srv, const struct room *r)
{
	tcpchat_msg t = {.type = TCPCHAT_MSG_TOPIC};
	t.timestamp = r->topic_ts;
	t.sender.ptr = r->topic_by;
	t.sender.len = r->topic_by_len;
	t.body.ptr = r->topic;
	t.body.len = r->topic_len;
	t.room.ptr = r->name;
	t.room.len = r->name_len;
	out(srv, NULL, &t);
}

int srv__cluster_private(tcpchat_server *srv, struct sconn *from,
                         const tcpchat_msg *m)
{
	struct ruser *u = user_find(srv, m->target.ptr, m->target.len);
	struct bus *b = srv->cl->bus;
	if (!u)
		return TCPCHAT_ENOTFOUND;
	if (!b->up)
		return TCPCHAT_EBUS;
	tcpchat_msg p = *m;
	if (cl__encode(srv, &p) != 0)
		return TCPCHAT_ENOMEM;
	int rc = b->ops->send(b, u->node->id, u->node->id_len,
	                      srv->cl->enc.data, srv->cl->enc.len);
	if (rc)
		return rc;
	tcpchat_msg echo = *m;
	echo.flags |= TCPCHAT_MSGF_ECHO;
	srv->st.privates++;
	srv__send_to(srv, from, &echo);
	return 0;
}

/* ---- names -------------------------------------------------------------------- */

int srv__cluster_name_taken(tcpchat_server *srv, const char *p, size_t n)
{
	return user_find(srv, p, n) != NULL;
}

int srv__cluster_claim(tcpchat_server *srv, struct sconn *sc)
{
	struct cluster *cl = srv->cl;
	if (!cl->bus->up)
		return TCPCHAT_EBUS;
	struct cl_token *t = cl__token(srv, CL_TOK_CLAIM);
	if (!t)
		return TCPCHAT_ENOMEM;
	t->conn_id = sc->id;
	memcpy(t->name, sc->name, sc->name_len);
	int rc = cl->bus->ops->claim(cl->bus, sc->name, sc->name_len, NULL, 0,
	                             t);
	if (rc) {
		cl__token_free(t);
		return rc;
	}
	sc->cl_wait = 1;
	sc->state = S_JOINING;
	srv__pause(srv, sc);
	return 0;
}

/* A holder the claim may take over: a server that is not there.  Only
 * after a whole timeout on the bus, when every server alive was heard. */
static int holder_gone(tcpchat_server *srv, const char *h, size_t n)
{
	struct cluster *cl = srv->cl;
	if (srv->loop.now - cl->up_since <=
	    CL_NODE_TIMEOUT_MS + CL_HEARTBEAT_MS)
		return 0;
	return cl__node(srv, h, n, NULL) == NULL;
}

void cl__claimed(tcpchat_server *srv, struct cl_token *t, int err,
                 const char *holder, size_t hlen)
{
	struct cluster *cl = srv->cl;
	struct sconn *sc = srv__id_find(srv, t->conn_id);
	size_t nlen = strlen(t->name);
	if (!sc || sc->state != S_JOINING || !sc->cl_wait) {
		/* Gone meanwhile: a name won is given back. */
		if (err == 0 && cl->bus->up &&
		    !srv__name_find(srv, t->name, nlen))
			cl->bus->ops->release(cl->bus, t->name, nlen);
		cl__token_free(t);
		return;
	}
	if (err == TCPCHAT_ENAMEINUSE && !t->retried && holder &&
	    holder_gone(srv, holder, hlen) && cl->bus->up) {
		t->retried = 1;
		srv__log(srv, TCPCHAT_LOG_INFO,
		         "cluster: %s was held by %.*s, which is gone: taken "
		         "over",
		         t->name, (int)TC_MIN(hlen, BUS_NODE_MAX), holder);
		if (cl->bus->ops->claim(cl->bus, t->name, nlen, holder, hlen,
		                        t) == 0)
			return;
		err = TCPCHAT_EBUS;
	}
	cl__token_free(t);
	sc->cl_wait = 0;
	if (err == 0) {
		sc->claimed = 1;
		srv__complete_join(srv, sc);
		srv__resume(srv, sc);
		return;
	}
	tcpchat_str name = {sc->name, sc->name_len};
	if (err == TCPCHAT_ENAMEINUSE)
		srv__refuse_join(srv, sc, err, &name, "name already in use");
	else
		srv__refuse_join(srv, sc, TCPCHAT_EBUS, &name,
		                 "the cluster cannot be reached: try "
		                 "again");
}

/* ---- WHO ------------------------------------------------------------------------- */

uint64_t srv__cluster_users(const tcpchat_server *srv)
{
	return srv->cl ? srv->cl->nusers : 0;
}

int srv__cluster_names(tcpchat_server *srv, const struct room *r,
                       int (*add)(tcpchat_buf *names, const char *p, size_t n),
                       tcpchat_buf *names)
{
	struct cluster *cl = srv->cl;
	if (!cl)
		return 0;
	if (r) {
		struct dlist *it;
		for (it = r->rmembers.next; it != &r->rmembers; it = it->next) {
			const struct ruser *u =
			        CONTAINER(it, struct rmember, link)->u;
			if (add(names, u->name, u->name_len))
				return -1;
		}
		return 0;
	}
	for (const struct rnode *x = cl->nodes; x; x = x->next) {
		const struct dlist *it;
		for (it = x->users.next; it != &x->users; it = it->next) {
			const struct ruser *u =
			        CONTAINER(it, struct ruser, link);
			if (add(names, u->name, u->name_len))
				return -1;
		}
	}
	return 0;
}
