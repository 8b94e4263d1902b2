/* libtcpchat - the Redis bus: followed rooms and what comes in on the
 * sub connection (SUBSCRIBE confirmations and messages).  See
 * bus_redis.c for the keys and channels. */
#include <stdlib.h>
#include <string.h>

#include "bus_redis_int.h"

static size_t room_slot(const struct bus_redis *b, const char *room,
                        size_t rlen)
{
	return (size_t)util__siphash(b->hkey, room, rlen) & (b->nbuckets - 1);
}

struct broom *bus_redis__room_find(struct bus_redis *b, const char *room,
                                   size_t rlen)
{
	if (!b->rooms)
		return NULL;
	struct broom *r = b->rooms[room_slot(b, room, rlen)];
	while (r && (r->len != rlen || memcmp(r->name, room, rlen)))
		r = r->next;
	return r;
}

/* Doubles the buckets when the rooms outnumber them. */
static int rooms_grow(struct bus_redis *b)
{
	if (b->rooms && b->nrooms < b->nbuckets)
		return 0;
	size_t n = b->rooms ? b->nbuckets * 2 : 64;
	struct broom **t = calloc(n, sizeof *t);
	if (!t)
		return b->rooms ? 0 : -1; /* a fuller table still works */
	struct broom **old = b->rooms;
	size_t oldn = b->nbuckets;
	b->rooms = t;
	b->nbuckets = n;
	for (size_t i = 0; old && i < oldn; i++) {
		struct broom *r = old[i];
		while (r) {
			struct broom *next = r->next;
			size_t s = room_slot(b, r->name, r->len);
			r->next = t[s];
			t[s] = r;
			r = next;
		}
	}
	free(old);
	return 0;
}

void bus_redis__free_rooms(struct bus_redis *b)
{
	for (size_t i = 0; b->rooms && i < b->nbuckets; i++) {
		struct broom *r = b->rooms[i];
		while (r) {
			struct broom *next = r->next;
			free(r);
			r = next;
		}
	}
	free(b->rooms);
	b->rooms = NULL;
	b->nrooms = b->nbuckets = 0;
}

/* "tcpchat:room:" + the room, in buf (80 bytes at least). */
static size_t room_chan(char *buf, const char *room, size_t rlen)
{
	memcpy(buf, "tcpchat:room:", 13);
	memcpy(buf + 13, room, rlen);
	return 13 + rlen;
}

/* SUBSCRIBE or UNSUBSCRIBE of one channel on sub: 0 or -1. */
static int sub_cmd(struct bus_redis *b, const char *verb, const char *chan,
                   size_t clen)
{
	if (!b->sub)
		return -1;
	const char *argv[2] = {verb, chan};
	size_t lens[2] = {strlen(verb), clen};
	/* UNSUBSCRIBE has no reply of its own in hiredis: no callback */
	int sub = verb[0] == 'S';
	if (redisAsyncCommandArgv(b->sub, sub ? bus_redis__on_sub : NULL,
	                          sub ? b : NULL, 2, argv, lens) != REDIS_OK)
		return -1;
	if (sub && b->link == LINK_CONNECTING)
		b->subs_wanted++;
	return 0;
}

static int room_subscribe(struct bus_redis *b, struct broom *r)
{
	char chan[80];
	size_t n = room_chan(chan, r->name, r->len);
	if (sub_cmd(b, "SUBSCRIBE", chan, n) != 0)
		return -1;
	r->state = SUB_PENDING;
	return 0;
}

int bus_redis__subscribe_all(struct bus_redis *b)
{
	b->subs_wanted = 0;
	if (sub_cmd(b, "SUBSCRIBE", "tcpchat:all", 11) != 0 ||
	    sub_cmd(b, "SUBSCRIBE", b->node_chan, strlen(b->node_chan)) != 0 ||
	    sub_cmd(b, "SUBSCRIBE", b->ping_chan, strlen(b->ping_chan)) != 0)
		return -1;
	int n = 3;
	for (size_t i = 0; b->rooms && i < b->nbuckets; i++)
		for (struct broom *r = b->rooms[i]; r; r = r->next) {
			if (room_subscribe(b, r) != 0)
				return -1;
			n++;
		}
	return b->link == LINK_CONNECTING ? b->subs_wanted : n;
}

int bus_redis__follow(struct bus *bb, const char *room, size_t rlen)
{
	struct bus_redis *b = (struct bus_redis *)bb;
	if (!room_name_ok(room, rlen))
		return TCPCHAT_EINVAL;
	if (bus_redis__room_find(b, room, rlen))
		return 0;
	if (rooms_grow(b) != 0)
		return TCPCHAT_ENOMEM;
	struct broom *r = calloc(1, sizeof *r);
	if (!r)
		return TCPCHAT_ENOMEM;
	memcpy(r->name, room, rlen);
	r->len = rlen;
	r->wtail = &r->wait;
	size_t s = room_slot(b, room, rlen);
	r->next = b->rooms[s];
	b->rooms[s] = r;
	b->nrooms++;
	/* while down it is subscribed on reconnect */
	if (b->link != LINK_DOWN && room_subscribe(b, r) != 0)
		bus_redis__log(b, TCPCHAT_LOG_WARN,
		               "redis bus: cannot subscribe to %.*s", (int)rlen,
		               room);
	return 0;
}

void bus_redis__unfollow(struct bus *bb, const char *room, size_t rlen)
{
	struct bus_redis *b = (struct bus_redis *)bb;
	if (!room_name_ok(room, rlen) || !b->rooms)
		return;
	struct broom **pp = &b->rooms[room_slot(b, room, rlen)];
	while (*pp && ((*pp)->len != rlen || memcmp((*pp)->name, room, rlen)))
		pp = &(*pp)->next;
	struct broom *r = *pp;
	if (!r)
		return;
	*pp = r->next;
	b->nrooms--;
	if (r->state != SUB_NONE && b->link != LINK_DOWN) {
		char chan[80];
		sub_cmd(b, "UNSUBSCRIBE", chan, room_chan(chan, room, rlen));
	}
	bus_redis__room_flush(b, r); /* nobody needs them to wait any more */
	free(r);
}

static int chan_is(const redisReply *c, const char *s)
{
	size_t n = strlen(s);
	return c->len == n && !memcmp(c->str, s, n);
}

static void on_message(struct bus_redis *b, const redisReply *ch,
                       const redisReply *pl)
{
	const struct bus_events *ev = &b->base.ev;
	const uint8_t *p = (const uint8_t *)pl->str;
	if (chan_is(ch, b->ping_chan)) {
		uint64_t n;
		if (bus_redis__parse_u64(pl->str, pl->len, &n) == 0)
			bus_redis__pong(b, n, 0);
		else
			bus_redis__bad(b, "ping");
		return;
	}
	if (chan_is(ch, "tcpchat:all") || chan_is(ch, b->node_chan)) {
		if (pl->len == 0 || pl->len > BUS_REC_MAX) {
			bus_redis__bad(b, "note size");
			return;
		}
		b->base.st.recv++;
		b->base.st.recv_bytes += pl->len;
		ev->note(ev->data, p, pl->len);
		return;
	}
	if (ch->len < 13 || memcmp(ch->str, "tcpchat:room:", 13)) {
		bus_redis__bad(b, "unknown channel");
		return;
	}
	const char *room = ch->str + 13;
	size_t rlen = ch->len - 13;
	if (!room_name_ok(room, rlen)) {
		bus_redis__bad(b, "bad room channel");
		return;
	}
	if (pl->len <= 8 || pl->len - 8 > BUS_REC_MAX) {
		bus_redis__bad(b, "room record size");
		return;
	}
	uint64_t seq = util__get_u64(p);
	if (seq == 0) {
		bus_redis__bad(b, "room seq 0");
		return;
	}
	if (!bus_redis__room_find(b, room, rlen))
		return; /* unfollowed while it was on its way */
	b->base.st.recv++;
	b->base.st.recv_bytes += pl->len - 8;
	ev->room(ev->data, room, rlen, seq, p + 8, pl->len - 8);
}

/* A confirmation of SUBSCRIBE (sub 1) or of UNSUBSCRIBE (sub 0). */
static void on_confirm(struct bus_redis *b, const redisReply *ch, int sub)
{
	struct broom *r = NULL;
	if (ch->len > 13 && !memcmp(ch->str, "tcpchat:room:", 13) &&
	    room_name_ok(ch->str + 13, ch->len - 13))
		r = bus_redis__room_find(b, ch->str + 13, ch->len - 13);
	if (!sub) {
		/* hiredis forgets the channel's callback on this answer even
		 * when a SUBSCRIBE of it was sent after the UNSUBSCRIBE: a
		 * room followed again meanwhile is subscribed once more */
		if (r && r->state == SUB_PENDING)
			room_subscribe(b, r);
		return;
	}
	if (r && r->state == SUB_PENDING) {
		r->state = SUB_OK;
		bus_redis__room_flush(b, r);
	}
	if (b->link == LINK_CONNECTING && b->subs_wanted > 0) {
		b->subs_wanted--;
		bus_redis__progress(b);
	}
}

void bus_redis__on_sub(redisAsyncContext *ac, void *r, void *priv)
{
	struct bus_redis *b = priv;
	redisReply *rep = r;
	if (!rep) {
		if (!b->destroyed && ac == b->sub) {
			b->sub = NULL;
			bus_redis__lose(b, ac->errstr[0] ? ac->errstr
			                                 : "connection closed");
		}
		return;
	}
	if (b->destroyed || ac != b->sub)
		return;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_STRING) {
		bus_redis__bad(b, "subscription answer");
		return;
	}
	const redisReply *kind = rep->element[0];
	if (chan_is(kind, "message") &&
	    rep->element[2]->type == REDIS_REPLY_STRING)
		on_message(b, rep->element[1], rep->element[2]);
	else if (chan_is(kind, "subscribe"))
		on_confirm(b, rep->element[1], 1);
	else if (chan_is(kind, "unsubscribe"))
		on_confirm(b, rep->element[1], 0);
	else
		bus_redis__bad(b, "subscription answer");
}
