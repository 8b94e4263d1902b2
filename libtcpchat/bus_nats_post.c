/* libtcpchat - the NATS bus, posting in rounds (group commit).  The
 * worker takes a post with every post queued right behind it; the posts
 * of a round are grouped by room, and each room gets ONE message with
 * its posts' records (each after its length, u32 big-endian) and the
 * headers Tcpchat-Seq (the first record's number; the others follow
 * one by one), Tcpchat-Count, Tcpchat-Prev and
 * Nats-Expected-Last-Subject-Sequence.  The messages of all rooms go
 * out before any PubAck is awaited: a round costs about one round trip,
 * whatever the number of rooms.  A room that lost the race for its next
 * number (another server posted) learns its last record and goes again
 * in the next pass.  While a round waits, new posts queue: under load a
 * message carries many records, at light load a post goes alone at
 * once.
 *
 * The PubAcks come back on a subscription of the bus's own inbox, to
 * PREFIX.R.G (round R, group G): a late one of an earlier round is
 * known and dropped.  All of it runs on the worker thread: unlike
 * js_PublishMsgAsync's ack handlers (nats.c's threads), nothing to lock,
 * and a PubAck that comes after its round gave up touches nothing. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_nats_int.h"
#include "internal.h"

/* A room's posts in a round, in their order: ord[start..start+n). */
struct bn_group {
	struct bn_room *e;
	size_t start, n;
	size_t bytes;   /* the payload: each record after its length */
	uint64_t first; /* the seq of its first record */
	int state;      /* G_SEND, G_WAIT, G_DONE */
	char subj[BUS_NATS_SUBJ_MAX];
};

enum { G_SEND, G_WAIT, G_DONE };

/* Answers every post of g with an error. */
static void group_fail(struct bn_group *g, struct bn_req **ord, int err,
                       const char *what, natsStatus s)
{
	for (size_t i = 0; i < g->n; i++) {
		struct bn_req *r = ord[g->start + i];
		if (err == TCPCHAT_EBUS && what)
			bus_nats__fail(r, what, s);
		else
			r->err = err;
	}
	g->state = G_DONE;
}

/* The number after "key": in the NUL-terminated JSON text j, into *v:
 * 0, or -1 when it is not there. */
static int json_u64(const char *j, const char *key, uint64_t *v)
{
	const char *p = strstr(j, key);
	char num[24];
	size_t n = 0;
	if (!p)
		return -1;
	p += strlen(key);
	while (*p == ' ')
		p++;
	while (n < sizeof num - 1 && *p >= '0' && *p <= '9')
		num[n++] = *p++;
	num[n] = '\0';
	return bus_nats__parse_u64(num, v);
}

/* JetStream's PubAck in m: 1 with its stream seq in *seq, or 0 with the
 * error's err_code in *code (0 when it has none, as a status reply). */
static int ack_parse(natsMsg *m, uint64_t *seq, uint64_t *code)
{
	char j[512];
	int n = natsMsg_GetDataLength(m);
	*seq = *code = 0;
	if (n <= 0)
		return 0; /* a status: no responders, say */
	if ((size_t)n >= sizeof j)
		n = (int)sizeof j - 1;
	memcpy(j, natsMsg_GetData(m), (size_t)n);
	j[n] = '\0';
	if (strstr(j, "\"error\"")) {
		json_u64(j, "\"err_code\":", code);
		return 0;
	}
	return strstr(j, "\"stream\":\"" BUS_NATS_STREAM "\"") &&
	       !json_u64(j, "\"seq\":", seq) && *seq > 0;
}

/* Publishes g's message with the reply subject of round rid: its
 * records, each after its length, and the headers. */
static natsStatus group_send(struct bus_nats *b, struct bn_group *g,
                             struct bn_req **ord, uint64_t rid, size_t gi)
{
	char reply[sizeof b->ack_prefix + 48], num[24];
	natsMsg *m = NULL;
	uint8_t *p = malloc(g->bytes);
	if (!p)
		return NATS_NO_MEMORY;
	size_t off = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct bn_req *r = ord[g->start + i];
		p[off] = (uint8_t)(r->len >> 24);
		p[off + 1] = (uint8_t)(r->len >> 16);
		p[off + 2] = (uint8_t)(r->len >> 8);
		p[off + 3] = (uint8_t)r->len;
		memcpy(p + off + 4, r->data, r->len);
		off += 4 + r->len;
	}
	snprintf(reply, sizeof reply, "%s.%" PRIu64 ".%zu", b->ack_prefix, rid,
	         gi);
	natsStatus s = natsMsg_Create(&m, g->subj, reply, (const char *)p,
	                              (int)g->bytes);
	free(p);
	snprintf(num, sizeof num, "%" PRIu64, g->first);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Tcpchat-Seq", num);
	snprintf(num, sizeof num, "%zu", g->n);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Tcpchat-Count", num);
	snprintf(num, sizeof num, "%" PRIu64, g->e->last_rec);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Tcpchat-Prev", num);
	snprintf(num, sizeof num, "%" PRIu64, g->e->last_any);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Nats-Expected-Last-Subject-Sequence",
		                      num);
	/* Not into nats.c's buffer while it reconnects. */
	if (s == NATS_OK &&
	    (atomic_load(&b->down) ||
	     natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED))
		s = NATS_CONNECTION_DISCONNECTED;
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(b->nc, m);
	natsMsg_Destroy(m);
	if (s == NATS_OK) {
		ord[g->start]->bmsgs++;
		ord[g->start]->bbytes += g->bytes;
	}
	return s;
}

/* The seq of g's first record: above the room's last and each post's
 * floor (post i of the group gets first + i).  0 when past 2^62. */
static uint64_t group_first(struct bn_group *g, struct bn_req **ord)
{
	uint64_t first = g->e->last_seq + 1;
	for (size_t i = 0; i < g->n; i++) {
		uint64_t fl = ord[g->start + i]->floor + 1;
		if (fl > i && fl - i > first)
			first = fl - i;
	}
	return first + g->n - 1 > (UINT64_C(1) << 62) ? 0 : first;
}

/* The round rid of a reply subject and its group: 0, or -1 when it is
 * not one of ours. */
static int reply_of(struct bus_nats *b, const char *subj, uint64_t *rid,
                    uint64_t *gi)
{
	size_t pl = strlen(b->ack_prefix);
	char t[48];
	if (!subj || strncmp(subj, b->ack_prefix, pl) || subj[pl] != '.' ||
	    strlen(subj + pl + 1) >= sizeof t)
		return -1;
	strcpy(t, subj + pl + 1);
	char *dot = strchr(t, '.');
	if (!dot)
		return -1;
	*dot = '\0';
	return bus_nats__parse_u64(t, rid) || bus_nats__parse_u64(dot + 1, gi)
	               ? -1
	               : 0;
}

/* One reply m for the groups g[0..ng) of round rid; *waiting counts the
 * groups still waiting. */
static void on_reply(struct bus_nats *b, natsMsg *m, struct bn_group *g,
                     size_t ng, struct bn_req **ord, uint64_t rid,
                     size_t *waiting)
{
	uint64_t r, gi, seq, code;
	if (reply_of(b, natsMsg_GetSubject(m), &r, &gi) || r != rid ||
	    gi >= ng || g[gi].state != G_WAIT)
		return; /* a late one of an earlier round */
	struct bn_group *x = &g[gi];
	(*waiting)--;
	if (ack_parse(m, &seq, &code)) {
		x->e->last_any = x->e->last_rec = seq;
		x->e->last_seq = x->first + x->n - 1;
		for (size_t i = 0; i < x->n; i++) {
			ord[x->start + i]->err = 0;
			ord[x->start + i]->seq = x->first + i;
		}
		x->state = G_DONE;
		return;
	}
	if (code == JSStreamWrongLastSequenceErr) {
		/* Another server posted to the room meanwhile. */
		natsStatus s = bus_nats__refresh(b, x->e, x->subj);
		x->state = G_SEND;
		if (s != NATS_OK) {
			x->e->known = 0;
			group_fail(x, ord, TCPCHAT_EBUS,
			           "reading the room's last record", s);
		}
		return;
	}
	x->e->known = 0; /* unknown after a failure */
	group_fail(x, ord, TCPCHAT_EBUS, "publishing a record", NATS_ERR);
	snprintf(ord[x->start]->why, sizeof ord[x->start]->why,
	         "publishing a record: JetStream error %" PRIu64, code);
}

/* Sends the groups in G_SEND and waits for their PubAcks, again for
 * those that lost a race, BUS_NATS_TRIES times at most. */
static void rounds(struct bus_nats *b, struct bn_group *g, size_t ng,
                   struct bn_req **ord)
{
	for (int tries = 0; tries < BUS_NATS_TRIES; tries++) {
		uint64_t rid = ++b->round;
		size_t waiting = 0;
		for (size_t k = 0; k < ng; k++) {
			if (g[k].state != G_SEND)
				continue;
			natsStatus s = NATS_OK;
			if (!(g[k].first = group_first(&g[k], ord))) {
				group_fail(&g[k], ord, TCPCHAT_EINVAL, NULL, s);
				continue;
			}
			s = group_send(b, &g[k], ord, rid, k);
			if (s != NATS_OK) {
				g[k].e->known = 0;
				group_fail(&g[k], ord, TCPCHAT_EBUS,
				           "publishing a record", s);
				continue;
			}
			g[k].state = G_WAIT;
			waiting++;
		}
		if (!waiting)
			return;
		int64_t end = util__now_ms() + BUS_NATS_ACK_MS;
		unsigned losses = atomic_load(&b->losses);
		while (waiting) {
			natsMsg *m = NULL;
			int64_t left = end - util__now_ms();
			natsStatus s = NATS_TIMEOUT;
			/* In slices: a loss ends the wait at once (no PubAck
			 * comes then), so the worker is free for what follows. */
			if (left > 0)
				s = natsSubscription_NextMsg(&m, b->ack_sub,
				                             left > 100 ? 100
				                                        : left);
			if (s == NATS_TIMEOUT && left > 100 &&
			    atomic_load(&b->losses) == losses)
				continue;
			if (s == NATS_TIMEOUT && left > 100)
				s = NATS_CONNECTION_DISCONNECTED;
			if (s != NATS_OK) {
				for (size_t k = 0; k < ng; k++)
					if (g[k].state == G_WAIT) {
						g[k].e->known = 0;
						group_fail(
						        &g[k], ord,
						        TCPCHAT_EBUS,
						        "publishing a record",
						        s);
					}
				return;
			}
			on_reply(b, m, g, ng, ord, rid, &waiting);
			natsMsg_Destroy(m);
		}
	}
	for (size_t k = 0; k < ng; k++)
		if (g[k].state == G_SEND) {
			struct bn_req *r = ord[g[k].start];
			group_fail(&g[k], ord, TCPCHAT_EBUS, NULL, NATS_OK);
			snprintf(r->why, sizeof r->why,
			         "too much contention on %.*s", (int)r->rlen,
			         r->room);
		}
}

/* The subscription of the PubAcks, made once. */
static natsStatus ack_sub(struct bus_nats *b)
{
	if (b->ack_sub)
		return NATS_OK;
	natsInbox *in = NULL;
	char subj[sizeof b->ack_prefix + 8];
	natsStatus s = natsInbox_Create(&in);
	if (s != NATS_OK)
		return s;
	snprintf(b->ack_prefix, sizeof b->ack_prefix, "%s", in);
	natsInbox_Destroy(in);
	snprintf(subj, sizeof subj, "%s.*.*", b->ack_prefix);
	return natsConnection_SubscribeSync(&b->ack_sub, b->nc, subj);
}

/* Groups the checked posts rq[0..n) by room into g and ord; the number
 * of groups.  Each post not in a group is answered already. */
static size_t group(struct bus_nats *b, struct bn_req **rq, size_t n,
                    struct bn_group *g, struct bn_req **ord, size_t *gi)
{
	size_t ng = 0;
	for (size_t i = 0; i < n; i++) {
		struct bn_req *r = rq[i];
		struct bn_room *e = NULL;
		gi[i] = SIZE_MAX;
		if (r->err != TCPCHAT_EBUS || r->why[0])
			continue; /* answered: stale */
		if (r->floor > (UINT64_C(1) << 62) || !r->len ||
		    r->len > BUS_REC_MAX || r->rlen > BUS_NATS_ROOM_MAX) {
			r->err = TCPCHAT_EINVAL;
			continue;
		}
		if (!(e = bus_nats__room_get(b, r->room, r->rlen, 1))) {
			r->err = TCPCHAT_ENOMEM;
			continue;
		}
		if (!e->grp) {
			e->grp = &g[ng];
			memset(e->grp, 0, sizeof *e->grp);
			e->grp->e = e;
			bus_nats__room_subject(
			        e->grp->subj, sizeof e->grp->subj,
			        BUS_NATS_LOG_PREFIX, r->room, r->rlen);
			ng++;
		}
		gi[i] = (size_t)(e->grp - g);
		e->grp->n++;
		e->grp->bytes += 4 + r->len;
	}
	size_t at = 0;
	for (size_t k = 0; k < ng; k++) {
		g[k].start = at;
		at += g[k].n;
		g[k].n = 0;
		g[k].e->grp = NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (gi[i] != SIZE_MAX)
			ord[g[gi[i]].start + g[gi[i]].n++] = rq[i];
	return ng;
}

void bus_nats__post_round(struct bus_nats *b, struct bn_req **rq, size_t n)
{
	unsigned gen = atomic_load(&b->gen);
	int stale = atomic_load(&b->down);
	for (size_t i = 0; i < n; i++) {
		rq[i]->err = TCPCHAT_EBUS;
		if (stale || rq[i]->gen != gen)
			snprintf(rq[i]->why, sizeof rq[i]->why,
			         "the NATS server is lost");
	}
	struct bn_group *g = malloc(n * sizeof *g);
	struct bn_req **ord = malloc(n * sizeof *ord);
	size_t *gi = malloc(n * sizeof *gi);
	natsStatus s = NATS_NO_MEMORY;
	if (!g || !ord || !gi || (s = ack_sub(b)) != NATS_OK) {
		for (size_t i = 0; i < n; i++)
			if (!rq[i]->why[0])
				bus_nats__fail(rq[i], "posting", s);
		goto out;
	}
	size_t ng = group(b, rq, n, g, ord, gi);
	for (size_t k = 0; k < ng; k++) {
		g[k].state = G_SEND;
		if (!g[k].e->known &&
		    (s = bus_nats__refresh(b, g[k].e, g[k].subj)) != NATS_OK)
			group_fail(&g[k], ord, TCPCHAT_EBUS,
			           "reading the room's last record", s);
	}
	rounds(b, g, ng, ord);
out:
	for (size_t i = 0; i < n; i++)
		if (atomic_load(&b->gen) != gen && rq[i]->err == 0)
			rq[i]->err = TCPCHAT_EBUS; /* answered so by the loss */
	free(g);
	free(ord);
	free(gi);
}
