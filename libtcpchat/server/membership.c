/* libtcpchat - joining and parting rooms (asked by the user, decided by
 * the application now or later, or forced by it), topics, and what the
 * members are told: a join or part is announced to a room of at most
 * ANNOUNCE_MAX members, and always confirmed to the user it concerns. */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define PART_REASON_MAX 256

static void room_event(tcpchat_server *srv, struct sconn *sc,
                       const struct room *r, tcpchat_server_event *ev, int type)
{
	srv__conn_event(sc, ev, type);
	ev->room.ptr = r->name;
	ev->room.len = r->name_len;
}

void srv__send_topic(tcpchat_server *srv, struct sconn *sc,
                     const struct room *r)
{
	tcpchat_msg t = {.type = TCPCHAT_MSG_TOPIC};
	t.timestamp = r->topic_ts; /* when it was set, and by whom */
	t.sender.ptr = r->topic_by;
	t.sender.len = r->topic_by_len;
	t.body.ptr = r->topic;
	t.body.len = r->topic_len;
	srv__room_stamp(srv, r, &t);
	srv__send_to(srv, sc, &t);
}

static tcpchat_msg join_msg(tcpchat_server *srv, struct sconn *sc,
                            const struct room *r)
{
	tcpchat_msg j = {.type = TCPCHAT_MSG_JOIN};
	j.id = ++srv->next_msg_id;
	j.timestamp = srv->wall_ms;
	j.sender.ptr = sc->name;
	j.sender.len = sc->name_len;
	j.code = (uint32_t)TC_MIN(r->nmembers + r->nrmembers, UINT32_MAX);
	srv__room_stamp(srv, r, &j);
	srv__room_mark(srv, r, &j);
	return j;
}

static void confirm_join(tcpchat_server *srv, struct sconn *sc,
                         const struct room *r)
{
	tcpchat_msg j = join_msg(srv, sc, r);
	srv__send_to(srv, sc, &j);
}

/* Tells the room (or, in a big room, only the user) that sc is in. */
static void announce_join(tcpchat_server *srv, struct sconn *sc, struct room *r,
                          const struct sconn *except)
{
	if (r->nmembers + r->nrmembers > (uint64_t)srv->announce_max) {
		if (sc != except)
			confirm_join(srv, sc, r);
		return;
	}
	tcpchat_msg j = join_msg(srv, sc, r);
	srv__fanout_room(srv, r, &j, except);
}

/* Puts sc into the room room[0..len) (a checked name) and tells who
 * must know.  how: JOIN_ASKED (the user asked: the room becomes its
 * current one, and asking again only confirms), JOIN_FORCED (by the
 * application: the user is told, its current room stays) or JOIN_LOGIN
 * (the default room at login: the WELCOME tells the user).  Returns 0,
 * TCPCHAT_ELIMIT or TCPCHAT_ENOMEM, after telling a user who asked. */
int srv__join_room(tcpchat_server *srv, struct sconn *sc, const char *room,
                   size_t len, int how, const tcpchat_msg *resume)
{
	struct room *r = srv__room_find(srv, room, len);
	if (r && srv__member_of(sc, r)) {
		/* Already in: the user alone is told again, nobody else. */
		if (how == JOIN_ASKED)
			sc->cur = r;
		if (how != JOIN_LOGIN && !resume)
			confirm_join(srv, sc, r);
		if (resume)
			srv__hist_resume(srv, sc, r, resume);
		return 0;
	}
	const char *why = "server out of memory";
	int rc = srv__room_limit(srv, sc, room, len, &why);
	if (rc == 0 && srv->cl &&
	    srv__cluster_join_wait(srv, sc, room, len, how, resume))
		return 0; /* goes on when the room is in step with the bus */
	if (rc == 0)
		rc = srv__room_get(srv, room, len, &r);
	if (rc == 0) {
		rc = srv__member_add(srv, sc, r);
		if (rc)
			srv__room_gc(srv, r);
	}
	if (rc) {
		tcpchat_msg req = {.type = TCPCHAT_MSG_JOIN};
		req.room.ptr = room;
		req.room.len = len;
		if (how == JOIN_ASKED)
			srv__req_error(srv, sc, &req, rc, why);
		return rc;
	}
	if (how != JOIN_FORCED)
		sc->cur = r;
	if (srv->cl)
		srv__cluster_joined(srv, sc, r);
	announce_join(srv, sc, r, how == JOIN_LOGIN ? sc : NULL);
	if (sc->state == S_DEAD)
		return 0; /* closed meanwhile */
	if (r->topic_len && sc->proto >= 2)
		srv__send_topic(srv, sc, r);
	if (resume && sc->state != S_DEAD)
		srv__hist_resume(srv, sc, r, resume);
	if (srv__logs(srv, TCPCHAT_LOG_DEBUG)) {
		char who[SRV_WHO_MAX];
		srv__log(srv, TCPCHAT_LOG_DEBUG, "%s: joined %s%s",
		         srv__who(sc, who, sizeof who), r->name,
		         how == JOIN_FORCED ? " (by the server)" : "");
	}
	tcpchat_server_event ev;
	room_event(srv, sc, r, &ev, TCPCHAT_SEV_ROOM_JOINED);
	srv__emit(srv, &ev);
	return 0;
}

/* "conn 7 (alice): parted #dev", with the reason when it is not a plain
 * part: "parted #dev (kicked: spam)". */
static void log_part(tcpchat_server *srv, const struct sconn *sc,
                     const struct room *r, int reason, const char *text,
                     size_t len)
{
	char who[SRV_WHO_MAX];
	srv__who(sc, who, sizeof who);
	if (reason == TCPCHAT_REASON_PART && !len)
		srv__log(srv, TCPCHAT_LOG_DEBUG, "%s: parted %s", who, r->name);
	else
		srv__log(srv, TCPCHAT_LOG_DEBUG, "%s: parted %s (%s%s%s)", who,
		         r->name, tcpchat_reason_name(reason), len ? ": " : "",
		         len ? text : "");
}

/* Takes the member out of its room, telling the room (or, in a big room,
 * only the user): reason TCPCHAT_REASON_PART or _KICKED, why[0..why_len)
 * the reason in words (may be empty). */
void srv__part_room(tcpchat_server *srv, struct member *mb, int reason,
                    const char *why, size_t why_len)
{
	struct sconn *sc = mb->sc;
	struct room *r = mb->room;
	tcpchat_msg l = {.type = TCPCHAT_MSG_LEAVE};
	l.id = ++srv->next_msg_id;
	l.timestamp = srv->wall_ms;
	l.code = (uint32_t)reason;
	l.sender.ptr = sc->name;
	l.sender.len = sc->name_len;
	l.body.ptr = why;
	l.body.len = why_len;
	srv__room_stamp(srv, r, &l);
	char rname[TCPCHAT_ROOM_MAX + 1], text[PART_REASON_MAX + 1];
	memcpy(rname, r->name, r->name_len);
	why_len = TC_MIN(why_len, PART_REASON_MAX);
	if (why_len)
		memcpy(text, why, why_len);
	text[why_len] = '\0';
	if (srv->cl)
		srv__cluster_parted(srv, sc, r, reason, why, why_len);
	if (r->nmembers + r->nrmembers <= (uint64_t)srv->announce_max)
		srv__fanout_room(srv, r, &l, NULL);
	else
		srv__send_to(srv, sc, &l);
	if (sc->state == S_DEAD)
		return; /* closed meanwhile: its rooms went with it */
	if (srv__logs(srv, TCPCHAT_LOG_DEBUG))
		log_part(srv, sc, r, reason, text, why_len);
	tcpchat_server_event ev;
	room_event(srv, sc, r, &ev, TCPCHAT_SEV_ROOM_PART);
	ev.room.ptr = rname; /* the room may go with its last member */
	ev.reason = reason;
	ev.text = why_len ? text : NULL;
	srv__member_remove(srv, mb);
	srv__emit(srv, &ev);
}

/* The room named in a request, checked: 0 with *r (NULL when it does not
 * exist), or 1 after a non-fatal ERROR. */
static int requested_room(tcpchat_server *srv, struct sconn *sc,
                          const tcpchat_msg *m, struct room **r)
{
	if (tcpchat_room_check(m->room.ptr, m->room.len) != 0) {
		srv__req_error(srv, sc, m, TCPCHAT_EBADROOM,
		               tcpchat_strerror(TCPCHAT_EBADROOM));
		return 1;
	}
	*r = srv__room_find(srv, m->room.ptr, m->room.len);
	return 0;
}

/* JOIN from a user: refused when the name is banned from the room;
 * otherwise the application may refuse it, or decide later. */
int srv__on_join(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	struct room *r;
	if (requested_room(srv, sc, m, &r))
		return 0;
	if (!r || !srv__member_of(sc, r)) {
		const char *why;
		if (srv__join_banned(srv, sc, r, m))
			return sc->state == S_DEAD;
		int rc = srv__room_limit(srv, sc, m->room.ptr, m->room.len,
		                         &why);
		if (rc) {
			srv__req_error(srv, sc, m, rc, why);
			return 0;
		}
		tcpchat_server_event ev;
		srv__conn_event(sc, &ev, TCPCHAT_SEV_ROOM_JOIN);
		ev.room = m->room;
		int verdict = srv__emit(srv, &ev);
		if (sc->state == S_DEAD)
			return 1;
		if (verdict == TCPCHAT_DEFER)
			return srv__hold(srv, sc, m);
		if (verdict) {
			srv__req_error(srv, sc, m, TCPCHAT_EREFUSED,
			               ev.refuse_reason
			                       ? ev.refuse_reason
			                       : "refused by the server");
			return 0;
		}
	}
	srv__join_room(srv, sc, m->room.ptr, m->room.len, JOIN_ASKED,
	               m->flags & TCPCHAT_MSGF_AFTER ? m : NULL);
	/* In a cluster the join may wait for the room: input waits too. */
	return sc->state == S_DEAD || sc->cl_wait;
}

/* LEAVE with a room, or with code PART: the user parts one room. */
int srv__on_part(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	struct room *r = sc->cur;
	if (m->room.len && requested_room(srv, sc, m, &r))
		return 0;
	struct member *mb = r ? srv__member_of(sc, r) : NULL;
	if (!mb) {
		srv__req_error(srv, sc, m, TCPCHAT_ENOTMEMBER,
		               m->room.len ? "you are not in that room"
		                           : "you are not in any room");
		return 0;
	}
	if (m->body.len && !util__text_ok(m->body.ptr, m->body.len)) {
		srv__req_error(srv, sc, m, TCPCHAT_EBADMSG,
		               "a reason must be UTF-8 text without control "
		               "characters");
		return 0;
	}
	srv__part_room(
	        srv, mb, TCPCHAT_REASON_PART, m->body.ptr,
	        util__utf8_cut(m->body.ptr, m->body.len, PART_REASON_MAX));
	return sc->state == S_DEAD;
}

/* TOPIC from a member: set (or clear) it and tell the room. */
int srv__on_topic(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	struct room *r;
	if (requested_room(srv, sc, m, &r))
		return 0;
	if (!r || !srv__member_of(sc, r)) {
		srv__req_error(srv, sc, m, TCPCHAT_ENOTMEMBER,
		               "you are not in that room");
		return 0;
	}
	if (m->body.len && !util__text_ok(m->body.ptr, m->body.len)) {
		srv__req_error(srv, sc, m, TCPCHAT_EBADMSG,
		               "a topic must be UTF-8 text without control "
		               "characters");
		return 0;
	}
	if (m->body.len > TCPCHAT_TOPIC_MAX) {
		srv__req_error(srv, sc, m, TCPCHAT_EMSGSIZE,
		               "a topic is at most 256 bytes");
		return 0;
	}
	tcpchat_msg t = {.type = TCPCHAT_MSG_TOPIC};
	t.timestamp = srv->wall_ms;
	t.sender.ptr = sc->name;
	t.sender.len = sc->name_len;
	t.body = m->body;
	srv__room_stamp(srv, r, &t);
	tcpchat_server_event ev;
	room_event(srv, sc, r, &ev, TCPCHAT_SEV_TOPIC);
	ev.msg = &t;
	int verdict = srv__emit(srv, &ev);
	if (sc->state == S_DEAD)
		return 1;
	if (verdict) {
		srv__req_error(srv, sc, m, TCPCHAT_EREFUSED,
		               ev.refuse_reason ? ev.refuse_reason
		                                : "topic refused");
		return 0;
	}
	if (srv__room_set_topic(r, &t) != 0) {
		srv__req_error(srv, sc, m, TCPCHAT_ENOMEM,
		               "server out of memory");
		return 0;
	}
	t.id = ++srv->next_msg_id;
	t.body.ptr = r->topic;
	srv__durable_topic(srv, r);
	if (srv->cl)
		srv__cluster_topic(srv, r);
	srv__fanout_room(srv, r, &t, NULL);
	return sc->state == S_DEAD;
}
