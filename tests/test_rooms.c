/* Integration tests of protocol 2 rooms over loopback: membership, join
 * and part confirmations, room text, the current room, topics, the room
 * list, WHO for a room, the room limits, presence announcements and
 * ANNOUNCE_MAX, the room events of the handler, the room actions and
 * queries of the server API, a server without a default room, and
 * hostile room names and targets on every codec. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "roomutil.h"

/* ---- a recording handler ------------------------------------------------ */

enum { EV_CAP = 512 };

struct ev {
	int type, reason, protocol;
	uint64_t conn_id;
	char name[TCPCHAT_NAME_MAX + 1];
	char room[128];
	char text[512];
};

struct qroom {
	char name[128];
	char topic[512];
	uint64_t members;
	int is_default;
};

struct rec {
	pthread_mutex_t mu;
	struct ev ev[EV_CAP];
	int n;
	/* decisions */
	const char *refuse_room, *refuse_reason; /* ROOM_JOIN refused */
	const char *defer_room; /* the next ROOM_JOIN of it is deferred */
	uint64_t deferred;      /* conn of the deferred ROOM_JOIN */
	const char *veto_topic; /* TOPIC containing this is refused */
	/* queries, made when a MESSAGE says "query" */
	int queried;
	long nrooms, nrooms_stop, rooms_calls_stop;
	struct qroom rooms[16];
	int rooms_seen;
	long nmembers, members_nope, members_null;
	char members[16][TCPCHAT_NAME_MAX + 1];
	uint64_t member_ids[16];
	int members_seen;
};

static int on_room(const tcpchat_room_info *info, void *ud)
{
	struct rec *r = ud;
	if (r->rooms_seen < 16) {
		struct qroom *q = &r->rooms[r->rooms_seen];
		ru_copy_view(q->name, sizeof q->name, info->name);
		ru_copy_view(q->topic, sizeof q->topic, info->topic);
		q->members = info->members;
		q->is_default = info->is_default;
	}
	r->rooms_seen++;
	return 0;
}

static int on_room_stop(const tcpchat_room_info *info, void *ud)
{
	struct rec *r = ud;
	(void)info;
	r->rooms_calls_stop++;
	return 1;
}

static int on_member(tcpchat_str name, uint64_t conn_id, void *ud)
{
	struct rec *r = ud;
	if (r->members_seen < 16) {
		ru_copy_view(r->members[r->members_seen], sizeof r->members[0],
		             name);
		r->member_ids[r->members_seen] = conn_id;
	}
	r->members_seen++;
	return 0;
}

static int contains(tcpchat_str s, const char *what)
{
	size_t k = strlen(what);
	for (size_t i = 0; k <= s.len && i + k <= s.len; i++)
		if (memcmp(s.ptr + i, what, k) == 0)
			return 1;
	return 0;
}

static int view_is(tcpchat_str s, const char *what)
{
	return what && s.len == strlen(what) && memcmp(s.ptr, what, s.len) == 0;
}

static int on_event(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct rec *r = ud;
	int verdict = TCPCHAT_ACCEPT;
	if (ev->type == TCPCHAT_SEV_LOG)
		return 0;
	pthread_mutex_lock(&r->mu);
	if (r->n < EV_CAP) {
		struct ev *e = &r->ev[r->n++];
		memset(e, 0, sizeof *e);
		e->type = ev->type;
		e->reason = ev->reason;
		e->protocol = ev->protocol;
		e->conn_id = ev->conn_id;
		ru_copy_view(e->name, sizeof e->name, ev->name);
		ru_copy_view(e->room, sizeof e->room, ev->room);
		if (ev->msg) {
			ru_copy_view(e->text, sizeof e->text, ev->msg->body);
			if (ev->type == TCPCHAT_SEV_MESSAGE)
				ru_copy_view(e->room, sizeof e->room,
				             ev->msg->room);
		} else if (ev->text) {
			snprintf(e->text, sizeof e->text, "%s", ev->text);
		}
	}
	switch (ev->type) {
	case TCPCHAT_SEV_ROOM_JOIN:
		if (view_is(ev->room, r->refuse_room)) {
			ev->refuse_reason = r->refuse_reason;
			verdict = TCPCHAT_REFUSE;
		} else if (view_is(ev->room, r->defer_room)) {
			r->defer_room = NULL;
			r->deferred = ev->conn_id;
			verdict = TCPCHAT_DEFER;
		}
		break;
	case TCPCHAT_SEV_TOPIC:
		if (r->veto_topic && ev->msg &&
		    contains(ev->msg->body, r->veto_topic)) {
			ev->refuse_reason = "no spam here";
			verdict = TCPCHAT_REFUSE;
		}
		break;
	case TCPCHAT_SEV_MESSAGE:
		if (ev->msg && view_is(ev->msg->body, "query")) {
			r->rooms_seen = 0;
			r->nrooms = tcpchat_server_rooms(srv, on_room, r);
			r->nrooms_stop =
			        tcpchat_server_rooms(srv, on_room_stop, r);
			r->members_seen = 0;
			r->nmembers = tcpchat_server_room_members(srv, "#dev",
			                                          on_member, r);
			r->members_nope = tcpchat_server_room_members(
			        srv, "#nope", on_member, r);
			r->members_null = tcpchat_server_room_members(
			        srv, NULL, on_member, r);
			r->queried = 1;
		}
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&r->mu);
	return verdict;
}

static struct rec *rec_new(void)
{
	struct rec *r = calloc(1, sizeof *r);
	ck_assert_ptr_nonnull(r);
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

static void rec_free(struct rec *r)
{
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* Events of type for name (NULL: any) in room (NULL: any). */
static int rec_count(struct rec *r, int type, const char *name,
                     const char *room)
{
	int k = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n; i++)
		if (r->ev[i].type == type && ru_str_is(r->ev[i].name, name) &&
		    ru_str_is(r->ev[i].room, room))
			k++;
	pthread_mutex_unlock(&r->mu);
	return k;
}

/* The last event of type for name in room; 0 if there is none. */
static int rec_last(struct rec *r, int type, const char *name, const char *room,
                    struct ev *out)
{
	int found = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n; i++)
		if (r->ev[i].type == type && ru_str_is(r->ev[i].name, name) &&
		    ru_str_is(r->ev[i].room, room)) {
			*out = r->ev[i];
			found = 1;
		}
	pthread_mutex_unlock(&r->mu);
	return found;
}

struct rec_cond {
	struct rec *r;
	int type, want;
	const char *name, *room;
};

static int rec_reached(void *arg)
{
	struct rec_cond *c = arg;
	return rec_count(c->r, c->type, c->name, c->room) >= c->want;
}

static int rec_wait(struct rec *r, int type, const char *name, const char *room,
                    int want_n)
{
	struct rec_cond c = {r, type, want_n, name, room};
	return tu_wait_until(rec_reached, &c, TU_TIMEOUT);
}

static uint64_t rec_deferred(struct rec *r)
{
	pthread_mutex_lock(&r->mu);
	uint64_t id = r->deferred;
	pthread_mutex_unlock(&r->mu);
	return id;
}

static int deferred_set(void *arg)
{
	return rec_deferred(arg) != 0;
}

static tcpchat_server *rec_server(struct rec *r, int *port)
{
	tcpchat_server *srv = ru_server_new(port);
	tcpchat_server_set_handler(srv, on_event, r);
	return srv;
}

/* ---- the default room and the handshake ------------------------------- */

START_TEST(welcome_names_the_default_room)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b;
	struct tu_msg w, m;
	ck_assert_int_eq(tu_peer_login(&a, port, tcpchat_codec_binary(),
	                               "alice", 2, TU_CAPS2, &w),
	                 0);
	ck_assert_uint_eq(w.code, 2);
	ck_assert_str_eq(w.room, "#lobby");
	ck_assert_uint_eq(w.caps & TU_CAPS2, TU_CAPS2);
	ck_assert_int_gt(w.timestamp, 1600000000000LL);
	ck_assert_int_eq(tu_peer_login(&b, port, tcpchat_codec_binary(), "bob",
	                               2, TU_CAPS2, &w),
	                 0);
	ck_assert_str_eq(w.room, "#lobby");
	/* the login is a JOIN of the default room to its members */
	ru_want(&a, TCPCHAT_MSG_JOIN, "bob", "#lobby", &m);
	ck_assert_uint_eq(m.code, 2);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM,
	                  TCPCHAT_MSGF_DEFAULT_ROOM);
	ck_assert_uint_gt(m.id, 0);
	ck_assert_int_gt(m.timestamp, 1600000000000LL);
	/* ... but not to the joiner: its WELCOME says it.  No topic is
	 * set, so nothing follows the WELCOME. */
	ru_mark(srv, "m1");
	ck_assert_int_eq(ru_upto(&b, "m1"), 0);
	ck_assert_int_eq(ru_upto(&a, "m1"), 0);
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(default_room_can_be_renamed)
{
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	ck_assert_int_eq(tcpchat_server_set_default_room(srv, "main"),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(tcpchat_server_set_default_room(srv, "#a b"),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(tcpchat_server_set_default_room(srv, "#main"), 0);
	ru_server_go(srv);
	struct tu_peer a, b;
	struct tu_msg w, m;
	ck_assert_int_eq(tu_peer_login(&a, port, tcpchat_codec_binary(),
	                               "alice", 2, TU_CAPS2, &w),
	                 0);
	ck_assert_str_eq(w.room, "#main");
	ru_login_bin(&b, port, "bob");
	ru_want(&a, TCPCHAT_MSG_JOIN, "bob", "#main", &m);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM,
	                  TCPCHAT_MSGF_DEFAULT_ROOM);
	ck_assert_int_eq(tu_peer_send_text(&b, "hi"), 0);
	ru_want(&a, TCPCHAT_MSG_TEXT, "bob", "#main", &m);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM,
	                  TCPCHAT_MSGF_DEFAULT_ROOM);
	/* #lobby is an ordinary room here */
	ru_send_join(&a, "#lobby");
	ru_want(&a, TCPCHAT_MSG_JOIN, "alice", "#lobby", &m);
	ck_assert_uint_eq(m.code, 1);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, 0);
	ru_send_room(&b, "#lobby", "x");
	ru_want_error(&b, TCPCHAT_WIRE_NOTMEMBER, NULL);
	tu_peer_close(&a);
	tu_peer_close(&b);
	tcpchat_server_stop(srv);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	/* stopped, nobody connected: it may change again */
	ck_assert_int_eq(tcpchat_server_set_default_room(srv, "#other"), 0);
	tcpchat_server_destroy(srv);
}
END_TEST

START_TEST(protocol_versions_in_the_handshake)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	struct tu_msg w;
	/* a newer client: the server speaks 2 */
	ck_assert_int_eq(tu_peer_login(&p, port, tcpchat_codec_binary(),
	                               "newer", 3, TU_CAPS2, &w),
	                 0);
	ck_assert_uint_eq(w.code, 2);
	ck_assert_str_eq(w.room, "#lobby");
	tu_peer_close(&p);
	/* protocol 2 without capabilities (as the line codec) */
	ck_assert_int_eq(tu_peer_login(&p, port, tcpchat_codec_binary(),
	                               "plain", 2, 0, &w),
	                 0);
	ck_assert_uint_eq(w.code, 2);
	ck_assert_str_eq(w.room, "#lobby");
	tu_peer_close(&p);
	/* protocol 1 */
	ck_assert_int_eq(tu_peer_login(&p, port, tcpchat_codec_binary(),
	                               "older", 1, 0, &w),
	                 0);
	ck_assert_uint_eq(w.code, 1);
	ck_assert_str_eq(w.room, "");
	tu_peer_close(&p);
	/* there is no protocol 0 */
	ck_assert_int_eq(tu_peer_login(&p, port, tcpchat_codec_binary(),
	                               "oldest", 0, TCPCHAT_CAP_BASE, &w),
	                 TCPCHAT_EVERSION);
	ck_assert_uint_eq(w.flags & TCPCHAT_MSGF_CLOSING, TCPCHAT_MSGF_CLOSING);
	ck_assert_int_eq(tu_peer_wait_closed(&p, TU_TIMEOUT), 1);
	tu_peer_close(&p);
	tu_server_stop(srv);
}
END_TEST

/* ---- membership -------------------------------------------------------- */

START_TEST(join_and_part_are_confirmed_to_members)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");

	ru_send_join(&a, "#dev");
	ru_want(&a, TCPCHAT_MSG_JOIN, "alice", "#dev", &m);
	ck_assert_uint_eq(m.code, 1);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, 0);
	ck_assert_uint_gt(m.id, 0);
	ru_send_join(&b, "#dev");
	ru_want(&b, TCPCHAT_MSG_JOIN, "bob", "#dev", &m);
	ck_assert_uint_eq(m.code, 2);
	ru_want(&a, TCPCHAT_MSG_JOIN, "bob", "#dev", &m);
	ck_assert_uint_eq(m.code, 2);

	/* joining again is no error: the JOIN again to the joiner alone
	 * (the members were told once), the count unchanged, and not the
	 * topic; the same for a forced join of a member */
	ru_send_topic(&a, "#dev", "dev topic");
	ru_want(&b, TCPCHAT_MSG_TOPIC, "alice", "#dev", &m);
	ru_send_join(&b, "#dev");
	ru_want(&b, TCPCHAT_MSG_JOIN, "bob", "#dev", &m);
	ck_assert_uint_eq(m.code, 2);
	ck_assert_int_eq(tcpchat_server_room_join(srv, "bob", "#dev"), 0);
	ru_mark(srv, "rejoined");
	int n = ru_upto(&a, "rejoined");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_JOIN, "bob", "#dev"), 0);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_ERROR, NULL, NULL), 0);
	n = ru_upto(&b, "rejoined");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_ERROR, NULL, NULL), 0);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TOPIC, NULL, NULL), 0);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_JOIN, "bob", "#dev"), 1);

	/* a part with a room and code 0 is a part, not a quit */
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_LEAVE, 0, "#dev", NULL, "lunch"),
	        0);
	ru_want(&a, TCPCHAT_MSG_LEAVE, "alice", "#dev", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
	ck_assert_str_eq(m.body, "lunch");
	ck_assert_uint_gt(m.id, 0);
	ru_want(&b, TCPCHAT_MSG_LEAVE, "alice", "#dev", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
	ck_assert_str_eq(m.body, "lunch");

	/* alice is still connected and in the default room */
	ru_send_room(&a, "#lobby", "back");
	ru_want(&c, TCPCHAT_MSG_TEXT, "alice", "#lobby", &m);
	ck_assert_str_eq(m.body, "back");
	ru_want(&b, TCPCHAT_MSG_TEXT, "alice", "#lobby", &m);

	/* LEAVE code PART without a room parts the current room: bob's is
	 * #dev, the room of his last JOIN */
	ck_assert_int_eq(tu_peer_send(&b, TCPCHAT_MSG_LEAVE,
	                              TCPCHAT_REASON_PART, NULL, NULL, NULL),
	                 0);
	ru_want(&b, TCPCHAT_MSG_LEAVE, "bob", "#dev", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
	ru_still_here(&b);

	/* carol, in no room of theirs, saw none of it */
	ru_mark(srv, "end");
	n = ru_upto(&c, "end");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_JOIN, NULL, "#dev"), 0);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_LEAVE, NULL, NULL), 0);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

START_TEST(room_text_reaches_members_only)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	ru_join(&a, "alice", "#dev");
	ru_join(&b, "bob", "#dev");
	ru_send_room(&a, "#dev", "hi dev");
	ru_want(&b, TCPCHAT_MSG_TEXT, "alice", "#dev", &m);
	ck_assert_str_eq(m.body, "hi dev");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, 0);
	ck_assert_str_eq(m.target, "");
	ck_assert_uint_gt(m.id, 0);
	ck_assert_int_gt(m.timestamp, 1600000000000LL);
	uint64_t first = m.id;
	/* the default room, named */
	ru_send_room(&a, "#lobby", "hi all");
	ru_want(&b, TCPCHAT_MSG_TEXT, "alice", "#lobby", &m);
	ck_assert_str_eq(m.body, "hi all");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM,
	                  TCPCHAT_MSGF_DEFAULT_ROOM);
	ck_assert_uint_gt(m.id, first);
	ru_want(&c, TCPCHAT_MSG_TEXT, "alice", "#lobby", &m);
	ck_assert_str_eq(m.body, "hi all");
	ru_mark(srv, "m");
	/* no echo to the sender, nothing of #dev for carol */
	int n = ru_upto(&a, "m");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);
	n = ru_upto(&c, "m");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

START_TEST(non_member_text_is_refused_and_the_connection_stays)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, c;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&c, port, "carol");
	ru_join(&a, "alice", "#dev");
	ru_send_room(&c, "#dev", "intrude");
	ru_want_error(&c, TCPCHAT_WIRE_NOTMEMBER, NULL);
	ru_send_room(&c, "#nowhere", "anyone?");
	ru_want_error(&c, TCPCHAT_WIRE_NOTMEMBER, NULL);
	/* carol is still in */
	ck_assert_int_eq(tu_peer_send_text(&c, "still here"), 0);
	ru_want(&a, TCPCHAT_MSG_TEXT, "carol", "#lobby", &m);
	ck_assert_str_eq(m.body, "still here");
	ru_mark(srv, "m");
	int n = ru_upto(&a, "m");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);
	RU_FINISH(srv, &a, &c);
}
END_TEST

/* Checks the TEXT messages from sender among the first n of ru_seen[]:
 * want is "body@room body@room ...". */
static void texts_are(int n, const char *sender, const char *want_list)
{
	char got[1024] = "";
	for (int i = 0; i < n && i < RU_SEEN_MAX; i++) {
		if (ru_seen[i].type != TCPCHAT_MSG_TEXT ||
		    strcmp(ru_seen[i].sender, sender) != 0)
			continue;
		size_t k = strlen(got);
		snprintf(got + k, sizeof got - k, "%s%s@%s", k ? " " : "",
		         ru_seen[i].body, ru_seen[i].room);
	}
	ck_assert_str_eq(got, want_list);
}

START_TEST(current_room_rule)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	ru_join(&b, "bob", "#dev");
	ru_join(&c, "carol", "#y");
	ru_mark(srv, "start");
	ru_upto(&b, "start");
	ru_upto(&c, "start");

	/* at login: the default room */
	ck_assert_int_eq(tu_peer_send_text(&a, "one"), 0);
	/* then the room of the last JOIN alice asked for */
	ru_join(&a, "alice", "#dev");
	ck_assert_int_eq(tu_peer_send_text(&a, "two"), 0);
	/* a forced join does not change it */
	ck_assert_int_eq(tcpchat_server_room_join(srv, "alice", "#ops"), 0);
	ru_want(&a, TCPCHAT_MSG_JOIN, "alice", "#ops", &m);
	ck_assert_uint_eq(m.code, 1);
	ck_assert_int_eq(tu_peer_send_text(&a, "three"), 0);
	/* parting the current room falls back to the default room */
	ru_join(&a, "alice", "#x");
	ru_part(&a, "alice", "#x", NULL);
	ck_assert_int_eq(tu_peer_send_text(&a, "four"), 0);
	/* parting the default room while in #y keeps #y current */
	ru_join(&a, "alice", "#y");
	ru_part(&a, "alice", "#lobby", "bye lobby");
	ck_assert_int_eq(tu_peer_send_text(&a, "five"), 0);
	/* parting the current room, not in the default room: no room */
	ck_assert_int_eq(tu_peer_send(&a, TCPCHAT_MSG_LEAVE,
	                              TCPCHAT_REASON_PART, NULL, NULL, NULL),
	                 0);
	ru_want(&a, TCPCHAT_MSG_LEAVE, "alice", "#y", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
	ck_assert_int_eq(tu_peer_send_text(&a, "six"), 0);
	ru_want_error(&a, TCPCHAT_WIRE_NOTMEMBER, NULL);
	/* still connected, still in #dev */
	ru_send_room(&a, "#dev", "seven");
	ru_still_here(&a);

	ru_mark(srv, "end");
	/* bob got the #dev and #lobby ones; carol the #lobby and #y ones */
	int n = ru_upto(&b, "end");
	texts_are(n, "alice",
	          "one@#lobby two@#dev three@#dev four@#lobby seven@#dev");
	n = ru_upto(&c, "end");
	texts_are(n, "alice", "one@#lobby four@#lobby five@#y");
	n = ru_upto(&a, "end");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, "alice", NULL), 0);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_ERROR, NULL, NULL), 0);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

/* ---- topics --------------------------------------------------------------- */

START_TEST(topics)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c, d, e, f;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	ru_join(&a, "alice", "#dev");
	ru_join(&b, "bob", "#dev");

	/* set: to every member, with who set it */
	ru_send_topic(&a, "#dev", "release on friday");
	ru_want(&a, TCPCHAT_MSG_TOPIC, "alice", "#dev", &m);
	ck_assert_str_eq(m.body, "release on friday");
	ck_assert_int_gt(m.timestamp, 1600000000000LL);
	int64_t set_at = m.timestamp;
	ru_want(&b, TCPCHAT_MSG_TOPIC, "alice", "#dev", &m);
	ck_assert_str_eq(m.body, "release on friday");
	ru_mark(srv, "set");
	int n = ru_upto(&c, "set");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TOPIC, NULL, NULL), 0);

	/* not a member: refused, the connection stays */
	ru_send_topic(&c, "#dev", "hijacked");
	ru_want_error(&c, TCPCHAT_WIRE_NOTMEMBER, NULL);
	ru_send_topic(&c, "#ghost", "boo");
	ru_want_error_or(&c, TCPCHAT_WIRE_NOTMEMBER, TCPCHAT_WIRE_NOTFOUND,
	                 NULL);
	ru_still_here(&c);

	/* shown to a joiner right after its confirmation */
	ru_login_bin(&d, port, "dave");
	ru_send_join(&d, "#dev");
	ru_want(&d, TCPCHAT_MSG_JOIN, "dave", "#dev", &m);
	ck_assert_int_eq(tu_peer_recv(&d, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_TOPIC);
	ck_assert_str_eq(m.room, "#dev");
	ck_assert_str_eq(m.body, "release on friday");
	ck_assert_str_eq(m.sender, "alice");
	ck_assert_int_eq(m.timestamp, set_at);

	/* too long, not text: refused, topic unchanged */
	char big[TCPCHAT_TOPIC_MAX + 2];
	memset(big, 'x', TCPCHAT_TOPIC_MAX + 1);
	big[TCPCHAT_TOPIC_MAX + 1] = '\0';
	ru_send_topic(&a, "#dev", big);
	ru_want_error_or(&a, TCPCHAT_WIRE_BADMSG, TCPCHAT_WIRE_MSGSIZE, NULL);
	ru_send_topic(&a, "#dev", "bell\atopic");
	ru_want_error(&a, TCPCHAT_WIRE_BADMSG, NULL);
	ru_send_topic(&a, "#dev", "line\nbreak");
	ru_want_error(&a, TCPCHAT_WIRE_BADMSG, NULL);
	ru_send_topic(&a, "#dev", "bad \xff utf-8");
	ru_want_error(&a, TCPCHAT_WIRE_BADMSG, NULL);
	ru_still_here(&a);

	/* in the list */
	ck_assert_int_eq(
	        tu_peer_send(&c, TCPCHAT_MSG_ROOMS, 0, NULL, NULL, NULL), 0);
	ru_want(&c, TCPCHAT_MSG_ROOMS, NULL, "#dev", &m);
	ck_assert_uint_eq(m.code, 3);
	ck_assert_str_eq(m.body, "release on friday");
	ru_want(&c, TCPCHAT_MSG_ROOMS, NULL, "", &m);

	/* exactly TCPCHAT_TOPIC_MAX bytes is fine */
	big[TCPCHAT_TOPIC_MAX] = '\0';
	ru_send_topic(&b, "#dev", big);
	ru_want(&a, TCPCHAT_MSG_TOPIC, "bob", "#dev", &m);
	ck_assert_uint_eq(m.body_len, TCPCHAT_TOPIC_MAX);

	/* cleared: every member hears it, joiners get no TOPIC */
	ru_send_topic(&a, "#dev", "");
	ru_want(&b, TCPCHAT_MSG_TOPIC, "alice", "#dev", &m);
	ck_assert_uint_eq(m.body_len, 0);
	ru_want(&d, TCPCHAT_MSG_TOPIC, "alice", "#dev", &m);
	ck_assert_uint_eq(m.body_len, 0);
	ru_login_bin(&e, port, "erin");
	ru_join(&e, "erin", "#dev");
	ru_mark(srv, "erin");
	n = ru_upto(&e, "erin");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TOPIC, NULL, NULL), 0);
	ck_assert_int_eq(
	        tu_peer_send(&e, TCPCHAT_MSG_ROOMS, 0, NULL, NULL, NULL), 0);
	ru_want(&e, TCPCHAT_MSG_ROOMS, NULL, "#dev", &m);
	ck_assert_uint_eq(m.body_len, 0);

	/* the default room's topic follows the WELCOME */
	ru_send_topic(&c, "#lobby", "welcome all");
	ru_want(&a, TCPCHAT_MSG_TOPIC, "carol", "#lobby", &m);
	ck_assert_str_eq(m.body, "welcome all");
	ck_assert_int_eq(tu_peer_login(&f, port, tcpchat_codec_binary(),
	                               "frank", 2, TU_CAPS2, &m),
	                 0);
	ck_assert_int_eq(tu_peer_recv(&f, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_TOPIC);
	ck_assert_str_eq(m.room, "#lobby");
	ck_assert_str_eq(m.body, "welcome all");

	ru_mark(srv, "end");
	n = ru_upto(&c, "end");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TOPIC, NULL, "#dev"), 0);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TOPIC, NULL, "#lobby"),
	                 1);
	RU_FINISH(srv, &a, &b, &c, &d, &e, &f);
}
END_TEST

/* ---- the room list --------------------------------------------------------- */

static void send_rooms(struct tu_peer *p)
{
	ck_assert_int_eq(
	        tu_peer_send(p, TCPCHAT_MSG_ROOMS, 0, NULL, NULL, NULL), 0);
}

/* The next ROOMS entry must be room with count members and topic. */
static void want_entry(struct tu_peer *p, const char *room, uint32_t count,
                       const char *topic, uint32_t flags)
{
	struct tu_msg m;
	ru_want(p, TCPCHAT_MSG_ROOMS, NULL, NULL, &m);
	ck_assert_str_eq(m.room, room);
	ck_assert_uint_eq(m.code, count);
	ck_assert_str_eq(m.body, topic);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, flags);
}

START_TEST(room_list)
{
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_start_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c, l, j;
	struct tu_msg m;
	ru_login_bin(&a, ports.bin, "alice");
	ru_login_bin(&b, ports.bin, "bob");
	ru_login_line(&l, ports.line, "lina");
	ck_assert_int_eq(tu_peer_login(&j, ports.json, tcpchat_codec_json(),
	                               "jay", 2, TU_CAPS2, NULL),
	                 0);
	ru_join(&a, "alice", "#a");
	ru_join(&b, "bob", "#a");
	ru_send_topic(&a, "#a", "topic a");
	ru_want(&b, TCPCHAT_MSG_TOPIC, "alice", "#a", &m);
	ru_join(&b, "bob", "#b");
	ru_login_bin(&c, ports.bin, "carol");

	send_rooms(&c);
	want_entry(&c, "#lobby", 5, "", TCPCHAT_MSGF_DEFAULT_ROOM);
	want_entry(&c, "#a", 2, "topic a", 0);
	want_entry(&c, "#b", 1, "", 0);
	ru_want(&c, TCPCHAT_MSG_ROOMS, NULL, NULL, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_uint_eq(m.code, 3);

	send_rooms(&j);
	want_entry(&j, "#lobby", 5, "", TCPCHAT_MSGF_DEFAULT_ROOM);
	want_entry(&j, "#a", 2, "topic a", 0);
	want_entry(&j, "#b", 1, "", 0);
	ru_want(&j, TCPCHAT_MSG_ROOMS, NULL, NULL, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_uint_eq(m.code, 3);

	/* only the askers got a list */
	ru_mark(srv, "m");
	int n = ru_upto(&a, "m");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_ROOMS, NULL, NULL), 0);

	/* on the line codec */
	ck_assert_int_eq(tu_peer_send_line(&l, "/rooms"), 0);
	ck_assert_int_eq(tu_peer_expect_line(&l, "=== #lobby 5", TU_TIMEOUT),
	                 1);
	ru_next_line(&l, "=== #a 2: topic a");
	ru_next_line(&l, "=== #b 1");
	ru_next_line(&l, "=== 3 rooms");
	RU_FINISH(srv, &a, &b, &c, &l, &j);
}
END_TEST

START_TEST(room_list_stops_at_1000)
{
	enum { ROOMS = 1001, BATCH = 100 };
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	ru_server_option(srv, TCPCHAT_SOPT_USER_ROOMS, ROOMS + 10);
	ru_server_go(srv);
	struct tu_peer a;
	struct tu_msg m;
	char room[16];
	ru_login_bin(&a, port, "alice");
	for (int k = 0; k < ROOMS; k += BATCH) {
		int end = k + BATCH < ROOMS ? k + BATCH : ROOMS;
		for (int i = k; i < end; i++) {
			snprintf(room, sizeof room, "#r%04d", i);
			ru_send_join(&a, room);
		}
		for (int i = k; i < end; i++) {
			snprintf(room, sizeof room, "#r%04d", i);
			ru_want(&a, TCPCHAT_MSG_JOIN, "alice", room, &m);
		}
	}
	send_rooms(&a);
	want_entry(&a, "#lobby", 1, "", TCPCHAT_MSGF_DEFAULT_ROOM);
	for (int i = 0; i < 999; i++) {
		snprintf(room, sizeof room, "#r%04d", i);
		want_entry(&a, room, 1, "", 0);
	}
	/* the 1000 entries are followed by the end, with the full count */
	ck_assert_int_eq(tu_peer_recv(&a, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_ROOMS);
	ck_assert_str_eq(m.room, "");
	ck_assert_uint_eq(m.code, ROOMS + 1);
	ck_assert(ru_wait_stats(srv, 1, ROOMS + 1));
	tu_peer_close(&a);
	tu_server_stop(srv);
}
END_TEST

START_TEST(room_list_is_a_reply_and_always_queued)
{
	enum { ROOMS = 40 };
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	ru_server_option(srv, TCPCHAT_SOPT_QUEUE_FRAMES, 16);
	ru_server_go(srv);
	struct tu_peer a;
	struct tu_msg m;
	char room[16];
	ru_login_bin(&a, port, "alice");
	for (int i = 0; i < ROOMS; i++) {
		snprintf(room, sizeof room, "#q%02d", i);
		ru_join(&a, "alice", room);
	}
	/* tcpchat-protocol(7), LIMITS: replies are always queued */
	send_rooms(&a);
	want_entry(&a, "#lobby", 1, "", TCPCHAT_MSGF_DEFAULT_ROOM);
	for (int i = 0; i < ROOMS; i++) {
		snprintf(room, sizeof room, "#q%02d", i);
		want_entry(&a, room, 1, "", 0);
	}
	ru_want(&a, TCPCHAT_MSG_ROOMS, NULL, "", &m);
	ck_assert_uint_eq(m.code, ROOMS + 1);
	tu_peer_close(&a);
	tu_server_stop(srv);
}
END_TEST

/* ---- WHO for a room -------------------------------------------------------- */

START_TEST(who_lists_a_room_in_join_order)
{
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_start_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c, d, l;
	struct tu_msg m;
	ru_login_bin(&a, ports.bin, "alice");
	ru_login_bin(&b, ports.bin, "bob");
	ru_login_bin(&c, ports.bin, "carol");
	ru_login_bin(&d, ports.bin, "dave");
	ru_login_line(&l, ports.line, "lina");
	ru_join(&c, "carol", "#dev");
	ru_join(&a, "alice", "#dev");
	ru_join(&b, "bob", "#dev");
	/* asked by a non-member */
	ck_assert_int_eq(
	        tu_peer_send(&d, TCPCHAT_MSG_WHO, 0, "#dev", NULL, NULL), 0);
	ru_want(&d, TCPCHAT_MSG_WHO, NULL, NULL, &m);
	ck_assert_str_eq(m.room, "#dev");
	ck_assert_uint_eq(m.code, 3);
	ck_assert_str_eq(m.body, "carol alice bob");
	ru_part(&b, "bob", "#dev", NULL);
	ck_assert_int_eq(
	        tu_peer_send(&d, TCPCHAT_MSG_WHO, 0, "#dev", NULL, NULL), 0);
	ru_want(&d, TCPCHAT_MSG_WHO, NULL, NULL, &m);
	ck_assert_str_eq(m.room, "#dev");
	ck_assert_uint_eq(m.code, 2);
	ck_assert_str_eq(m.body, "carol alice");
	/* the default room, and the whole server */
	ck_assert_int_eq(
	        tu_peer_send(&d, TCPCHAT_MSG_WHO, 0, "#lobby", NULL, NULL), 0);
	ru_want(&d, TCPCHAT_MSG_WHO, NULL, NULL, &m);
	ck_assert_str_eq(m.room, "#lobby");
	ck_assert_uint_eq(m.code, 5);
	ck_assert_str_eq(m.body, "alice bob carol dave lina");
	ck_assert_int_eq(tu_peer_send(&d, TCPCHAT_MSG_WHO, 0, NULL, NULL, NULL),
	                 0);
	ru_want(&d, TCPCHAT_MSG_WHO, NULL, NULL, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_uint_eq(m.code, 5);
	ck_assert_str_eq(m.body, "alice bob carol dave lina");
	/* a room that does not exist */
	ck_assert_int_eq(
	        tu_peer_send(&d, TCPCHAT_MSG_WHO, 0, "#nope", NULL, NULL), 0);
	ru_want_error(&d, TCPCHAT_WIRE_NOTFOUND, NULL);
	ru_still_here(&d);
	/* on the line codec */
	ck_assert_int_eq(tu_peer_send_line(&l, "/who #dev"), 0);
	ck_assert_int_eq(tu_peer_expect_line(&l, "=== 2 in #dev: carol alice",
	                                     TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(tu_peer_send_line(&l, "/who"), 0);
	ck_assert_int_eq(tu_peer_expect_line(
	                         &l, "=== 5 online: alice bob carol dave lina",
	                         TU_TIMEOUT),
	                 1);
	RU_FINISH(srv, &a, &b, &c, &d, &l);
}
END_TEST

START_TEST(who_counts_a_big_room_exactly)
{
	enum { N = 40 };
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p[N];
	struct tu_msg m;
	char name[40], names[N * 40] = "";
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "user%02d", i);
		ru_login_bin(&p[i], port, name);
		ru_join(&p[i], name, "#big");
		snprintf(names + strlen(names), sizeof names - strlen(names),
		         "%s%s", i ? " " : "", name);
	}
	ck_assert_int_eq(
	        tu_peer_send(&p[0], TCPCHAT_MSG_WHO, 0, "#big", NULL, NULL), 0);
	ru_want(&p[0], TCPCHAT_MSG_WHO, NULL, "#big", &m);
	ck_assert_uint_eq(m.code, N);
	ck_assert_str_eq(m.body, names);
	for (int i = 0; i < N; i++)
		tu_peer_close(&p[i]);
	tu_server_stop(srv);
}
END_TEST

/* ---- limits ----------------------------------------------------------------- */

START_TEST(rooms_per_user_limit)
{
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	ru_server_option(srv, TCPCHAT_SOPT_USER_ROOMS,
	                 3); /* the default room too */
	ru_server_go(srv);
	struct tu_peer a;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_join(&a, "alice", "#a");
	ru_join(&a, "alice", "#b");
	ru_send_join(&a, "#c");
	ru_want_error(&a, TCPCHAT_WIRE_LIMIT, NULL);
	/* #c was not made */
	ck_assert_int_eq(tu_peer_send(&a, TCPCHAT_MSG_WHO, 0, "#c", NULL, NULL),
	                 0);
	ru_want_error(&a, TCPCHAT_WIRE_NOTFOUND, NULL);
	/* a room alice is in is no new room */
	ck_assert_uint_eq(ru_join(&a, "alice", "#a"), 1);
	/* nor is a forced join allowed past the limit */
	ck_assert_int_eq(tcpchat_server_room_join(srv, "alice", "#d"), 0);
	ru_mark(srv, "forced");
	int n = ru_upto(&a, "forced");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_JOIN, NULL, NULL), 0);
	ck_assert_int_eq(tu_peer_send(&a, TCPCHAT_MSG_WHO, 0, "#d", NULL, NULL),
	                 0);
	ru_want_error(&a, TCPCHAT_WIRE_NOTFOUND, NULL);
	/* one room parted: one room free */
	ru_part(&a, "alice", "#a", NULL);
	ck_assert_uint_eq(ru_join(&a, "alice", "#c"), 1);
	ru_send_room(&a, "#c", "in c");
	ru_still_here(&a);
	ck_assert(ru_wait_stats(srv, 1, 3));
	tu_peer_close(&a);
	(void)m;
	tu_server_stop(srv);
}
END_TEST

START_TEST(rooms_per_server_limit)
{
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	ru_server_option(srv, TCPCHAT_SOPT_MAX_ROOMS,
	                 3); /* the default room too */
	ru_server_go(srv);
	struct tu_peer a, b;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_join(&a, "alice", "#a");
	ru_join(&a, "alice", "#b");
	ck_assert(ru_wait_stats(srv, 2, 3));
	ru_send_join(&b, "#c");
	ru_want_error(&b, TCPCHAT_WIRE_LIMIT, NULL);
	/* rooms that exist can still be joined */
	ck_assert_uint_eq(ru_join(&b, "bob", "#a"), 2);
	/* once #b is gone, #c can be made */
	ru_part(&a, "alice", "#b", NULL);
	ck_assert(ru_wait_stats(srv, 2, 2));
	ck_assert_uint_eq(ru_join(&b, "bob", "#c"), 1);
	ru_send_join(&a, "#d");
	ru_want_error(&a, TCPCHAT_WIRE_LIMIT, NULL);
	ru_still_here(&a);
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(empty_rooms_disappear)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_join(&a, "alice", "#tmp");
	ru_join(&b, "bob", "#tmp");
	ru_send_topic(&a, "#tmp", "short-lived");
	ru_want(&b, TCPCHAT_MSG_TOPIC, "alice", "#tmp", &m);
	ck_assert(ru_wait_stats(srv, 2, 2));
	ru_part(&a, "alice", "#tmp", NULL);
	ck_assert(ru_wait_stats(srv, 2, 2)); /* bob is still in */
	tu_peer_close(&b);
	ck_assert(ru_wait_stats(srv, 1, 1));
	send_rooms(&a);
	want_entry(&a, "#lobby", 1, "", TCPCHAT_MSGF_DEFAULT_ROOM);
	ru_want(&a, TCPCHAT_MSG_ROOMS, NULL, NULL, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_uint_eq(m.code, 1);
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_WHO, 0, "#tmp", NULL, NULL), 0);
	ru_want_error(&a, TCPCHAT_WIRE_NOTFOUND, NULL);
	/* made again, it is a new room: no topic */
	ck_assert_uint_eq(ru_join(&a, "alice", "#tmp"), 1);
	ru_mark(srv, "m");
	int n = ru_upto(&a, "m");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TOPIC, NULL, NULL), 0);
	ck_assert(ru_wait_stats(srv, 1, 2));
	tu_peer_close(&a);
	tu_server_stop(srv);
}
END_TEST

/* ---- presence: ANNOUNCE_MAX and disconnects ------------------------------- */

START_TEST(announce_max_limits_presence)
{
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	ru_server_option(srv, TCPCHAT_SOPT_ANNOUNCE_MAX, 2);
	ru_server_go(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_want(&a, TCPCHAT_MSG_JOIN, "bob", "#lobby", &m); /* 2 members */
	ru_login_bin(&c, port, "carol"); /* 3: not announced */
	ru_join(&a, "alice", "#big");
	ru_join(&b, "bob", "#big");
	ru_want(&a, TCPCHAT_MSG_JOIN, "bob", "#big", &m);
	ck_assert_uint_eq(m.code, 2);
	/* the third: only the joiner hears it */
	ru_send_join(&c, "#big");
	ru_want(&c, TCPCHAT_MSG_JOIN, "carol", "#big", &m);
	ck_assert_uint_eq(m.code, 3);
	ru_mark(srv, "joined");
	int n = ru_upto(&a, "joined");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_JOIN, "carol", NULL), 0);
	n = ru_upto(&b, "joined");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_JOIN, "carol", NULL), 0);
	ru_upto(&c, "joined");
	/* 3 before the part: only the leaver hears it */
	ru_part(&c, "carol", "#big", "bye");
	/* 2 before the part: announced */
	ru_part(&b, "bob", "#big", NULL);
	ru_want(&a, TCPCHAT_MSG_LEAVE, "bob", "#big", &m);
	ru_mark(srv, "parted");
	n = ru_upto(&a, "parted");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_LEAVE, "carol", NULL), 0);
	n = ru_upto(&b, "parted");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_LEAVE, "carol", NULL), 0);
	RU_FINISH(srv, &a, &b, &c);

	/* 0: never announced, the joiner is still told */
	srv = ru_server_new(&port);
	ru_server_option(srv, TCPCHAT_SOPT_ANNOUNCE_MAX, 0);
	ru_server_go(srv);
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_join(&a, "alice", "#z");
	ck_assert_uint_eq(ru_join(&b, "bob", "#z"), 2);
	ru_part(&b, "bob", "#z", NULL);
	ru_mark(srv, "m");
	n = ru_upto(&a, "m");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_JOIN, NULL, NULL), 0);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_LEAVE, NULL, NULL), 0);
	RU_FINISH(srv, &a, &b);
}
END_TEST

/* alice, bob, carol, dave and eve; alice leaves by closing her
 * connection.  With the default room on, everyone shares it. */
static void leave_once_case(int default_room)
{
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	if (!default_room)
		ck_assert_int_eq(tcpchat_server_set_default_room(srv, NULL), 0);
	ru_server_go(srv);
	struct tu_peer p[5];
	const char *names[5] = {"alice", "bob", "carol", "dave", "eve"};
	for (int i = 0; i < 5; i++)
		ru_login_bin(&p[i], port, names[i]);
	const char *rooms[3] = {"#a", "#b", "#c"};
	for (int r = 0; r < 3; r++) {
		ru_join(&p[0], "alice", rooms[r]);
		ru_join(&p[1], "bob", rooms[r]);
	}
	ru_join(&p[2], "carol", "#b");
	ru_join(&p[3], "dave", "#z");
	/* eve is in no room but the default one, if any */
	tu_peer_close(&p[0]);
	ck_assert(ru_wait_stats(srv, 4, UINT64_MAX));
	ru_mark(srv, "gone");
	for (int i = 1; i < 5; i++) {
		int n = ru_upto(&p[i], "gone");
		int want_n = default_room || i <= 2 ? 1 : 0;
		ck_assert_msg(ru_count_seen(n, TCPCHAT_MSG_LEAVE, "alice",
		                            "") == want_n,
		              "%s got %d LEAVE of alice (default room %d)",
		              names[i],
		              ru_count_seen(n, TCPCHAT_MSG_LEAVE, "alice", ""),
		              default_room);
		/* a disconnect is no part: no LEAVE with a room */
		ck_assert_int_eq(
		        ru_count_seen(n, TCPCHAT_MSG_LEAVE, "alice", NULL),
		        want_n);
		for (int k = 0; k < n && k < RU_SEEN_MAX; k++)
			if (ru_seen[k].type == TCPCHAT_MSG_LEAVE)
				ck_assert_uint_eq(ru_seen[k].code,
				                  TCPCHAT_REASON_CLOSED);
	}
	for (int i = 1; i < 5; i++)
		tu_peer_close(&p[i]);
	tu_server_stop(srv);
}

START_TEST(disconnect_leave_reaches_each_member_once)
{
	leave_once_case(0);
	leave_once_case(1);
}
END_TEST

START_TEST(disconnect_leave_skips_unannounced_rooms)
{
	int port;
	tcpchat_server *srv = ru_server_new(&port);
	ck_assert_int_eq(tcpchat_server_set_default_room(srv, NULL), 0);
	ru_server_option(srv, TCPCHAT_SOPT_ANNOUNCE_MAX, 2);
	ru_server_go(srv);
	struct tu_peer a, b, c, d;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	ru_login_bin(&d, port, "dave");
	ru_join(&a, "alice", "#big");
	ru_join(&b, "bob", "#big");
	ru_join(&c, "carol", "#big"); /* 3 members: not announced */
	ru_join(&a, "alice", "#small");
	ru_join(&d, "dave", "#small");
	tu_peer_close(&a);
	ck_assert(ru_wait_stats(srv, 3, UINT64_MAX));
	ru_mark(srv, "gone");
	int n = ru_upto(&d, "gone");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_LEAVE, "alice", ""), 1);
	n = ru_upto(&b, "gone");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_LEAVE, "alice", NULL), 0);
	n = ru_upto(&c, "gone");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_LEAVE, "alice", NULL), 0);
	RU_FINISH(srv, &b, &c, &d);
}
END_TEST

START_TEST(leaving_the_server)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	ru_join(&b, "bob", "#a");
	ru_join(&c, "carol", "#a");
	/* a LEAVE without a room and without code PART is a quit */
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_LEAVE, 0, NULL, NULL, NULL), 0);
	ru_want(&b, TCPCHAT_MSG_LEAVE, "alice", "", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);
	ck_assert_int_eq(tu_peer_wait_closed(&a, TU_TIMEOUT), 1);
	tu_peer_close(&a);
	/* a kick: one LEAVE for everyone who shares a room */
	ck_assert_int_eq(tcpchat_server_kick(srv, "carol", "be nice"), 0);
	ru_want(&c, TCPCHAT_MSG_ERROR, NULL, NULL, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_KICKED);
	ck_assert_int_eq(tu_peer_wait_closed(&c, TU_TIMEOUT), 1);
	ck_assert(ru_wait_stats(srv, 1, UINT64_MAX));
	ru_mark(srv, "m");
	int n = ru_upto(&b, "m");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_LEAVE, "carol", NULL), 1);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_LEAVE, "carol", ""), 1);
	for (int i = 0; i < n && i < RU_SEEN_MAX; i++)
		if (ru_seen[i].type == TCPCHAT_MSG_LEAVE) {
			ck_assert_uint_eq(ru_seen[i].code,
			                  TCPCHAT_REASON_KICKED);
			ck_assert_str_eq(ru_seen[i].body, "be nice");
		}
	RU_FINISH(srv, &b, &c);
}
END_TEST

START_TEST(rejoining_the_default_room)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_part(&a, "alice", "#lobby", "brb");
	ru_want(&b, TCPCHAT_MSG_LEAVE, "alice", "#lobby", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
	ck_assert_str_eq(m.body, "brb");
	ck_assert_int_eq(tu_peer_send_text(&a, "anyone?"), 0);
	ru_want_error(&a, TCPCHAT_WIRE_NOTMEMBER, NULL);
	ru_send_join(&a, "#lobby");
	ru_want(&a, TCPCHAT_MSG_JOIN, "alice", "#lobby", &m);
	ck_assert_uint_eq(m.code, 2);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM,
	                  TCPCHAT_MSGF_DEFAULT_ROOM);
	ru_want(&b, TCPCHAT_MSG_JOIN, "alice", "#lobby", &m);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM,
	                  TCPCHAT_MSGF_DEFAULT_ROOM);
	ck_assert_int_eq(tu_peer_send_text(&a, "back"), 0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "alice", "#lobby", &m);
	ck_assert_str_eq(m.body, "back");
	RU_FINISH(srv, &a, &b);
}
END_TEST

START_TEST(server_sets_a_topic)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_join(&a, "alice", "#dev");
	ck_assert_int_eq(tcpchat_server_set_topic(srv, "#dev", "from above"),
	                 0);
	ru_want(&a, TCPCHAT_MSG_TOPIC, "", "#dev", &m);
	ck_assert_str_eq(m.body, "from above");
	ru_join(&b, "bob", "#dev");
	ru_want(&b, TCPCHAT_MSG_TOPIC, "", "#dev", &m);
	ck_assert_str_eq(m.body, "from above");
	ck_assert_int_eq(tcpchat_server_set_topic(srv, "#dev", NULL), 0);
	ru_want(&a, TCPCHAT_MSG_TOPIC, "", "#dev", &m);
	ck_assert_uint_eq(m.body_len, 0);
	ru_want(&b, TCPCHAT_MSG_TOPIC, "", "#dev", &m);
	ck_assert_uint_eq(m.body_len, 0);
	ru_login_bin(&c, port, "carol");
	ru_join(&c, "carol", "#dev");
	ru_mark(srv, "m");
	int n = ru_upto(&c, "m");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TOPIC, NULL, NULL), 0);
	/* a room that does not exist is skipped */
	ck_assert_int_eq(tcpchat_server_set_topic(srv, "#none", "x"), 0);
	char big[TCPCHAT_TOPIC_MAX + 2];
	memset(big, 't', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ck_assert_int_eq(tcpchat_server_set_topic(srv, "#dev", big),
	                 TCPCHAT_EMSGSIZE);
	ck_assert_int_eq(tcpchat_server_set_topic(srv, NULL, "x"),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_set_topic(srv, "dev", "x"),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(tcpchat_server_set_topic(srv, "#dev", "a\nb"),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_set_topic(srv, "#dev", "bad \xff"),
	                 TCPCHAT_EINVAL);
	send_rooms(&a);
	ru_want(&a, TCPCHAT_MSG_ROOMS, NULL, "#dev", &m);
	ck_assert_uint_eq(m.body_len, 0);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

/* ---- the handler's room events ------------------------------------------- */

/* A decision from a thread of the application's own. */
struct answer {
	tcpchat_server *srv;
	uint64_t id;
	int accept;
	const char *reason;
	int rc;
};

static void *answer_main(void *arg)
{
	struct answer *a = arg;
	a->rc = a->accept ? tcpchat_server_accept(a->srv, a->id)
	                  : tcpchat_server_refuse(a->srv, a->id, a->reason);
	return NULL;
}

static void answer_from_thread(tcpchat_server *srv, uint64_t id, int accept,
                               const char *reason)
{
	struct answer a = {srv, id, accept, reason, -1};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, answer_main, &a), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(a.rc, 0);
}

START_TEST(room_join_refused_or_deferred_by_the_handler)
{
	struct rec *r = rec_new();
	int port;
	tcpchat_server *srv = rec_server(r, &port);
	r->refuse_room = "#secret";
	r->refuse_reason = "members only";
	ru_server_go(srv);
	struct tu_peer a, b, old;
	struct tu_msg m;
	struct ev e;
	ru_login_bin(&a, port, "alice");
	ck_assert(rec_wait(r, TCPCHAT_SEV_ROOM_JOINED, "alice", "#lobby", 1));
	ck_assert(rec_last(r, TCPCHAT_SEV_JOIN, "alice", NULL, &e));
	ck_assert_int_eq(e.protocol, 2);
	/* the default room at login is the JOIN event, not ROOM_JOIN */
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_ROOM_JOIN, NULL, NULL), 0);
	ck_assert_int_eq(tu_peer_login(&old, port, tcpchat_codec_binary(),
	                               "old", 1, TCPCHAT_CAP_BASE, NULL),
	                 0);
	ck_assert(rec_last(r, TCPCHAT_SEV_JOIN, "old", NULL, &e));
	ck_assert_int_eq(e.protocol, 1);

	/* refused: a non-fatal ERROR with the handler's reason */
	ru_send_join(&a, "#secret");
	ru_want(&a, TCPCHAT_MSG_ERROR, NULL, NULL, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_REFUSED);
	ck_assert_str_eq(m.body, "members only");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_CLOSING, 0);
	ck_assert_int_eq(
	        rec_count(r, TCPCHAT_SEV_ROOM_JOIN, "alice", "#secret"), 1);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_ROOM_JOINED, NULL, "#secret"),
	                 0);
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_WHO, 0, "#secret", NULL, NULL), 0);
	ru_want_error(&a, TCPCHAT_WIRE_NOTFOUND, NULL);

	/* deferred, then accepted from another thread; the text behind
	 * the JOIN waits, then goes to the new current room */
	pthread_mutex_lock(&r->mu);
	r->defer_room = "#vip";
	pthread_mutex_unlock(&r->mu);
	ru_send_join(&a, "#vip");
	ck_assert_int_eq(tu_peer_send_text(&a, "after vip"), 0);
	ck_assert(tu_wait_until(deferred_set, r, TU_TIMEOUT));
	ck_assert_int_eq(tu_peer_recv(&a, &m, tu_ms(50)), 0);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_MESSAGE, "alice", NULL), 0);
	answer_from_thread(srv, rec_deferred(r), 1, NULL);
	ru_want(&a, TCPCHAT_MSG_JOIN, "alice", "#vip", &m);
	ck_assert_uint_eq(m.code, 1);
	ck_assert(rec_wait(r, TCPCHAT_SEV_MESSAGE, "alice", "#vip", 1));
	ck_assert(rec_last(r, TCPCHAT_SEV_MESSAGE, "alice", "#vip", &e));
	ck_assert_str_eq(e.text, "after vip");
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_ROOM_JOINED, "alice", "#vip"),
	                 1);

	/* deferred, then refused from another thread */
	pthread_mutex_lock(&r->mu);
	r->defer_room = "#vip2";
	r->deferred = 0;
	pthread_mutex_unlock(&r->mu);
	ru_login_bin(&b, port, "bob");
	ru_send_join(&b, "#vip2");
	ck_assert(tu_wait_until(deferred_set, r, TU_TIMEOUT));
	answer_from_thread(srv, rec_deferred(r), 0, "not today");
	ru_want(&b, TCPCHAT_MSG_ERROR, NULL, NULL, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_REFUSED);
	ck_assert_str_eq(m.body, "not today");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_CLOSING, 0);
	ru_still_here(&b);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_ROOM_JOINED, NULL, "#vip2"),
	                 0);
	/* a second answer is ignored */
	ck_assert_int_eq(tcpchat_server_accept(srv, rec_deferred(r)), 0);
	ru_still_here(&b);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_ROOM_JOINED, NULL, "#vip2"),
	                 0);
	RU_FINISH(srv, &a, &b, &old);
	rec_free(r);
}
END_TEST

START_TEST(deferred_room_join_of_a_user_who_left)
{
	struct rec *r = rec_new();
	int port;
	tcpchat_server *srv = rec_server(r, &port);
	r->defer_room = "#vip";
	ru_server_go(srv);
	struct tu_peer a, b;
	ru_login_bin(&a, port, "alice");
	ru_send_join(&a, "#vip");
	ck_assert(tu_wait_until(deferred_set, r, TU_TIMEOUT));
	/* alice goes while the application decides (her input waits, so
	 * the server may only notice once it reads again) */
	tu_peer_close(&a);
	answer_from_thread(srv, rec_deferred(r), 1, NULL);
	ck_assert(rec_wait(r, TCPCHAT_SEV_LEAVE, "alice", NULL, 1));
	/* an answer for a connection that is gone is ignored */
	answer_from_thread(srv, rec_deferred(r), 0, "late");
	ru_login_bin(&b, port, "bob");
	ck_assert_uint_eq(ru_join(&b, "bob", "#vip"), 1);
	ck_assert(ru_wait_stats(srv, 1, 2));
	tu_peer_close(&b);
	tu_server_stop(srv);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_LEAVE, "alice", NULL), 1);
	rec_free(r);
}
END_TEST

START_TEST(deferred_room_join_is_checked_again)
{
	struct rec *r = rec_new();
	int port;
	tcpchat_server *srv = rec_server(r, &port);
	ru_server_option(srv, TCPCHAT_SOPT_MAX_ROOMS, 2);
	r->defer_room = "#vip";
	ru_server_go(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	/* the last room is taken while alice's join waits */
	ru_send_join(&a, "#vip");
	ck_assert(tu_wait_until(deferred_set, r, TU_TIMEOUT));
	ru_join(&b, "bob", "#other");
	answer_from_thread(srv, rec_deferred(r), 1, NULL);
	ru_want_error(&a, TCPCHAT_WIRE_LIMIT, NULL);
	ru_still_here(&a);
	ck_assert(ru_wait_stats(srv, 3, 2));
	/* carol is put in the room while her join waits: one membership */
	pthread_mutex_lock(&r->mu);
	r->defer_room = "#other";
	r->deferred = 0;
	pthread_mutex_unlock(&r->mu);
	ru_send_join(&c, "#other");
	ck_assert(tu_wait_until(deferred_set, r, TU_TIMEOUT));
	ck_assert_int_eq(tcpchat_server_room_join(srv, "carol", "#other"), 0);
	ru_want(&c, TCPCHAT_MSG_JOIN, "carol", "#other", &m);
	ck_assert_uint_eq(m.code, 2);
	answer_from_thread(srv, rec_deferred(r), 1, NULL);
	ru_want(&c, TCPCHAT_MSG_JOIN, "carol", "#other", &m);
	ck_assert_uint_eq(m.code, 2);
	ck_assert_int_eq(
	        tu_peer_send(&c, TCPCHAT_MSG_WHO, 0, "#other", NULL, NULL), 0);
	ru_want(&c, TCPCHAT_MSG_WHO, NULL, "#other", &m);
	ck_assert_uint_eq(m.code, 2);
	ck_assert_str_eq(m.body, "bob carol");
	/* and #other is now carol's current room */
	ck_assert_int_eq(tu_peer_send_text(&c, "here"), 0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "carol", "#other", &m);
	ck_assert_str_eq(m.body, "here");
	RU_FINISH(srv, &a, &b, &c);
	rec_free(r);
}
END_TEST

START_TEST(stop_with_rooms_topics_and_pending_decisions)
{
	struct rec *r = rec_new();
	int port;
	tcpchat_server *srv = rec_server(r, &port);
	r->defer_room = "#vip";
	ru_server_go(srv);
	struct tu_peer p[4], k;
	struct tu_msg m;
	const char *names[4] = {"alice", "bob", "carol", "dave"};
	for (int i = 0; i < 4; i++) {
		ru_login_bin(&p[i], port, names[i]);
		ru_join(&p[i], names[i], "#a");
		ru_join(&p[i], names[i], i % 2 ? "#odd" : "#even");
	}
	ru_send_topic(&p[0], "#a", "topic of a");
	ru_want(&p[1], TCPCHAT_MSG_TOPIC, "alice", "#a", &m);
	ru_send_topic(&p[1], "#odd", "topic of odd");
	ru_want(&p[3], TCPCHAT_MSG_TOPIC, "bob", "#odd", &m);
	/* a room join waits for the application; another user is kicked
	 * out of the server, one more waits in its handshake */
	ru_send_join(&p[2], "#vip");
	ck_assert(tu_wait_until(deferred_set, r, TU_TIMEOUT));
	ck_assert_int_eq(tcpchat_server_kick(srv, "dave", NULL), 0);
	ru_want(&p[3], TCPCHAT_MSG_ERROR, NULL, NULL, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_KICKED);
	ck_assert_int_eq(tu_peer_connect(&k, port, tcpchat_codec_binary(), 0),
	                 0);
	ck_assert(ru_wait_stats(srv, 3, 4));
	tu_server_stop(srv);
	for (int i = 0; i < 3; i++) {
		ru_want(&p[i], TCPCHAT_MSG_ERROR, NULL, NULL, &m);
		ck_assert_uint_eq(m.code, TCPCHAT_WIRE_SHUTDOWN);
	}
	for (int i = 0; i < 4; i++)
		tu_peer_close(&p[i]);
	tu_peer_close(&k);
	rec_free(r);
}
END_TEST

START_TEST(room_joined_and_part_events)
{
	struct rec *r = rec_new();
	int port;
	tcpchat_server *srv = rec_server(r, &port);
	ru_server_go(srv);
	struct tu_peer a;
	struct ev e;
	ru_login_bin(&a, port, "alice");
	ck_assert(rec_wait(r, TCPCHAT_SEV_ROOM_JOINED, "alice", "#lobby", 1));
	ru_join(&a, "alice", "#dev");
	ck_assert(rec_wait(r, TCPCHAT_SEV_ROOM_JOINED, "alice", "#dev", 1));
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_ROOM_JOIN, "alice", "#dev"),
	                 1);
	ru_part(&a, "alice", "#dev", "lunch");
	ck_assert(rec_wait(r, TCPCHAT_SEV_ROOM_PART, "alice", "#dev", 1));
	ck_assert(rec_last(r, TCPCHAT_SEV_ROOM_PART, "alice", "#dev", &e));
	ck_assert_int_eq(e.reason, TCPCHAT_REASON_PART);
	ck_assert_str_eq(e.text, "lunch");
	/* forced: no ROOM_JOIN asked, ROOM_JOINED told; KICKED */
	ck_assert_int_eq(tcpchat_server_room_join(srv, "alice", "#ops"), 0);
	ck_assert(rec_wait(r, TCPCHAT_SEV_ROOM_JOINED, "alice", "#ops", 1));
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_ROOM_JOIN, NULL, "#ops"), 0);
	ck_assert_int_eq(
	        tcpchat_server_room_part(srv, "alice", "#ops", "cleanup"), 0);
	ck_assert(rec_wait(r, TCPCHAT_SEV_ROOM_PART, "alice", "#ops", 1));
	ck_assert(rec_last(r, TCPCHAT_SEV_ROOM_PART, "alice", "#ops", &e));
	ck_assert_int_eq(e.reason, TCPCHAT_REASON_KICKED);
	ck_assert_str_eq(e.text, "cleanup");
	/* a disconnect is one LEAVE event, no ROOM_PART */
	ru_join(&a, "alice", "#x");
	ru_join(&a, "alice", "#y");
	int parts = rec_count(r, TCPCHAT_SEV_ROOM_PART, NULL, NULL);
	tu_peer_close(&a);
	ck_assert(rec_wait(r, TCPCHAT_SEV_LEAVE, "alice", NULL, 1));
	ck_assert(ru_wait_stats(srv, 0, UINT64_MAX));
	tu_server_stop(srv);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_LEAVE, "alice", NULL), 1);
	ck_assert_int_eq(rec_count(r, TCPCHAT_SEV_ROOM_PART, NULL, NULL),
	                 parts);
	rec_free(r);
}
END_TEST

START_TEST(topic_vetoed_by_the_handler)
{
	struct rec *r = rec_new();
	int port;
	tcpchat_server *srv = rec_server(r, &port);
	r->veto_topic = "spam";
	ru_server_go(srv);
	struct tu_peer a, b;
	struct tu_msg m;
	struct ev e;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_send_topic(&a, "#lobby", "buy spam");
	ru_want(&a, TCPCHAT_MSG_ERROR, NULL, NULL, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_REFUSED);
	ck_assert_str_eq(m.body, "no spam here");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_CLOSING, 0);
	ck_assert(rec_last(r, TCPCHAT_SEV_TOPIC, "alice", "#lobby", &e));
	ck_assert_str_eq(e.text, "buy spam");
	ru_mark(srv, "vetoed");
	int n = ru_upto(&b, "vetoed");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TOPIC, NULL, NULL), 0);
	ru_send_topic(&a, "#lobby", "ham only");
	ru_want(&b, TCPCHAT_MSG_TOPIC, "alice", "#lobby", &m);
	ck_assert_str_eq(m.body, "ham only");
	/* the list still shows the accepted one */
	send_rooms(&b);
	want_entry(&b, "#lobby", 2, "ham only", TCPCHAT_MSGF_DEFAULT_ROOM);
	RU_FINISH(srv, &a, &b);
	rec_free(r);
}
END_TEST

/* ---- the server's room actions and queries -------------------------------- */

struct actions {
	tcpchat_server *srv;
	int which;
	int rc[4];
};

static void *actions_main(void *arg)
{
	struct actions *x = arg;
	if (x->which == 0) {
		x->rc[0] = tcpchat_server_room_join(x->srv, "alice", "#ops");
		x->rc[1] = tcpchat_server_broadcast_room(
		        x->srv, "#ops", "maintenance at noon", 19);
		x->rc[2] = tcpchat_server_room_part(x->srv, "alice", "#ops",
		                                    "cleanup");
		x->rc[3] = 0;
	} else {
		x->rc[0] = tcpchat_server_room_join(x->srv, "carol", "#other");
		x->rc[1] = tcpchat_server_broadcast_room(x->srv, "#nowhere",
		                                         "lost", 4);
		x->rc[2] = tcpchat_server_room_join(x->srv, "nobody", "#ops");
		x->rc[3] =
		        tcpchat_server_room_part(x->srv, "carol", "#ops", NULL);
	}
	return NULL;
}

START_TEST(forced_join_part_and_room_broadcast_from_threads)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	ru_join(&b, "bob", "#ops");
	struct actions x0 = {srv, 0, {-1, -1, -1, -1}};
	struct actions x1 = {srv, 1, {-1, -1, -1, -1}};
	pthread_t t0, t1;
	ck_assert_int_eq(pthread_create(&t0, NULL, actions_main, &x0), 0);
	ck_assert_int_eq(pthread_create(&t1, NULL, actions_main, &x1), 0);
	pthread_join(t0, NULL);
	pthread_join(t1, NULL);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(x0.rc[i], 0);
		ck_assert_int_eq(x1.rc[i], 0);
	}
	/* alice is told as for any join, then the notice, then the part */
	ru_want(&a, TCPCHAT_MSG_JOIN, "alice", "#ops", &m);
	ck_assert_uint_eq(m.code, 2);
	ru_want(&a, TCPCHAT_MSG_TEXT, "", "#ops", &m);
	ck_assert_str_eq(m.body, "maintenance at noon");
	ck_assert_uint_gt(m.id, 0);
	ru_want(&a, TCPCHAT_MSG_LEAVE, "alice", "#ops", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	ck_assert_str_eq(m.body, "cleanup");
	/* so is bob, a member */
	ru_want(&b, TCPCHAT_MSG_JOIN, "alice", "#ops", &m);
	ru_want(&b, TCPCHAT_MSG_TEXT, "", "#ops", &m);
	ck_assert_str_eq(m.body, "maintenance at noon");
	ru_want(&b, TCPCHAT_MSG_LEAVE, "alice", "#ops", &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	ck_assert_str_eq(m.body, "cleanup");
	ru_want(&c, TCPCHAT_MSG_JOIN, "carol", "#other", &m);
	ck_assert_uint_eq(m.code, 1);
	ru_mark(srv, "done");
	int n = ru_upto(&c, "done");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_JOIN, NULL, "#ops"), 0);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_LEAVE, NULL, NULL), 0);
	n = ru_upto(&a, "done");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);
	n = ru_upto(&b, "done");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);

	/* what the actions refuse at once */
	ck_assert_int_eq(tcpchat_server_broadcast_room(srv, "ops", "x", 1),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(tcpchat_server_broadcast_room(srv, "#ops", "", 0),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(
	        tcpchat_server_broadcast_room(srv, "#ops", "bad \xff", 5),
	        TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_room_join(srv, NULL, "#ops"),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_room_join(srv, "alice", "ops"),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(tcpchat_server_room_join(srv, "alice", "#a b"),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(tcpchat_server_room_part(srv, "alice", "#", NULL),
	                 TCPCHAT_EBADROOM);
	ck_assert_int_eq(
	        tcpchat_server_room_part(srv, "bob", "#ops", "bad\nreason"),
	        TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_room_part(srv, NULL, "#ops", NULL),
	                 TCPCHAT_EINVAL);
	/* bob is still in #ops */
	ck_assert_int_eq(
	        tcpchat_server_broadcast_room(srv, "#ops", "still there", 11),
	        0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "", "#ops", &m);
	ck_assert_str_eq(m.body, "still there");
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

START_TEST(rooms_and_members_queried_from_the_handler)
{
	struct rec *r = rec_new();
	int port;
	tcpchat_server *srv = rec_server(r, &port);
	ru_server_go(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	struct ev ea, ec;
	ru_login_bin(&a, port, "alice");
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	ru_join(&c, "carol", "#dev");
	ru_join(&a, "alice", "#dev");
	ru_send_topic(&a, "#dev", "t");
	ru_want(&c, TCPCHAT_MSG_TOPIC, "alice", "#dev", &m);
	ru_join(&b, "bob", "#x");
	ru_send_room(&b, "#lobby", "query");
	ru_want(&a, TCPCHAT_MSG_TEXT, "bob", "#lobby", &m);
	pthread_mutex_lock(&r->mu);
	ck_assert_int_eq(r->queried, 1);
	ck_assert_int_eq(r->nrooms, 3);
	ck_assert_int_eq(r->rooms_seen, 3);
	ck_assert_str_eq(r->rooms[0].name, "#lobby");
	ck_assert_uint_eq(r->rooms[0].members, 3);
	ck_assert_int_eq(r->rooms[0].is_default, 1);
	ck_assert_str_eq(r->rooms[0].topic, "");
	ck_assert_str_eq(r->rooms[1].name, "#dev");
	ck_assert_uint_eq(r->rooms[1].members, 2);
	ck_assert_int_eq(r->rooms[1].is_default, 0);
	ck_assert_str_eq(r->rooms[1].topic, "t");
	ck_assert_str_eq(r->rooms[2].name, "#x");
	ck_assert_uint_eq(r->rooms[2].members, 1);
	ck_assert_int_eq(r->rooms_calls_stop, 1); /* it stopped */
	ck_assert_int_eq(r->nmembers, 2);
	ck_assert_int_eq(r->members_seen, 2);
	ck_assert_str_eq(r->members[0], "carol");
	ck_assert_str_eq(r->members[1], "alice");
	ck_assert_int_eq(r->members_nope, TCPCHAT_ENOTFOUND);
	ck_assert_int_eq(r->members_null, TCPCHAT_EINVAL);
	uint64_t id0 = r->member_ids[0], id1 = r->member_ids[1];
	pthread_mutex_unlock(&r->mu);
	ck_assert(rec_last(r, TCPCHAT_SEV_JOIN, "carol", NULL, &ec));
	ck_assert(rec_last(r, TCPCHAT_SEV_JOIN, "alice", NULL, &ea));
	ck_assert_uint_eq(id0, ec.conn_id);
	ck_assert_uint_eq(id1, ea.conn_id);
	RU_FINISH(srv, &a, &b, &c);
	rec_free(r);
}
END_TEST

/* ---- the line codec's view -------------------------------------------- */

START_TEST(room_events_as_lines)
{
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_start_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer b, l;
	struct tu_msg m;
	ru_login_line(&l, ports.line, "lina");
	ru_login_bin(&b, ports.bin, "bina");
	ru_next_line(&l, "--> bina joined");
	ru_join(&b, "bina", "#x");
	ck_assert_int_eq(tu_peer_send_line(&l, "/join #x"), 0);
	ru_next_line(&l, "--> lina joined #x");
	ru_want(&b, TCPCHAT_MSG_JOIN, "lina", "#x", &m);
	/* topics */
	ru_send_topic(&b, "#x", "t1");
	ru_next_line(&l, "=== topic #x by bina: t1");
	ck_assert_int_eq(tcpchat_server_set_topic(srv, "#x", "t2"), 0);
	ru_next_line(&l, "=== topic #x: t2");
	ru_send_topic(&b, "#x", "");
	ru_next_line(&l, "=== topic #x cleared by bina");
	ck_assert_int_eq(tcpchat_server_set_topic(srv, "#x", NULL), 0);
	ru_next_line(&l, "=== topic #x cleared");
	ck_assert_int_eq(tu_peer_send_line(&l, "/topic #x lines: all"), 0);
	ru_next_line(&l, "=== topic #x by lina: lines: all");
	ck_assert_int_eq(tu_peer_send_line(&l, "/rooms"), 0);
	ru_next_line(&l, "=== #lobby 2");
	ru_next_line(&l, "=== #x 2: lines: all");
	ru_next_line(&l, "=== 2 rooms");
	ck_assert_int_eq(tu_peer_send_line(&l, "/topic #x"), 0);
	ru_next_line(&l, "=== topic #x cleared by lina");
	/* texts and notices */
	ru_send_room(&b, "#x", "yo");
	ru_next_line(&l, "[#x] bina: yo");
	ru_send_room(&b, "#lobby", "hi");
	ru_next_line(&l, "bina: hi");
	ck_assert_int_eq(
	        tcpchat_server_broadcast_room(srv, "#x", "room notice", 11), 0);
	ru_next_line(&l, "[#x] *** room notice");
	ck_assert_int_eq(tcpchat_server_broadcast_room(srv, "#lobby",
	                                               "lobby notice", 12),
	                 0);
	ru_next_line(&l, "*** lobby notice");
	/* parts */
	ru_part(&b, "bina", "#x", "bye");
	ru_next_line(&l, "<-- bina left #x (part: bye)");
	ru_part(&b, "bina", "#lobby", NULL);
	ru_next_line(&l, "<-- bina left (part)");
	ru_join(&b, "bina", "#lobby");
	ru_next_line(&l, "--> bina joined");
	ru_join(&b, "bina", "#x");
	ru_next_line(&l, "--> bina joined #x");
	ck_assert_int_eq(tu_peer_send_line(&l, "/part #x see you"), 0);
	ru_next_line(&l, "<-- lina left #x (part: see you)");
	ck_assert_int_eq(tu_peer_send_line(&l, "/join #x"), 0);
	ru_next_line(&l, "--> lina joined #x");
	ck_assert_int_eq(tu_peer_send_line(&l, "/part going home"), 0);
	ru_next_line(&l, "<-- lina left #x (part: going home)");
	ru_want(&b, TCPCHAT_MSG_LEAVE, "lina", "#x", &m);
	ck_assert_str_eq(m.body, "see you");
	ru_want(&b, TCPCHAT_MSG_LEAVE, "lina", "#x", &m);
	ck_assert_str_eq(m.body, "going home");
	/* the current room is the default one again */
	ck_assert_int_eq(tu_peer_send_line(&l, "still here"), 0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "lina", "#lobby", &m);
	ck_assert_str_eq(m.body, "still here");
	ck_assert_int_eq(tu_peer_send_line(&l, "/part"), 0);
	ru_next_line(&l, "<-- lina left (part)");
	ck_assert_int_eq(tu_peer_send_line(&l, "lost"), 0);
	ru_next_line_prefix(&l, "-!- error 26: ");
	/* a kick, and the WHO of a room */
	ck_assert_int_eq(tu_peer_send_line(&l, "/join #x"), 0);
	ru_next_line(&l, "--> lina joined #x");
	ck_assert_int_eq(tu_peer_send_line(&l, "/who #x"), 0);
	ru_next_line(&l, "=== 2 in #x: bina lina");
	ck_assert_int_eq(tcpchat_server_kick(srv, "bina", "be nice"), 0);
	ru_next_line(&l, "<-- bina left (kicked: be nice)");
	RU_FINISH(srv, &b, &l);
}
END_TEST

/* ---- a server without a default room --------------------------------------- */

START_TEST(no_default_room)
{
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_new_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	ck_assert_int_eq(tcpchat_server_set_default_room(srv, NULL), 0);
	ru_server_go(srv);
	struct tu_peer a, b, old, j, l;
	struct tu_msg w, m;
	/* protocol 1 is refused, on every codec that can speak it */
	ck_assert_int_eq(tu_peer_login(&old, ports.bin, tcpchat_codec_binary(),
	                               "old", 1, 0, &w),
	                 TCPCHAT_EVERSION);
	ck_assert_int_eq(tu_peer_wait_closed(&old, TU_TIMEOUT), 1);
	tu_peer_close(&old);
	ck_assert_int_eq(tu_peer_login(&old, ports.bin, tcpchat_codec_binary(),
	                               "old", 1, TCPCHAT_CAP_BASE, &w),
	                 TCPCHAT_EVERSION);
	ck_assert_uint_eq(w.flags & TCPCHAT_MSGF_CLOSING, TCPCHAT_MSGF_CLOSING);
	ck_assert_int_eq(tu_peer_wait_closed(&old, TU_TIMEOUT), 1);
	tu_peer_close(&old);
	ck_assert_int_eq(
	        tu_peer_connect(&j, ports.json, tcpchat_codec_json(), 0), 0);
	ck_assert_int_eq(tu_peer_send_line(&j, "{\"type\":\"hello\",\"code\":1,"
	                                       "\"sender\":\"ci\"}"),
	                 0);
	ru_want(&j, TCPCHAT_MSG_ERROR, NULL, NULL, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_VERSION);
	ck_assert_int_eq(tu_peer_wait_closed(&j, TU_TIMEOUT), 1);
	tu_peer_close(&j);

	/* protocol 2: in no room */
	ck_assert_int_eq(tu_peer_login(&a, ports.bin, tcpchat_codec_binary(),
	                               "alice", 2, TU_CAPS2, &w),
	                 0);
	ck_assert_uint_eq(w.code, 2);
	ck_assert_str_eq(w.room, "");
	ru_login_bin(&b, ports.bin, "bob");
	ru_login_line(&l, ports.line, "lina");
	ck_assert_int_eq(tu_peer_send_text(&a, "anyone?"), 0);
	ru_want_error(&a, TCPCHAT_WIRE_NOTMEMBER, NULL);
	ck_assert_int_eq(tu_peer_send_line(&l, "hello?"), 0);
	ru_next_line_prefix(&l, "-!- error 26: ");
	send_rooms(&a);
	ru_want(&a, TCPCHAT_MSG_ROOMS, NULL, NULL, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_uint_eq(m.code, 0);
	ck_assert_int_eq(tu_peer_send(&a, TCPCHAT_MSG_WHO, 0, NULL, NULL, NULL),
	                 0);
	ru_want(&a, TCPCHAT_MSG_WHO, NULL, NULL, &m);
	ck_assert_uint_eq(m.code, 3);
	ck_assert_str_eq(m.body, "alice bob lina");
	ck_assert(ru_wait_stats(srv, 3, 0));
	/* logins shared no room: nobody was told */
	ru_mark(srv, "m");
	int n = ru_upto(&a, "m");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_JOIN, NULL, NULL), 0);
	ck_assert_int_eq(ru_lines_upto(&l, "m", "-->"), 0);
	/* rooms work as anywhere */
	ru_join(&a, "alice", "#a");
	ru_send_join(&b, "#a");
	ru_want(&b, TCPCHAT_MSG_JOIN, "bob", "#a", &m);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, 0);
	ck_assert_int_eq(tu_peer_send_text(&a, "hi"), 0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "alice", "#a", &m);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM, 0);
	ck_assert_int_eq(tu_peer_send_line(&l, "/join #a"), 0);
	ru_next_line(&l, "--> lina joined #a");
	ck_assert_int_eq(tu_peer_send_line(&l, "hi all"), 0);
	ru_want(&a, TCPCHAT_MSG_TEXT, "lina", "#a", &m);
	ck_assert_str_eq(m.body, "hi all");
	RU_FINISH(srv, &a, &b, &l);
}
END_TEST

/* ---- hostile room names and targets ----------------------------------------- */

/* Room names that tcpchat_room_check() refuses. */
static const char *const bad_rooms[] =
        {
                "nohash",        "#",         "#a b",      "#a,b",
                "#a:b",          "#:",        "#a\tb",     "#a\x01",
                "#\x7f",         "#\xff\xfe", "#\xc2\x85", /* U+0085, a C1 control */
                "#a\xc2\240b",   /* U+00A0 no-break space */
                "#\xe1\x9a\x80", /* U+1680 */
                "#\xe2\x80\x8b", /* U+200B zero width space */
                "#\xe2\x80\xae", /* U+202E right-to-left override */
                "#\xe2\x81\xa0", /* U+2060 word joiner */
                "#\xe3\x80\x80", /* U+3000 ideographic space */
                "#\xef\xbb\xbf", /* U+FEFF */
                "#\xc0\xaf",     /* overlong '/' */
                "#\xed\xa0\x80", /* a surrogate */
                " #lobby",       "#lobby ",
};

/* The same on the JSON codec (a JSON string, as written). */
static const char *const bad_rooms_json[] = {
        "nohash",   "#",          "#a b",     "#a,b",     "#a:b",
        "#a\\tb",   "#a\\u0000b", "#a\\nb",   "#\\u007f", "#\\u0085",
        "#\\u00a0", "#\\u200b",   "#\\u202e", "#\\ufeff", "#\\u3000",
};

/* ... and on the line codec: the argument of /join. */
static const char *const bad_rooms_line[] = {
        "nohash", "#", "#a,b", "#a:b", "#\xc2\xa0", "#\xe2\x80\x8b", "#\xff",
};

/* The next line must be an error with code a or b. */
static void line_error2(struct tu_peer *p, int a, int b)
{
	char got[8192];
	int code = -1;
	ck_assert_int_eq(tu_peer_line(p, got, sizeof got, TU_TIMEOUT), 1);
	ck_assert_msg(sscanf(got, "-!- error %d: ", &code) == 1 &&
	                      (code == a || code == b),
	              "line '%s', expected error %d or %d", got, a, b);
}

static void send_bin(struct tu_peer *p, uint32_t type, const char *room,
                     size_t room_len, const char *target, size_t target_len)
{
	tcpchat_msg t = {.type = type};
	t.room.ptr = room;
	t.room.len = room_len;
	t.target.ptr = target;
	t.target.len = target_len;
	if (type == TCPCHAT_MSG_TEXT || type == TCPCHAT_MSG_TOPIC) {
		t.body.ptr = "boo";
		t.body.len = 3;
	}
	ck_assert_int_eq(tu_peer_send_msg(p, &t), 0);
}

START_TEST(hostile_room_names_on_every_codec)
{
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_start_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer b, j, l;
	struct tu_msg m;
	char buf[256];
	ru_login_bin(&b, ports.bin, "bina");
	ck_assert_int_eq(tu_peer_login(&j, ports.json, tcpchat_codec_json(),
	                               "jay", 2, TU_CAPS2, NULL),
	                 0);
	ru_login_line(&l, ports.line, "lina");
	ru_mark(srv, "start");
	ru_upto(&b, "start");
	ru_upto(&j, "start");
	ru_lines_upto(&l, "start", NULL);

	/* binary: every message that names a room */
	for (size_t i = 0; i < sizeof bad_rooms / sizeof bad_rooms[0]; i++) {
		const char *r = bad_rooms[i];
		send_bin(&b, TCPCHAT_MSG_JOIN, r, strlen(r), NULL, 0);
		ru_want_error(&b, TCPCHAT_WIRE_BADROOM, NULL);
		send_bin(&b, TCPCHAT_MSG_TEXT, r, strlen(r), NULL, 0);
		ru_want_error_or(&b, TCPCHAT_WIRE_BADROOM,
		                 TCPCHAT_WIRE_NOTMEMBER, NULL);
		send_bin(&b, TCPCHAT_MSG_TOPIC, r, strlen(r), NULL, 0);
		ru_want_error_or(&b, TCPCHAT_WIRE_BADROOM,
		                 TCPCHAT_WIRE_NOTMEMBER, NULL);
		send_bin(&b, TCPCHAT_MSG_WHO, r, strlen(r), NULL, 0);
		ru_want_error_or(&b, TCPCHAT_WIRE_BADROOM,
		                 TCPCHAT_WIRE_NOTFOUND, NULL);
		send_bin(&b, TCPCHAT_MSG_LEAVE, r, strlen(r), NULL, 0);
		ru_want_error_or(&b, TCPCHAT_WIRE_BADROOM,
		                 TCPCHAT_WIRE_NOTMEMBER, NULL);
	}
	/* one byte too long */
	char too_long[TCPCHAT_ROOM_MAX + 2];
	too_long[0] = '#';
	memset(too_long + 1, 'x', TCPCHAT_ROOM_MAX);
	too_long[TCPCHAT_ROOM_MAX + 1] = '\0';
	send_bin(&b, TCPCHAT_MSG_JOIN, too_long, strlen(too_long), NULL, 0);
	ru_want_error(&b, TCPCHAT_WIRE_BADROOM, NULL);
	/* a NUL inside: "#lobby\0x" is not #lobby */
	send_bin(&b, TCPCHAT_MSG_JOIN, "#lobby\0x", 8, NULL, 0);
	ru_want_error(&b, TCPCHAT_WIRE_BADROOM, NULL);
	send_bin(&b, TCPCHAT_MSG_TEXT, "#lobby\0x", 8, NULL, 0);
	ru_want_error_or(&b, TCPCHAT_WIRE_BADROOM, TCPCHAT_WIRE_NOTMEMBER,
	                 NULL);
	/* parting a room one is not in is no quit */
	send_bin(&b, TCPCHAT_MSG_LEAVE, "#nothere", 8, NULL, 0);
	ru_want_error_or(&b, TCPCHAT_WIRE_NOTMEMBER, TCPCHAT_WIRE_NOTFOUND,
	                 NULL);
	ru_still_here(&b);

	/* JSON */
	for (size_t i = 0; i < sizeof bad_rooms_json / sizeof bad_rooms_json[0];
	     i++) {
		snprintf(buf, sizeof buf, "{\"type\":\"join\",\"room\":\"%s\"}",
		         bad_rooms_json[i]);
		ck_assert_int_eq(tu_peer_send_line(&j, buf), 0);
		ru_want_error(&j, TCPCHAT_WIRE_BADROOM, NULL);
		snprintf(buf, sizeof buf,
		         "{\"type\":\"text\",\"room\":\"%s\",\"body\":\"x\"}",
		         bad_rooms_json[i]);
		ck_assert_int_eq(tu_peer_send_line(&j, buf), 0);
		ru_want_error_or(&j, TCPCHAT_WIRE_BADROOM,
		                 TCPCHAT_WIRE_NOTMEMBER, NULL);
		snprintf(buf, sizeof buf,
		         "{\"type\":\"topic\",\"room\":\"%s\",\"body\":\"x\"}",
		         bad_rooms_json[i]);
		ck_assert_int_eq(tu_peer_send_line(&j, buf), 0);
		ru_want_error_or(&j, TCPCHAT_WIRE_BADROOM,
		                 TCPCHAT_WIRE_NOTMEMBER, NULL);
	}
	ru_still_here(&j);

	/* names at the edge are fine, and compare byte for byte */
	char longest[TCPCHAT_ROOM_MAX + 1];
	longest[0] = '#';
	memset(longest + 1, 'x', TCPCHAT_ROOM_MAX - 1);
	longest[TCPCHAT_ROOM_MAX] = '\0';
	ck_assert_uint_eq(ru_join(&b, "bina", longest), 1);
	ck_assert_uint_eq(ru_join(&b, "bina", "#Dev"), 1);
	ck_assert_uint_eq(ru_join(&b, "bina", "#dev"), 1);
	ck_assert_uint_eq(ru_join(&b, "bina", "#\xc3\xa9lan"), 1);
	ck_assert_uint_eq(ru_join(&j, "jay", "#\xf0\x9f\x92\xac"), 1);

	/* nothing hostile made a room */
	send_rooms(&b);
	for (;;) {
		ru_want(&b, TCPCHAT_MSG_ROOMS, NULL, NULL, &m);
		if (!m.room[0])
			break;
	}
	ck_assert_uint_eq(m.code, 6);
	ru_mark(srv, "mid");
	int n = ru_upto(&j, "mid");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);
	ru_lines_upto(&l, "mid", NULL);

	/* line: malformed or refused, never text to everyone */
	for (size_t i = 0; i < sizeof bad_rooms_line / sizeof bad_rooms_line[0];
	     i++) {
		snprintf(buf, sizeof buf, "/join %s", bad_rooms_line[i]);
		ck_assert_int_eq(tu_peer_send_line(&l, buf), 0);
		line_error2(&l, TCPCHAT_WIRE_NOTYPE, TCPCHAT_WIRE_BADROOM);
		snprintf(buf, sizeof buf, "/topic %s x", bad_rooms_line[i]);
		ck_assert_int_eq(tu_peer_send_line(&l, buf), 0);
		line_error2(&l, TCPCHAT_WIRE_NOTYPE, TCPCHAT_WIRE_BADROOM);
	}
	snprintf(buf, sizeof buf, "/join %s", too_long);
	ck_assert_int_eq(tu_peer_send_line(&l, buf), 0);
	line_error2(&l, TCPCHAT_WIRE_NOTYPE, TCPCHAT_WIRE_BADROOM);
	const char *malformed[] = {"/join", "/join ", "/topic", "/part #",
	                           "/who nohash"};
	for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
		ck_assert_int_eq(tu_peer_send_line(&l, malformed[i]), 0);
		line_error2(&l, TCPCHAT_WIRE_NOTYPE, TCPCHAT_WIRE_BADROOM);
	}
	/* "#room text" with no valid room is plain text of the current
	 * room; with a valid room it needs membership */
	ck_assert_int_eq(tu_peer_send_line(&l, "#a,b hello"), 0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "lina", "#lobby", &m);
	ck_assert_str_eq(m.body, "#a,b hello");
	ck_assert_int_eq(tu_peer_send_line(&l, "#nothere hello"), 0);
	ru_next_line_prefix(&l, "-!- error 26: ");
	ck_assert_int_eq(tu_peer_send_line(&l, "/who"), 0);
	ru_next_line(&l, "=== 3 online: bina jay lina");

	ck_assert_int_eq(tu_peer_send_line(&l, "/join #\xc3\xa9lan"), 0);
	ru_next_line(&l, "--> lina joined #\xc3\xa9lan");
	ru_want(&b, TCPCHAT_MSG_JOIN, "lina", "#\xc3\xa9lan", &m);
	ck_assert_uint_eq(m.code, 2);
	ru_mark(srv, "end");
	n = ru_upto(&j, "end");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, "lina", NULL), 1);
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 1);
	RU_FINISH(srv, &b, &j, &l);
}
END_TEST

/* Targets no connected user has. */
static const char *const bad_targets[] = {
        "no one",
        "bin",
        "BINA",
        "bina ",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", /* 40 bytes */
        "\xff",
        "bina\n",
        "#lobby",
        "*",
};

START_TEST(hostile_targets_on_every_codec)
{
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_start_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer b, s, j, l;
	char buf[256];
	ru_login_bin(&b, ports.bin, "bina");
	ru_login_bin(&s, ports.bin, "sender");
	ck_assert_int_eq(tu_peer_login(&j, ports.json, tcpchat_codec_json(),
	                               "jay", 2, TU_CAPS2, NULL),
	                 0);
	ru_login_line(&l, ports.line, "lina");
	for (size_t i = 0; i < sizeof bad_targets / sizeof bad_targets[0];
	     i++) {
		const char *t = bad_targets[i];
		ck_assert_int_eq(
		        tu_peer_send(&s, TCPCHAT_MSG_TEXT, 0, NULL, t, "psst"),
		        0);
		ru_want_error_or(&s, TCPCHAT_WIRE_NOTFOUND,
		                 TCPCHAT_WIRE_BADNAME, NULL);
	}
	/* a NUL inside: "bina\0x" is not bina */
	send_bin(&s, TCPCHAT_MSG_TEXT, NULL, 0, "bina\0x", 6);
	ru_want_error_or(&s, TCPCHAT_WIRE_NOTFOUND, TCPCHAT_WIRE_BADNAME, NULL);
	ru_still_here(&s);
	const char *jt[] = {"bina\\u0000", "bina\\u0020", "\\u202ebina",
	                    "bin\\u0061\\u00a0"};
	for (size_t i = 0; i < sizeof jt / sizeof jt[0]; i++) {
		snprintf(buf, sizeof buf,
		         "{\"type\":\"text\",\"target\":\"%s\",\"body\":\"x\"}",
		         jt[i]);
		ck_assert_int_eq(tu_peer_send_line(&j, buf), 0);
		ru_want_error_or(&j, TCPCHAT_WIRE_NOTFOUND,
		                 TCPCHAT_WIRE_BADNAME, NULL);
	}
	ru_still_here(&j);
	ru_mark(srv, "mid");
	int n = ru_upto(&b, "mid");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);
	n = ru_upto(&s, "mid");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);
	ru_lines_upto(&l, "mid", NULL);

	/* line */
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg nobody hi"), 0);
	ru_next_line_prefix(&l, "-!- error 15: ");
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg bin hi"), 0);
	ru_next_line_prefix(&l, "-!- error 15: ");
	/* malformed: an unknown command, not a text to everyone */
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg bina"), 0);
	ru_next_line_prefix(&l, "-!- error 24: ");
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg bina "), 0);
	ru_next_line_prefix(&l, "-!- error 24: ");
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg"), 0);
	ru_next_line_prefix(&l, "-!- error 24: ");
	ck_assert_int_eq(tu_peer_send_line(&l, "/who"), 0);
	ru_next_line(&l, "=== 4 online: bina sender jay lina");
	/* bina got nothing of it */
	ru_mark(srv, "end");
	n = ru_upto(&b, "end");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);
	n = ru_upto(&s, "end");
	ck_assert_int_eq(ru_count_seen(n, TCPCHAT_MSG_TEXT, NULL, NULL), 0);
	RU_FINISH(srv, &b, &s, &j, &l);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("rooms");
	TCase *t = tcase_create("membership");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, welcome_names_the_default_room);
	tcase_add_test(t, protocol_versions_in_the_handshake);
	tcase_add_test(t, default_room_can_be_renamed);
	tcase_add_test(t, join_and_part_are_confirmed_to_members);
	tcase_add_test(t, room_text_reaches_members_only);
	tcase_add_test(t, non_member_text_is_refused_and_the_connection_stays);
	tcase_add_test(t, current_room_rule);
	tcase_add_test(t, rejoining_the_default_room);
	tcase_add_test(t, leaving_the_server);
	tcase_add_test(t, no_default_room);
	suite_add_tcase(s, t);
	t = tcase_create("topics and lists");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, topics);
	tcase_add_test(t, server_sets_a_topic);
	tcase_add_test(t, room_list);
	tcase_add_test(t, room_list_stops_at_1000);
	tcase_add_test(t, room_list_is_a_reply_and_always_queued);
	tcase_add_test(t, who_lists_a_room_in_join_order);
	tcase_add_test(t, who_counts_a_big_room_exactly);
	suite_add_tcase(s, t);
	t = tcase_create("limits and presence");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, rooms_per_user_limit);
	tcase_add_test(t, rooms_per_server_limit);
	tcase_add_test(t, empty_rooms_disappear);
	tcase_add_test(t, announce_max_limits_presence);
	tcase_add_test(t, disconnect_leave_reaches_each_member_once);
	tcase_add_test(t, disconnect_leave_skips_unannounced_rooms);
	suite_add_tcase(s, t);
	t = tcase_create("handler and api");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, room_join_refused_or_deferred_by_the_handler);
	tcase_add_test(t, deferred_room_join_of_a_user_who_left);
	tcase_add_test(t, deferred_room_join_is_checked_again);
	tcase_add_test(t, stop_with_rooms_topics_and_pending_decisions);
	tcase_add_test(t, room_joined_and_part_events);
	tcase_add_test(t, topic_vetoed_by_the_handler);
	tcase_add_test(t, forced_join_part_and_room_broadcast_from_threads);
	tcase_add_test(t, rooms_and_members_queried_from_the_handler);
	suite_add_tcase(s, t);
	t = tcase_create("hostile");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, hostile_room_names_on_every_codec);
	tcase_add_test(t, hostile_targets_on_every_codec);
	tcase_add_test(t, room_events_as_lines);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return tu_run_suite(suite());
}
