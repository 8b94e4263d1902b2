/* libtcpchat - room operators: each room's list of banned names (a JOIN
 * by one is refused before the application is asked), the KICK requests
 * of members (take a user out of a room, ban a name, lift a ban), which
 * the application must allow - nothing is allowed without its handler -
 * and the thread-safe ban commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define KICK_REASON_MAX 256
#define ROOM_BANS_MAX 1024

struct ban {
	struct ban *next;
	uint8_t len;
	char name[TCPCHAT_NAME_MAX + 1];
};

static int ban_is(const struct ban *b, const char *name, size_t len)
{
	return b->len == len && memcmp(b->name, name, len) == 0;
}

int srv__banned(const struct room *r, const char *name, size_t len)
{
	for (const struct ban *b = r->bans; b; b = b->next)
		if (ban_is(b, name, len))
			return 1;
	return 0;
}

int srv__ban_add(struct room *r, const char *name, size_t len)
{
	struct ban **pp = &r->bans;
	while (*pp) {
		if (ban_is(*pp, name, len))
			return 0;
		pp = &(*pp)->next;
	}
	if (r->nbans >= ROOM_BANS_MAX)
		return TCPCHAT_ELIMIT;
	struct ban *b = malloc(sizeof *b);
	if (!b)
		return TCPCHAT_ENOMEM;
	b->next = NULL;
	b->len = (uint8_t)len;
	memcpy(b->name, name, len);
	b->name[len] = '\0';
	*pp = b;
	r->nbans++;
	return 0;
}

int srv__ban_remove(tcpchat_server *srv, struct room *r, const char *name,
                    size_t len)
{
	struct ban **pp = &r->bans;
	while (*pp && !ban_is(*pp, name, len))
		pp = &(*pp)->next;
	if (!*pp)
		return 0;
	struct ban *b = *pp;
	*pp = b->next;
	free(b);
	r->nbans--;
	srv__room_gc(srv, r);
	return 1;
}

void srv__bans_free(struct room *r)
{
	while (r->bans) {
		struct ban *b = r->bans;
		r->bans = b->next;
		free(b);
	}
	r->nbans = 0;
}

int srv__join_banned(tcpchat_server *srv, struct sconn *sc,
                     const struct room *r, const tcpchat_msg *req)
{
	if (!r || !r->nbans || !srv__banned(r, sc->name, sc->name_len))
		return 0;
	char why[32 + TCPCHAT_ROOM_MAX];
	snprintf(why, sizeof why, "banned from %s", r->name);
	srv__req_error(srv, sc, req, TCPCHAT_EREFUSED, why);
	return 1;
}

/* Checks the KICK m from sc: 0 with the room *r and the target's
 * membership *tm (NULL when the target is not in it), or 1 after a
 * non-fatal ERROR. */
static int kick_check(tcpchat_server *srv, struct sconn *sc,
                      const tcpchat_msg *m, struct room **r, struct member **tm)
{
	uint32_t f = m->flags & (TCPCHAT_MSGF_BAN | TCPCHAT_MSGF_UNBAN);
	char why[96 + TCPCHAT_NAME_MAX + TCPCHAT_ROOM_MAX];
	if (tcpchat_room_check(m->room.ptr, m->room.len) != 0) {
		srv__req_error(srv, sc, m, TCPCHAT_EBADROOM,
		               tcpchat_strerror(TCPCHAT_EBADROOM));
		return 1;
	}
	if (tcpchat_name_check(m->target.ptr, m->target.len) != 0) {
		srv__req_error(srv, sc, m, TCPCHAT_EBADNAME,
		               "a kick names a user: 1-32 bytes of printable "
		               "UTF-8 without spaces");
		return 1;
	}
	if (f == (TCPCHAT_MSGF_BAN | TCPCHAT_MSGF_UNBAN) ||
	    (m->body.len && !util__text_ok(m->body.ptr, m->body.len))) {
		srv__req_error(srv, sc, m, TCPCHAT_EBADMSG,
		               f == (TCPCHAT_MSGF_BAN | TCPCHAT_MSGF_UNBAN)
		                       ? "a kick bans or unbans, not both"
		                       : "a reason must be UTF-8 text without "
		                         "control characters");
		return 1;
	}
	*r = srv__room_find(srv, m->room.ptr, m->room.len);
	if (!*r) {
		srv__req_error(srv, sc, m, TCPCHAT_ENOTFOUND, "no such room");
		return 1;
	}
	if (!srv__member_of(sc, *r)) {
		srv__req_error(srv, sc, m, TCPCHAT_ENOTMEMBER,
		               "you are not in that room");
		return 1;
	}
	struct sconn *t = srv__name_find(srv, m->target.ptr, m->target.len);
	*tm = t && t->state == S_JOINED ? srv__member_of(t, *r) : NULL;
	int n = (int)m->target.len, err = TCPCHAT_ENOTFOUND;
	const char *who = m->target.ptr, *room = (*r)->name;
	if (f == TCPCHAT_MSGF_UNBAN) {
		*tm = NULL; /* an unban kicks nobody */
		if (srv__banned(*r, m->target.ptr, m->target.len))
			return 0;
		snprintf(why, sizeof why, "%.*s is not banned from %s", n, who,
		         room);
	} else if (!*tm && f == 0) {
		snprintf(why, sizeof why, "%.*s is not in %s", n, who, room);
	} else if (*tm && (*tm)->sc->proto < 2) {
		snprintf(why, sizeof why,
		         "%.*s speaks protocol 1 and stays in %s", n, who,
		         room);
		err = TCPCHAT_ENOTSUP;
	} else {
		return 0;
	}
	srv__req_error(srv, sc, m, err, why);
	return 1;
}

static void kick_refuse(tcpchat_server *srv, struct sconn *sc,
                        const tcpchat_msg *m, const char *reason)
{
	char why[32 + TCPCHAT_ROOM_MAX];
	if (!reason) {
		snprintf(why, sizeof why, "not an operator of %.*s",
		         (int)m->room.len, m->room.ptr);
		reason = why;
	}
	srv__req_error(srv, sc, m, TCPCHAT_EREFUSED, reason);
}

/* Carries out the checked KICK m from sc in room r (tm: the target's
 * membership, or NULL).  The asker sees the target's LEAVE as a member
 * does; when it does not (an unban, a ban of a name not in the room, a
 * room too big to announce parts) it gets the KICK back. */
static void kick_do(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m,
                    struct room *r, struct member *tm)
{
	uint32_t f = m->flags & (TCPCHAT_MSGF_BAN | TCPCHAT_MSGF_UNBAN);
	size_t blen = util__utf8_cut(m->body.ptr, m->body.len, KICK_REASON_MAX);
	int seen = 0;
	if (f == TCPCHAT_MSGF_UNBAN) {
		srv__ban_remove(srv, r, m->target.ptr, m->target.len);
	} else if (f == TCPCHAT_MSGF_BAN) {
		int rc = srv__ban_add(r, m->target.ptr, m->target.len);
		if (rc) {
			srv__req_error(srv, sc, m, rc,
			               rc == TCPCHAT_ELIMIT
			                       ? "too many bans in that room"
			                       : "server out of memory");
			return;
		}
	}
	srv__log(srv, TCPCHAT_LOG_INFO, "%s %s %.*s %s %s", sc->name,
	         f == TCPCHAT_MSGF_UNBAN ? "unbans"
	         : f                     ? "bans"
	                                 : "kicks",
	         (int)m->target.len, m->target.ptr,
	         f == TCPCHAT_MSGF_UNBAN ? "in" : "from", r->name);
	if (tm) {
		seen = tm->sc == sc ||
		       r->nmembers <= (uint64_t)srv->announce_max;
		srv__part_room(srv, tm, TCPCHAT_REASON_KICKED, m->body.ptr,
		               blen);
	}
	if (seen || sc->state != S_JOINED)
		return;
	tcpchat_msg a = {.type = TCPCHAT_MSG_KICK};
	a.id = ++srv->next_msg_id;
	a.timestamp = srv->wall_ms;
	a.sender.ptr = sc->name;
	a.sender.len = sc->name_len;
	a.target = m->target;
	a.body.ptr = m->body.ptr;
	a.body.len = f == TCPCHAT_MSGF_UNBAN ? 0 : blen;
	a.room = m->room; /* r may have gone with its last ban */
	a.flags = f;
	if (srv->lobby && r == srv->lobby)
		a.flags |= TCPCHAT_MSGF_DEFAULT_ROOM;
	srv__send_to(srv, sc, &a);
}

int srv__on_kick(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	struct room *r;
	struct member *tm;
	if (kick_check(srv, sc, m, &r, &tm))
		return sc->state == S_DEAD;
	tcpchat_msg k = {.type = TCPCHAT_MSG_KICK};
	k.timestamp = srv->wall_ms;
	k.sender.ptr = sc->name;
	k.sender.len = sc->name_len;
	k.room.ptr = r->name;
	k.room.len = r->name_len;
	k.target = m->target;
	k.body.ptr = m->body.ptr;
	k.body.len = util__utf8_cut(m->body.ptr, m->body.len, KICK_REASON_MAX);
	k.flags = m->flags & (TCPCHAT_MSGF_BAN | TCPCHAT_MSGF_UNBAN);
	tcpchat_server_event ev;
	srv__conn_event(sc, &ev, TCPCHAT_SEV_ROOM_KICK);
	ev.room = k.room;
	ev.msg = &k;
	int verdict = srv->handler ? srv__emit(srv, &ev) : TCPCHAT_REFUSE;
	if (sc->state == S_DEAD)
		return 1;
	if (verdict == TCPCHAT_DEFER)
		return srv__hold(srv, sc, &k);
	if (verdict || ev.allow != 1) {
		kick_refuse(srv, sc, &k, ev.refuse_reason);
		return 0;
	}
	kick_do(srv, sc, &k, r, tm);
	return sc->state == S_DEAD;
}

void srv__kick_decided(tcpchat_server *srv, struct sconn *sc,
                       const tcpchat_msg *h, int accept, const char *reason)
{
	struct room *r;
	struct member *tm;
	if (!accept)
		kick_refuse(srv, sc, h, reason);
	else if (kick_check(srv, sc, h, &r, &tm) == 0) /* again: things
	                                                   moved meanwhile */
		kick_do(srv, sc, h, r, tm);
}

void srv__ban_command(tcpchat_server *srv, int unban, const char *room,
                      const char *name, const char *reason, size_t len)
{
	size_t rlen = strlen(room), nlen = strlen(name);
	struct room *r = srv__room_find(srv, room, rlen);
	if (unban) {
		int had = r && srv__ban_remove(srv, r, name, nlen);
		srv__log(srv, TCPCHAT_LOG_INFO,
		         had ? "unban: %s may join %s again"
		             : "unban: %s is not banned from %s",
		         name, room);
		return;
	}
	int rc = 0;
	if (!r)
		rc = srv->nrooms >= (uint64_t)srv->max_rooms
		             ? TCPCHAT_ELIMIT
		             : srv__room_get(srv, room, rlen, &r);
	if (!rc)
		rc = srv__ban_add(r, name, nlen);
	if (rc) {
		srv__log(srv, TCPCHAT_LOG_WARN, "ban: %s from %s: %s", name,
		         room, tcpchat_strerror(rc));
		if (r)
			srv__room_gc(srv, r);
		return;
	}
	srv__log(srv, TCPCHAT_LOG_INFO, "ban: %s from %s", name, room);
	struct sconn *sc = srv__name_find(srv, name, nlen);
	struct member *mb =
	        sc && sc->state == S_JOINED ? srv__member_of(sc, r) : NULL;
	if (mb && sc->proto < 2)
		srv__log(srv, TCPCHAT_LOG_INFO,
		         "ban: %s speaks protocol 1 and stays in %s", name,
		         room);
	else if (mb)
		srv__part_room(srv, mb, TCPCHAT_REASON_KICKED, reason, len);
}

TCPCHAT_API long tcpchat_server_room_bans(tcpchat_server *srv, const char *room,
                                          int (*fn)(tcpchat_str name, void *ud),
                                          void *ud)
{
	if (!srv || !room || !fn)
		return TCPCHAT_EINVAL;
	const struct room *r = srv__room_find(srv, room, strlen(room));
	if (!r)
		return TCPCHAT_ENOTFOUND;
	for (const struct ban *b = r->bans; b; b = b->next) {
		tcpchat_str name = {b->name, b->len};
		if (fn(name, ud))
			break;
	}
	return (long)r->nbans;
}
