/* libtcpchat - opening the durable store: the rooms, their numbers,
 * topics and recent history come back from it before the loop first
 * runs, with the references of the texts of the ACK window (so that a
 * client resending after a restart does not post twice). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store.h"
#include "server_int.h"

struct load {
	tcpchat_server *srv;
	struct store *store;
	struct room *room;
	int64_t window_from; /* ACKs of texts from then on are remembered */
	int rc;
};

static int load_msg(const struct store_msg *s, void *ud)
{
	struct load *ld = ud;
	tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT};
	m.id = s->id;
	m.seq = s->seq;
	m.timestamp = s->timestamp;
	m.sender = s->sender;
	m.body = s->body;
	srv__room_stamp(ld->srv, ld->room, &m);
	srv__hist_add(ld->srv, ld->room, &m);
	if (ld->srv->next_msg_id < s->id)
		ld->srv->next_msg_id = s->id;
	if (s->ref.len && s->sender.len && s->sender.len <= TCPCHAT_NAME_MAX &&
	    s->timestamp >= ld->window_from) {
		m.ref = s->ref;
		srv__ack_remember(ld->srv, s->sender.ptr, s->sender.len, &m, 0);
	}
	return 0;
}

static int load_room(const struct store_room *s, void *ud)
{
	struct load *ld = ud;
	tcpchat_server *srv = ld->srv;
	struct room *r;
	if (tcpchat_room_check(s->room.ptr, s->room.len) != 0 ||
	    s->topic.len > TCPCHAT_TOPIC_MAX ||
	    s->topic_by.len > TCPCHAT_NAME_MAX)
		return 0; /* not one of ours: left alone */
	int rc = srv__room_get(srv, s->room.ptr, s->room.len, &r);
	if (rc)
		return ld->rc = rc;
	r->last_seq = s->last_seq;
	if (s->topic.len) {
		tcpchat_msg t = {.type = TCPCHAT_MSG_TOPIC};
		t.body = s->topic;
		t.sender = s->topic_by;
		t.timestamp = s->topic_ts;
		if ((rc = srv__room_set_topic(r, &t)) != 0)
			return ld->rc = rc;
	}
	if (srv->retain_msgs || srv->retain_age) {
		int64_t now = util__wall_ms();
		store__trim(ld->store, s->room, (uint64_t)srv->retain_msgs,
		            srv->retain_age ? now - srv->retain_age : 0);
	}
	ld->room = r;
	long n = store__read(ld->store, s->room, 0, 0,
	                     (size_t)srv->history_msgs, 1, load_msg, ld);
	if (n < 0)
		return ld->rc = (int)n;
	return 0;
}

int srv__durable_open(tcpchat_server *srv, struct store *s, char *err,
                      size_t errlen)
{
	if (srv->durable || srv->running) {
		if (err && errlen)
			snprintf(err, errlen,
			         "a store must be opened before the server "
			         "runs, once");
		store__close(s);
		return TCPCHAT_ESTATE;
	}
	struct load ld = {.srv = srv, .store = s};
	ld.window_from = util__wall_ms() - srv->ack_window;
	srv->epoch = (long long)(store__epoch(s) & INT64_MAX);
	if (srv->epoch == 0)
		srv->epoch = 1;
	int rc = store__rooms(s, load_room, &ld);
	if (rc == 0)
		rc = ld.rc;
	if (rc) {
		if (err && errlen)
			snprintf(err, errlen, "cannot load the store: %s",
			         store__errmsg(s)[0] ? store__errmsg(s)
			                             : tcpchat_strerror(rc));
		store__close(s);
		return rc;
	}
	srv->st.rooms = srv->nrooms;
	srv__stats_publish(srv);
	rc = srv__durable_start(srv, s);
	if (rc && err && errlen)
		snprintf(err, errlen, "cannot start the store's writer: %s",
		         tcpchat_strerror(rc));
	return rc;
}

TCPCHAT_API int tcpchat_server_open_store(tcpchat_server *srv, const char *path,
                                          int flags, char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!srv || !path || !*path ||
	    (flags & ~(TCPCHAT_STORE_CREATE | TCPCHAT_STORE_FSYNC))) {
		if (err && errlen)
			snprintf(err, errlen, "invalid argument");
		return TCPCHAT_EINVAL;
	}
	if (srv->durable || srv->running) {
		if (err && errlen)
			snprintf(err, errlen,
			         "a store must be opened before the server "
			         "runs, once");
		return TCPCHAT_ESTATE;
	}
	struct store *s;
	int sf = (flags & TCPCHAT_STORE_CREATE ? STORE_CREATE : 0) |
	         (flags & TCPCHAT_STORE_FSYNC ? STORE_FSYNC : 0);
	int rc = store__sqlite_open(&s, path, sf, err, errlen);
	if (rc)
		return rc;
	return srv__durable_open(srv, s, err, errlen);
}
