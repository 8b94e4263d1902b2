/* libtcpchat - the server's thread-safe actions: each posts a command that
 * the loop carries out on its own thread. */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define KICK_REASON_MAX 256

enum cmd_type {
	CMD_BROADCAST,
	CMD_SEND_TO,
	CMD_KICK,
	CMD_ACCEPT,
	CMD_REFUSE,
	CMD_ROOM_BROADCAST,
	CMD_ROOM_JOIN,
	CMD_ROOM_PART,
	CMD_TOPIC,
	CMD_ROOM_BAN,
	CMD_ROOM_UNBAN
};

struct cmd {
	struct loop_cmd node; /* first */
	int type;
	uint64_t conn_id; /* 0: address by name */
	size_t len;
	char name[TCPCHAT_NAME_MAX + 1];
	char room[TCPCHAT_ROOM_MAX + 1];
	char text[]; /* NUL-terminated */
};

static int post_room(tcpchat_server *srv, int type, const char *name,
                     uint64_t conn_id, const char *room, const char *text,
                     size_t len)
{
	size_t nlen = name ? strlen(name) : 0;
	if (name && (nlen == 0 || nlen > TCPCHAT_NAME_MAX))
		return TCPCHAT_EINVAL;
	size_t rlen = room ? strlen(room) : 0;
	if (room && tcpchat_room_check(room, rlen) != 0)
		return TCPCHAT_EBADROOM;
	struct cmd *c = malloc(sizeof *c + len + 1);
	if (!c)
		return TCPCHAT_ENOMEM;
	c->type = type;
	c->conn_id = conn_id;
	c->len = len;
	memset(c->name, 0, sizeof c->name);
	memset(c->room, 0, sizeof c->room);
	if (name)
		memcpy(c->name, name, nlen);
	if (room)
		memcpy(c->room, room, rlen);
	if (len)
		memcpy(c->text, text, len);
	c->text[len] = '\0';
	loop__post(&srv->loop, &c->node);
	return 0;
}

static int post(tcpchat_server *srv, int type, const char *name,
                uint64_t conn_id, const char *text, size_t len)
{
	return post_room(srv, type, name, conn_id, NULL, text, len);
}

static int check_text(tcpchat_server *srv, const char *text, size_t len)
{
	if (!util__chat_text_ok(text, len))
		return TCPCHAT_EINVAL;
	if (len > (size_t)atomic_load_explicit(&srv->max_frame_pub,
	                                       memory_order_relaxed))
		return TCPCHAT_EMSGSIZE;
	return 0;
}

static int check_reason(const char *reason, size_t *len)
{
	/* cut on a character boundary: it must stay valid chat text */
	*len = util__utf8_cut(reason, strlen(reason), KICK_REASON_MAX);
	return util__text_ok(reason, *len) ? 0 : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_server_broadcast(tcpchat_server *srv, const char *text,
                                         size_t len)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	int rc = check_text(srv, text, len);
	return rc ? rc : post(srv, CMD_BROADCAST, NULL, 0, text, len);
}

TCPCHAT_API int tcpchat_server_send_to(tcpchat_server *srv, const char *name,
                                       const char *text, size_t len)
{
	if (!srv || !name)
		return TCPCHAT_EINVAL;
	int rc = check_text(srv, text, len);
	return rc ? rc : post(srv, CMD_SEND_TO, name, 0, text, len);
}

TCPCHAT_API int tcpchat_server_send_to_id(tcpchat_server *srv, uint64_t conn_id,
                                          const char *text, size_t len)
{
	if (!srv || !conn_id)
		return TCPCHAT_EINVAL;
	int rc = check_text(srv, text, len);
	return rc ? rc : post(srv, CMD_SEND_TO, NULL, conn_id, text, len);
}

static int kick(tcpchat_server *srv, const char *name, uint64_t id,
                const char *reason)
{
	if (!reason || !*reason)
		reason = "kicked";
	size_t len;
	if (check_reason(reason, &len))
		return TCPCHAT_EINVAL;
	return post(srv, CMD_KICK, name, id, reason, len);
}

TCPCHAT_API int tcpchat_server_kick(tcpchat_server *srv, const char *name,
                                    const char *reason)
{
	if (!srv || !name)
		return TCPCHAT_EINVAL;
	return kick(srv, name, 0, reason);
}

TCPCHAT_API int tcpchat_server_kick_id(tcpchat_server *srv, uint64_t conn_id,
                                       const char *reason)
{
	if (!srv || !conn_id)
		return TCPCHAT_EINVAL;
	return kick(srv, NULL, conn_id, reason);
}

TCPCHAT_API int tcpchat_server_accept(tcpchat_server *srv, uint64_t conn_id)
{
	if (!srv || !conn_id)
		return TCPCHAT_EINVAL;
	return post(srv, CMD_ACCEPT, NULL, conn_id, NULL, 0);
}

TCPCHAT_API int tcpchat_server_refuse(tcpchat_server *srv, uint64_t conn_id,
                                      const char *reason)
{
	if (!srv || !conn_id)
		return TCPCHAT_EINVAL;
	size_t len = 0;
	if (reason && *reason && check_reason(reason, &len))
		return TCPCHAT_EINVAL;
	return post(srv, CMD_REFUSE, NULL, conn_id, reason, len);
}

TCPCHAT_API int tcpchat_server_broadcast_room(tcpchat_server *srv,
                                              const char *room,
                                              const char *text, size_t len)
{
	if (!srv || !room)
		return TCPCHAT_EINVAL;
	int rc = check_text(srv, text, len);
	return rc ? rc
	          : post_room(srv, CMD_ROOM_BROADCAST, NULL, 0, room, text,
	                      len);
}

TCPCHAT_API int tcpchat_server_room_join(tcpchat_server *srv, const char *name,
                                         const char *room)
{
	if (!srv || !name || !room)
		return TCPCHAT_EINVAL;
	return post_room(srv, CMD_ROOM_JOIN, name, 0, room, NULL, 0);
}

/* A command on the user name in room with an optional reason: a forced
 * part, a ban or an unban (named: name must pass tcpchat_name_check). */
static int post_member(tcpchat_server *srv, int type, const char *name,
                       const char *room, const char *reason, int named)
{
	if (!srv || !name || !room ||
	    (named && tcpchat_name_check(name, strlen(name)) != 0))
		return TCPCHAT_EINVAL;
	size_t len = 0;
	if (reason && *reason && check_reason(reason, &len))
		return TCPCHAT_EINVAL;
	return post_room(srv, type, name, 0, room, reason, len);
}

TCPCHAT_API int tcpchat_server_room_part(tcpchat_server *srv, const char *name,
                                         const char *room, const char *reason)
{
	return post_member(srv, CMD_ROOM_PART, name, room, reason, 0);
}

TCPCHAT_API int tcpchat_server_set_topic(tcpchat_server *srv, const char *room,
                                         const char *topic)
{
	if (!srv || !room)
		return TCPCHAT_EINVAL;
	size_t len = topic ? strlen(topic) : 0;
	if (len > TCPCHAT_TOPIC_MAX)
		return TCPCHAT_EMSGSIZE;
	if (len && !util__text_ok(topic, len))
		return TCPCHAT_EINVAL;
	return post_room(srv, CMD_TOPIC, NULL, 0, room, topic, len);
}

TCPCHAT_API int tcpchat_server_room_ban(tcpchat_server *srv, const char *room,
                                        const char *name, const char *reason)
{
	return post_member(srv, CMD_ROOM_BAN, name, room, reason, 1);
}

TCPCHAT_API int tcpchat_server_room_unban(tcpchat_server *srv, const char *room,
                                          const char *name)
{
	return post_member(srv, CMD_ROOM_UNBAN, name, room, NULL, 1);
}

static struct sconn *target(tcpchat_server *srv, const struct cmd *c)
{
	struct sconn *sc =
	        c->conn_id ? srv__id_find(srv, c->conn_id)
	                   : srv__name_find(srv, c->name, strlen(c->name));
	if (sc && c->type != CMD_ACCEPT && c->type != CMD_REFUSE &&
	    sc->state != S_JOINED)
		sc = NULL; /* only joined users receive or get kicked */
	if (!sc) {
		static const char *const what[] = {
		        "broadcast", "send",      "kick",      "accept",
		        "refuse",    "broadcast", "room join", "room part"};
		if (c->conn_id)
			srv__log(srv, TCPCHAT_LOG_INFO,
			         "%s: no connection %llu", what[c->type],
			         (unsigned long long)c->conn_id);
		else
			srv__log(srv, TCPCHAT_LOG_INFO, "%s: no user called %s",
			         what[c->type], c->name);
	}
	return sc;
}

/* A forced join or part: protocol-1 users stay in the default room. */
static void run_room_command(tcpchat_server *srv, const struct cmd *c,
                             struct sconn *to)
{
	const char *what = c->type == CMD_ROOM_JOIN ? "join" : "part";
	if (to->proto < 2) {
		srv__log(srv, TCPCHAT_LOG_INFO,
		         "room %s: %s speaks protocol 1 (default room only)",
		         what, to->name);
		return;
	}
	size_t rlen = strlen(c->room);
	if (c->type == CMD_ROOM_JOIN) {
		int rc = srv__join_room(srv, to, c->room, rlen, JOIN_FORCED,
		                        NULL);
		if (rc)
			srv__log(srv, TCPCHAT_LOG_INFO,
			         "room join: %s to %s: %s", to->name, c->room,
			         tcpchat_strerror(rc));
		return;
	}
	struct room *r = srv__room_find(srv, c->room, rlen);
	struct member *mb = r ? srv__member_of(to, r) : NULL;
	if (!mb) {
		srv__log(srv, TCPCHAT_LOG_INFO, "room part: %s is not in %s",
		         to->name, c->room);
		return;
	}
	srv__part_room(srv, mb, TCPCHAT_REASON_KICKED, c->text, c->len);
}

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
		srv__fanout(srv, &m, NULL);
		return;
	}
	if (c->type == CMD_ROOM_BROADCAST || c->type == CMD_TOPIC) {
		struct room *r = srv__room_find(srv, c->room, strlen(c->room));
		if (!r) {
			srv__log(srv, TCPCHAT_LOG_INFO, "%s: no room called %s",
			         c->type == CMD_TOPIC ? "topic" : "broadcast",
			         c->room);
			return;
		}
		m.id = ++srv->next_msg_id;
		if (c->type == CMD_ROOM_BROADCAST) {
			tcpchat_str noref = {NULL, 0};
			srv__room_post(srv, r, &m, NULL, noref);
			return;
		}
		srv__room_stamp(srv, r, &m);
		{
			m.type = TCPCHAT_MSG_TOPIC;
			if (srv__room_set_topic(r, &m) != 0) {
				srv__log(srv, TCPCHAT_LOG_ERROR,
				         "topic: out of memory");
				return;
			}
			srv__durable_topic(srv, r);
			m.body.ptr = r->topic;
		}
		srv__fanout_room(srv, r, &m, NULL);
		return;
	}
	if (c->type == CMD_ROOM_BAN || c->type == CMD_ROOM_UNBAN) {
		srv__ban_command(srv, c->type == CMD_ROOM_UNBAN, c->room,
		                 c->name, c->text, c->len);
		return;
	}
	struct sconn *to = target(srv, c);
	if (!to)
		return;
	switch (c->type) {
	case CMD_SEND_TO: {
		m.id = ++srv->next_msg_id;
		struct frame *f = srv__encode(srv, to->c.codec, &m);
		if (f) {
			srv__deliver(srv, to, f);
			frame__unref(f);
		} else {
			srv->st.dropped++;
			srv__log(srv, TCPCHAT_LOG_ERROR,
			         "send: cannot encode the message");
		}
		break;
	}
	case CMD_KICK:
		srv__log(srv, TCPCHAT_LOG_INFO, "kicking %s: %s", to->name,
		         c->text);
		srv__fail(to, TCPCHAT_REASON_KICKED, TCPCHAT_EKICKED, c->text);
		break;
	case CMD_ACCEPT:
		srv__decide(srv, to, 1, NULL);
		break;
	case CMD_REFUSE:
		srv__decide(srv, to, 0, c->len ? c->text : NULL);
		break;
	case CMD_ROOM_JOIN:
	case CMD_ROOM_PART:
		run_room_command(srv, c, to);
		break;
	}
}

void srv__run_commands(tcpchat_server *srv)
{
	struct loop_cmd *n = loop__take(&srv->loop);
	while (n) {
		struct loop_cmd *next = n->next;
		run_command(srv, (struct cmd *)n);
		free(n);
		n = next;
	}
}

void srv__free_commands(tcpchat_server *srv)
{
	struct loop_cmd *n = loop__take(&srv->loop);
	while (n) {
		struct loop_cmd *next = n->next;
		free(n);
		n = next;
	}
}
