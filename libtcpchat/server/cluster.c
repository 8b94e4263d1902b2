/* libtcpchat - a server in a cluster: several servers that are one chat
 * through a bus (bus.h) on an engine that already exists, Redis or NATS.
 *
 * Each server keeps its own users and connections and fans out to them
 * as a lone server does.  What crosses the bus is, per room text, one
 * record per server that has members in the room (the engine numbers it,
 * keeps it and hands it to the servers that follow the room); per
 * presence change, one broadcast record; per private message to a user
 * of another server, one record to that server.  Records are frames of
 * the binary codec, each with its origin node id in the cursor field.
 *
 * Every server says it is alive once a second (a PING record); one not
 * heard of for CL_NODE_TIMEOUT_MS is gone: the others tell their users
 * that its users left (reason LOST).  So a server that dies or is cut
 * off leaves everyone's presence within CL_NODE_TIMEOUT_MS plus one
 * heartbeat, 4 s.  When a server is heard of again, it is asked for a
 * snapshot of its users and their rooms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"

#define NODE_NAME_OK(c)                                                        \
	(((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') ||           \
	 ((c) >= '0' && (c) <= '9') || (c) == '-' || (c) == '_' || (c) == '.')

/* ---- records ----------------------------------------------------------- */

int cl__encode(tcpchat_server *srv, tcpchat_msg *m)
{
	struct cluster *cl = srv->cl;
	m->cursor.ptr = cl->bus->node;
	m->cursor.len = cl->bus->node_len;
	cl->enc.len = 0;
	const tcpchat_codec *c = tcpchat_codec_binary();
	return c->encode(c->codec_data, m, TCPCHAT_FROM_SERVER, &cl->enc);
}

static int node_id_ok(const char *p, size_t n)
{
	if (n < 3 || n > BUS_NODE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!NODE_NAME_OK(p[i]) && p[i] != ':')
			return 0;
	return 1;
}

static void bad_record(tcpchat_server *srv, const char *why)
{
	struct cluster *cl = srv->cl;
	cl->bad_records++;
	if (srv->loop.now - cl->warn_ms >= 1000 || !cl->warn_ms) {
		cl->warn_ms = srv->loop.now;
		srv__log(srv, TCPCHAT_LOG_WARN,
		         "cluster: a bad record from the bus (%s): ignored "
		         "(%llu so far)",
		         why, (unsigned long long)cl->bad_records);
	}
}

int cl__decode(tcpchat_server *srv, const uint8_t *rec, size_t len,
               tcpchat_msg *m)
{
	const tcpchat_codec *c = tcpchat_codec_binary();
	tcpchat_decode_ctx ctx = {0};
	ctx.flags = TCPCHAT_FROM_SERVER;
	ctx.max_frame = BUS_REC_MAX;
	ctx.scratch = srv->cl->scratch;
	ctx.scratch_len = BUS_REC_MAX;
	memset(m, 0, sizeof *m);
	long n = len ? c->decode(c->codec_data, (const char *)rec, len, m, &ctx)
	             : 0;
	if (n <= 0 || (size_t)n != len || !m->type) {
		bad_record(srv, n < 0 && ctx.error ? ctx.error : "not a frame");
		return -1;
	}
	if (!node_id_ok(m->cursor.ptr, m->cursor.len)) {
		bad_record(srv, "no origin");
		return -1;
	}
	if ((m->sender.len &&
	     tcpchat_name_check(m->sender.ptr, m->sender.len) != 0) ||
	    (m->room.len &&
	     tcpchat_room_check(m->room.ptr, m->room.len) != 0) ||
	    (m->body.len && !util__text_ok(m->body.ptr, m->body.len))) {
		bad_record(srv, "a bad name, room or text");
		return -1;
	}
	/* What no record carries (flags, a client's ref, the fields of a
	 * WELCOME or of a history answer) is dropped, so that a record can
	 * make this server tell its users nothing a server would not. */
	m->flags = 0;
	m->ref.len = 0;
	m->caps = m->max_frame = m->queue_frames = m->queue_bytes = 0;
	m->first = m->last = m->oldest = 0;
	m->seq = m->epoch = 0; /* a room's seq comes from the bus, apart */
	return 0;
}

int cl__is_me(const tcpchat_server *srv, const tcpchat_str *id)
{
	const struct bus *b = srv->cl->bus;
	return id->len == b->node_len && memcmp(id->ptr, b->node, id->len) == 0;
}

struct cl_token *cl__token(tcpchat_server *srv, int kind)
{
	struct cl_token *t = calloc(1, sizeof *t);
	if (t) {
		t->kind = kind;
		dl_push(&srv->cl->tokens, &t->link);
	}
	return t;
}

void cl__token_free(struct cl_token *t)
{
	dl_del(&t->link);
	free(t->out);
	free(t);
}

/* ---- the other servers -------------------------------------------------- */

struct rnode *cl__node(tcpchat_server *srv, const char *p, size_t n,
                       int *created)
{
	struct cluster *cl = srv->cl;
	for (struct rnode *x = cl->nodes; x; x = x->next)
		if (x->id_len == n && memcmp(x->id, p, n) == 0)
			return x;
	if (!created)
		return NULL;
	*created = 1;
	struct rnode *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	memcpy(x->id, p, n);
	x->id_len = (uint8_t)n;
	dl_init(&x->users);
	x->seen = srv->loop.now;
	x->next = cl->nodes;
	cl->nodes = x;
	srv__log(srv, TCPCHAT_LOG_INFO, "cluster: server %s is here", x->id);
	return x;
}

static void node_free(tcpchat_server *srv, struct rnode *x)
{
	struct rnode **pp = &srv->cl->nodes;
	while (*pp != x)
		pp = &(*pp)->next;
	*pp = x->next;
	free(x);
}

static void broadcast(tcpchat_server *srv, tcpchat_msg *m)
{
	struct cluster *cl = srv->cl;
	if (!cl->bus->up || cl__encode(srv, m) != 0)
		return;
	cl->bus->ops->broadcast(cl->bus, cl->enc.data, cl->enc.len);
}

/* Once a second: say this server is alive; drop the servers that were
 * silent too long. */
static void on_heartbeat(struct loop_timer *t)
{
	tcpchat_server *srv = t->data;
	struct cluster *cl = srv->cl;
	tcpchat_msg hb = {.type = TCPCHAT_MSG_PING};
	hb.id = ++cl->beats;
	hb.code = (uint32_t)TC_MIN(srv->nusers, UINT32_MAX);
	broadcast(srv, &hb);
	struct rnode *x = cl->nodes, *next;
	for (; x; x = next) {
		next = x->next;
		if (srv->loop.now - x->seen <= CL_NODE_TIMEOUT_MS)
			continue;
		char why[64 + BUS_NODE_MAX];
		snprintf(why, sizeof why, "server %s lost", x->id);
		srv__log(srv, TCPCHAT_LOG_WARN,
		         "cluster: server %s silent for %lld ms: its %llu "
		         "users leave",
		         x->id, (long long)(srv->loop.now - x->seen),
		         (unsigned long long)x->nusers);
		cl__node_gone(srv, x, why);
		node_free(srv, x);
	}
}

/* ---- the bus's events ---------------------------------------------------- */

static void ev_up(void *data)
{
	tcpchat_server *srv = data;
	struct cluster *cl = srv->cl;
	srv__log(srv, TCPCHAT_LOG_WARN,
	         "cluster: the bus is back after %lld ms: catching up",
	         (long long)(srv->loop.now - cl->down_since));
	cl->down_since = 0;
	cl->up_since = srv->loop.now;
	/* Everyone learns who is here now, and this server who is there. */
	cl__snapshot(srv, NULL);
	tcpchat_msg who = {.type = TCPCHAT_MSG_WHO};
	broadcast(srv, &who);
	cl__rooms_up(srv);
}

static void ev_down(void *data, const char *why)
{
	tcpchat_server *srv = data;
	struct cluster *cl = srv->cl;
	cl->down_since = srv->loop.now ? srv->loop.now : 1;
	srv__log(srv, TCPCHAT_LOG_ERROR,
	         "cluster: lost the bus: %s; users here go on chatting, room "
	         "texts wait for it (at most %d)",
	         why, TCPCHAT_CLUSTER_HELD_MAX);
	cl__rooms_down(srv);
}

static void ev_room(void *data, const char *room, size_t rlen, uint64_t seq,
                    const uint8_t *rec, size_t len)
{
	cl__on_room(data, room, rlen, seq, rec, len);
}

static void ev_note(void *data, const uint8_t *rec, size_t len)
{
	tcpchat_server *srv = data;
	tcpchat_msg m;
	if (cl__decode(srv, rec, len, &m) != 0 || cl__is_me(srv, &m.cursor))
		return;
	int created = 0;
	struct rnode *x = cl__node(srv, m.cursor.ptr, m.cursor.len, &created);
	if (!x)
		return; /* out of memory: the next heartbeat tries again */
	x->seen = srv->loop.now;
	/* A server heard of for the first time (or again, after it was
	 * dropped) is asked who is there: unless it asks first, as a server
	 * that starts does (it has nobody yet). */
	if (created && m.type != TCPCHAT_MSG_WHO) {
		tcpchat_msg who = {.type = TCPCHAT_MSG_WHO};
		struct bus *b = srv->cl->bus;
		if (cl__encode(srv, &who) == 0)
			b->ops->send(b, x->id, x->id_len, srv->cl->enc.data,
			             srv->cl->enc.len);
	}
	if (m.type != TCPCHAT_MSG_PING)
		cl__on_people(srv, x, &m);
}

static void ev_posted(void *data, void *token, int err, uint64_t seq)
{
	cl__posted(data, token, err, seq);
}

static void ev_fetched(void *data, void *token, int err,
                       const struct bus_rec *recs, size_t n, uint64_t last)
{
	cl__fetched(data, token, err, recs, n, last);
}

static void ev_claimed(void *data, void *token, int err, const char *holder,
                       size_t hlen)
{
	cl__claimed(data, token, err, holder, hlen);
}

static void ev_log(void *data, int level, const char *text)
{
	srv__log(data, level, "cluster: %s", text);
}

/* ---- joining -------------------------------------------------------------- */

static int node_name_ok(const char *p, size_t n)
{
	if (n == 0 || n > BUS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!NODE_NAME_OK(p[i]))
			return 0;
	return 1;
}

static void cluster_free(struct cluster *cl)
{
	if (!cl)
		return;
	tcpchat_buf_free(&cl->enc);
	free(cl->scratch);
	free(cl);
}

int srv__cluster_join(tcpchat_server *srv, bus_new_fn make, const char *url,
                      const char *node, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof dummy;
	}
	err[0] = '\0';
	if (!srv || !url || !node)
		return TCPCHAT_EINVAL;
	if (!node_name_ok(node, strlen(node))) {
		snprintf(err, errlen,
		         "invalid node name '%s': 1-%d letters, digits, '-', "
		         "'_' or '.'",
		         node, BUS_NAME_MAX);
		return TCPCHAT_EINVAL;
	}
	if (srv->cl || srv->ran || srv->running) {
		snprintf(err, errlen, "%s",
		         srv->cl ? "the server is in a cluster already"
		                 : "the server runs already");
		return TCPCHAT_ESTATE;
	}
	if (srv->durable) {
		snprintf(err, errlen,
		         "a server with a store cannot join a "
		         "cluster: the bus keeps the history");
		return TCPCHAT_ESTATE;
	}
	if (!make) {
		snprintf(err, errlen,
		         "unknown bus '%s': use redis://HOST:PORT or "
		         "nats://HOST:PORT",
		         url);
		return TCPCHAT_EADDR;
	}
	struct cluster *cl = calloc(1, sizeof *cl);
	if (cl)
		cl->scratch = malloc(BUS_REC_MAX);
	if (!cl || !cl->scratch) {
		cluster_free(cl);
		return TCPCHAT_ENOMEM;
	}
	dl_init(&cl->tokens);
	uint64_t key[2];
	util__random_key(key);
	char id[BUS_NODE_MAX + 1];
	snprintf(id, sizeof id, "%s:%016llx", node,
	         (unsigned long long)(key[0] ^ key[1]));
	snprintf(cl->name, sizeof cl->name, "%s", node);
	struct bus_events ev = {
	        .data = srv,
	        .up = ev_up,
	        .down = ev_down,
	        .room = ev_room,
	        .note = ev_note,
	        .posted = ev_posted,
	        .fetched = ev_fetched,
	        .claimed = ev_claimed,
	        .log = ev_log,
	};
	int rc = make(&cl->bus, &srv->loop, url, id, (uint64_t)srv->epoch, 5000,
	              &ev, err, errlen);
	if (rc) {
		cluster_free(cl);
		return rc;
	}
	srv->cl = cl;
	srv->epoch = (long long)cl->bus->epoch;
	cl->up_since = srv->loop.now;
	loop__timer_init(&cl->hb_timer, on_heartbeat, srv);
	if (loop__timer_start(&srv->loop, &cl->hb_timer, CL_HEARTBEAT_MS,
	                      CL_HEARTBEAT_MS) != 0) {
		srv__cluster_fini(srv);
		return TCPCHAT_ENOMEM;
	}
	srv__log(srv, TCPCHAT_LOG_INFO,
	         "cluster: joined through %s as %s (epoch %llu)",
	         cl->bus->ops->name, cl->bus->node,
	         (unsigned long long)cl->bus->epoch);
	/* Whoever is there says who is there. */
	tcpchat_msg who = {.type = TCPCHAT_MSG_WHO};
	broadcast(srv, &who);
	return 0;
}

TCPCHAT_API int tcpchat_server_join_cluster(tcpchat_server *srv,
                                            const char *url, const char *node,
                                            char *err, size_t errlen)
{
	bus_new_fn make = NULL;
	if (url && strncmp(url, "redis://", 8) == 0)
		make = bus_redis__new;
	else if (url && strncmp(url, "nats://", 7) == 0)
		make = bus_nats__new;
	return srv__cluster_join(srv, make, url, node, err, errlen);
}

void srv__cluster_fini(tcpchat_server *srv)
{
	struct cluster *cl = srv->cl;
	if (!cl)
		return;
	loop__timer_stop(&srv->loop, &cl->hb_timer);
	cl->bus->ops->destroy(cl->bus);
	cl->bus = NULL;
	/* What the bus never answered: texts on their way are lost. */
	size_t lost = 0;
	while (!dl_empty(&cl->tokens)) {
		struct cl_token *t =
		        CONTAINER(cl->tokens.next, struct cl_token, link);
		lost += t->out != NULL;
		cl__token_free(t);
	}
	if (lost)
		srv__log(srv, TCPCHAT_LOG_ERROR,
		         "cluster: %zu texts had no answer from the bus", lost);
	cl__rooms_fini(srv);
	cl__users_fini(srv);
	while (cl->nodes)
		node_free(srv, cl->nodes);
	srv->cl = NULL;
	cluster_free(cl);
}

void srv__cluster_reap(tcpchat_server *srv)
{
	if (srv->cl)
		srv->cl->bus->ops->reap(srv->cl->bus);
}

void srv__cluster_count(tcpchat_server *srv)
{
	struct cluster *cl = srv->cl;
	const struct bus_stats *b = &cl->bus->st;
	struct stat_set *st = &srv->st;
	st->cl_up = (uint64_t)cl->bus->up;
	st->cl_servers = 0;
	for (const struct rnode *x = cl->nodes; x; x = x->next)
		st->cl_servers++;
	st->cl_users = cl->nusers;
	st->bus_sent = b->sent;
	st->bus_sent_bytes = b->sent_bytes;
	st->bus_recv = b->recv;
	st->bus_recv_bytes = b->recv_bytes;
	st->bus_losses = b->losses;
	st->bus_held = cl->nout;
	st->bus_refused = cl->refused_down;
	st->bus_gaps = cl->gaps;
	st->bus_bad = cl->bad_records + b->bad;
}
