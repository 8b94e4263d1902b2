/* libtcpchat - presence: WHO for the server or one room, the room list,
 * and the LEAVE of a user who goes, told once to each user who shares a
 * room with them. */
#include <string.h>

#include "server_int.h"

#define WHO_MAX_BYTES (60 * 1024) /* a WHO answer fits in any frame */
#define ROOMS_LIST_MAX 1000       /* rooms listed in one answer */
#define LEAVE_REASON_MAX 256      /* bytes of a LEAVE's reason text */

/* Appends a name to a space-separated list, unless it would pass
 * WHO_MAX_BYTES.  Returns 0, or -1 when the list is full. */
static int add_str(tcpchat_buf *names, const char *p, size_t n)
{
	if (names->len + n + 1 > WHO_MAX_BYTES)
		return -1;
	if ((names->len && tcpchat_buf_append(names, " ", 1)) ||
	    tcpchat_buf_append(names, p, n))
		return -1;
	return 0;
}

static int add_name(tcpchat_buf *names, const struct sconn *u)
{
	return add_str(names, u->name, u->name_len);
}

/* Answers WHO: the number of users (of the server, or of the room asked
 * for) and their names in join order (the list is cut at WHO_MAX_BYTES;
 * the number stays exact).  In a cluster, the users of the other servers
 * follow those of this one. */
void srv__on_who(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m)
{
	struct room *r = NULL;
	if (sc->proto >= 2 && m->room.len) {
		if (tcpchat_room_check(m->room.ptr, m->room.len) != 0) {
			srv__req_error(srv, sc, m, TCPCHAT_EBADROOM,
			               tcpchat_strerror(TCPCHAT_EBADROOM));
			return;
		}
		r = srv__room_find(srv, m->room.ptr, m->room.len);
		if (!r) {
			srv__req_error(srv, sc, m, TCPCHAT_ENOTFOUND,
			               "no such room");
			return;
		}
	}
	tcpchat_buf names = {0};
	tcpchat_msg w = {.type = TCPCHAT_MSG_WHO};
	struct dlist *it;
	int full = 0;
	if (r) {
		for (it = r->members.next; it != &r->members && !full;
		     it = it->next)
			full = add_name(&names,
			                CONTAINER(it, struct member, link)->sc);
		w.code = (uint32_t)TC_MIN(r->nmembers + r->nrmembers,
		                          UINT32_MAX);
		srv__room_stamp(srv, r, &w);
	} else {
		for (it = srv->members.next; it != &srv->members && !full;
		     it = it->next)
			full = add_name(&names,
			                CONTAINER(it, struct sconn, member));
		w.code = (uint32_t)TC_MIN(srv->nusers + srv__cluster_users(srv),
		                          UINT32_MAX);
	}
	if (!full && srv->cl)
		srv__cluster_names(srv, r, add_str, &names);
	w.timestamp = srv->wall_ms;
	w.body.ptr = names.data;
	w.body.len = names.len;
	srv__send_one(srv, sc, &w);
	tcpchat_buf_free(&names);
}

/* Answers ROOMS: one message per room (at most ROOMS_LIST_MAX, within the
 * user's queue limits like any chat message), then one that ends the
 * list with the number of rooms. */
void srv__on_rooms(tcpchat_server *srv, struct sconn *sc)
{
	size_t listed = 0;
	struct dlist *it;
	for (it = srv->rooms.next; it != &srv->rooms && listed < ROOMS_LIST_MAX;
	     it = it->next, listed++) {
		const struct room *r = CONTAINER(it, struct room, link);
		tcpchat_msg e = {.type = TCPCHAT_MSG_ROOMS};
		e.timestamp = srv->wall_ms;
		e.code = (uint32_t)TC_MIN(r->nmembers + r->nrmembers,
		                          UINT32_MAX);
		e.body.ptr = r->topic;
		e.body.len = r->topic_len;
		srv__room_stamp(srv, r, &e);
		srv__send_to(srv, sc, &e);
		if (sc->state == S_DEAD)
			return;
	}
	tcpchat_msg end = {.type = TCPCHAT_MSG_ROOMS};
	end.timestamp = srv->wall_ms;
	end.code = (uint32_t)TC_MIN(srv->nrooms, UINT32_MAX);
	srv__send_one(srv, sc, &end);
}

/* sc is going (reason, why): each user who shares an announced room with
 * it gets one LEAVE without a room, with the reason in words. */
void srv__announce_leave(tcpchat_server *srv, struct sconn *sc, int reason,
                         const char *why)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_LEAVE};
	m.code = (uint32_t)reason;
	m.id = ++srv->next_msg_id;
	m.timestamp = srv->wall_ms;
	m.sender.ptr = sc->name;
	m.sender.len = sc->name_len;
	/* In words when they say more than the reason's own word (protocol
	 * 1 peers only ever get a kick's). */
	if (srv__why_says_more(reason, why)) {
		m.body.ptr = why;
		m.body.len = util__utf8_cut(why, strlen(why), LEAVE_REASON_MAX);
	}
	srv__fanout_rooms_of(srv, sc, &m);
}
