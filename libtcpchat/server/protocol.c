/* libtcpchat - what the server does with each incoming message: the
 * handshake, chat text, who, ping, leave, types it does not know, and the
 * decisions an application may take later (deferred JOIN and MESSAGE). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define WHO_MAX_BYTES (60 * 1024) /* a WHO answer fits in any frame */

/* Peers that announced the growable protocol in their HELLO get its
 * extras (error flags, limits); others get protocol-1 frames exactly. */
static int modern(const struct sconn *sc)
{
	return (sc->peer_caps & TCPCHAT_CAP_BASE) && sc->c.codec->abi >= 2;
}

tcpchat_msg srv__error_msg(const tcpchat_server *srv, const struct sconn *sc,
                           int err, const char *why, int closing)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_ERROR};
	m.code = tcpchat_error_to_wire(err);
	m.timestamp = srv->wall_ms;
	m.body.ptr = why;
	m.body.len = why ? strlen(why) : 0;
	if (closing && sc && modern(sc))
		m.flags = TCPCHAT_MSGF_CLOSING;
	return m;
}

void srv__send_error(tcpchat_server *srv, struct sconn *sc, int err,
                     const char *why, int closing)
{
	tcpchat_msg m = srv__error_msg(srv, sc, err, why, closing);
	srv__send_one(srv, sc, &m);
}

static void refuse_join(tcpchat_server *srv, struct sconn *sc, int err,
                        const char *why)
{
	srv->st.refused++;
	srv__fail(sc, TCPCHAT_REASON_ERROR, err, why);
}

/* The user is in: WELCOME to them, JOIN to everyone else. */
static void complete_join(tcpchat_server *srv, struct sconn *sc)
{
	sc->state = S_JOINED;
	sc->c.dflags = 0;
	dl_del(&sc->member);
	dl_push(&srv->members, &sc->member);
	srv->nusers++;
	srv->st.users = srv->nusers;
	srv__touch(srv, sc);
	srv__arm_idle(srv, sc);

	tcpchat_msg w = {.type = TCPCHAT_MSG_WELCOME};
	w.code = TCPCHAT_PROTOCOL_VERSION;
	w.timestamp = srv->wall_ms;
	w.sender.ptr = sc->name;
	w.sender.len = sc->name_len;
	if (modern(sc)) {
		w.caps = TCPCHAT_CAP_BASE;
		w.max_frame = (uint64_t)srv->max_frame;
		w.queue_frames = (uint64_t)srv->queue_frames;
		w.queue_bytes = (uint64_t)srv->queue_bytes;
	}
	srv__send_one(srv, sc, &w);

	tcpchat_msg j = {.type = TCPCHAT_MSG_JOIN};
	j.id = ++srv->next_msg_id;
	j.timestamp = srv->wall_ms;
	j.sender = w.sender;
	srv__fanout(srv, &j, sc);
}

static int on_hello(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	if (m->type != TCPCHAT_MSG_HELLO) {
		srv->st.proto++;
		srv__fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_EPROTO,
		          "expected HELLO");
		return 1;
	}
	sc->peer_caps = m->caps;
	if (m->code != TCPCHAT_PROTOCOL_VERSION) {
		srv->st.proto++;
		srv__fail(
		        sc, TCPCHAT_REASON_ERROR, TCPCHAT_EVERSION,
		        "unsupported protocol version (this server speaks 1)");
		return 1;
	}
	if (tcpchat_name_check(m->sender.ptr, m->sender.len) != 0) {
		refuse_join(srv, sc, TCPCHAT_EBADNAME,
		            "invalid name: use 1-32 bytes of printable UTF-8 "
		            "without spaces");
		return 1;
	}
	if (srv__name_find(srv, m->sender.ptr, m->sender.len)) {
		refuse_join(srv, sc, TCPCHAT_ENAMEINUSE, "name already in use");
		return 1;
	}
	memcpy(sc->name, m->sender.ptr, m->sender.len);
	sc->name[m->sender.len] = '\0';
	sc->name_len = (uint8_t)m->sender.len;
	/* The name is taken from now on, also while the application
	 * decides. */
	if (srv__name_insert(srv, sc) != 0) {
		srv__fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_ENOMEM,
		          "server out of memory");
		return 1;
	}

	tcpchat_server_event ev;
	srv__conn_event(sc, &ev, TCPCHAT_SEV_JOIN);
	int verdict = srv__emit(srv, &ev);
	if (sc->state == S_DEAD)
		return 1;
	if (verdict == TCPCHAT_DEFER) {
		sc->state = S_JOINING;
		srv__pause(srv, sc);
		return 1;
	}
	if (verdict) {
		const char *why = ev.refuse_reason ? ev.refuse_reason
		                                   : "refused by the server";
		refuse_join(srv, sc, TCPCHAT_EREFUSED, why);
		return 1;
	}
	complete_join(srv, sc);
	return 0;
}

/* Keeps a copy of a stamped message while the application decides. */
static int hold(struct sconn *sc, const tcpchat_msg *m)
{
	struct held_msg *h = malloc(sizeof *h + m->body.len);
	if (!h)
		return TCPCHAT_ENOMEM;
	h->m = *m;
	memcpy(h->body, m->body.ptr, m->body.len);
	h->m.body.ptr = h->body;
	h->m.sender.ptr = sc->name;
	sc->held = h;
	return 0;
}

static int on_text(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	if (m->room.len || m->target.len) {
		srv__send_error(srv, sc, TCPCHAT_ENOTSUP,
		                "rooms and private messages are not "
		                "supported by this server",
		                0);
		return 0;
	}
	if (!util__text_ok(m->body.ptr, m->body.len)) {
		srv__send_error(srv, sc, TCPCHAT_EBADMSG,
		                "message must be non-empty UTF-8 text without "
		                "control characters",
		                0);
		return 0;
	}
	tcpchat_msg out = {.type = TCPCHAT_MSG_TEXT};
	out.id = ++srv->next_msg_id;
	out.timestamp = srv->wall_ms;
	out.sender.ptr = sc->name;
	out.sender.len = sc->name_len;
	out.body = m->body;
	if (srv->handler) {
		tcpchat_server_event ev;
		srv__conn_event(sc, &ev, TCPCHAT_SEV_MESSAGE);
		ev.msg = &out;
		int verdict = srv__emit(srv, &ev);
		if (sc->state == S_DEAD)
			return 1;
		if (verdict == TCPCHAT_DEFER) {
			if (hold(sc, &out) != 0) {
				srv__send_error(srv, sc, TCPCHAT_ENOMEM,
				                "server out of memory", 0);
				return 0;
			}
			srv__pause(srv, sc);
			return 1;
		}
		if (verdict) {
			srv__send_error(srv, sc, TCPCHAT_EREFUSED,
			                ev.refuse_reason ? ev.refuse_reason
			                                 : "message refused",
			                0);
			return 0;
		}
	}
	srv__fanout(srv, &out, sc);
	return 0;
}

/* Answers WHO: the number of users and their names in join order (the
 * list is cut at WHO_MAX_BYTES; the number stays exact). */
static void send_who(tcpchat_server *srv, struct sconn *sc)
{
	tcpchat_buf names = {0};
	struct dlist *it;
	for (it = srv->members.next; it != &srv->members; it = it->next) {
		struct sconn *u = CONTAINER(it, struct sconn, member);
		if (names.len + u->name_len + 1 > WHO_MAX_BYTES)
			break;
		if ((names.len && tcpchat_buf_append(&names, " ", 1)) ||
		    tcpchat_buf_append(&names, u->name, u->name_len))
			break;
	}
	tcpchat_msg m = {.type = TCPCHAT_MSG_WHO};
	m.code = (uint32_t)srv->nusers;
	m.timestamp = srv->wall_ms;
	m.body.ptr = names.data;
	m.body.len = names.len;
	srv__send_one(srv, sc, &m);
	tcpchat_buf_free(&names);
}

int srv__on_msg(void *ctx, tcpchat_msg *m)
{
	struct sconn *sc = ctx;
	tcpchat_server *srv = sc->srv;
	srv->st.in++;
	if (sc->state == S_HANDSHAKE)
		return on_hello(srv, sc, m);
	if (sc->state != S_JOINED)
		return 0; /* draining on shutdown: ignore */
	srv__touch(srv, sc);
	switch (m->type) {
	case TCPCHAT_MSG_TEXT:
		return on_text(srv, sc, m);
	case TCPCHAT_MSG_PING: {
		tcpchat_msg p = {.type = TCPCHAT_MSG_PONG};
		p.id = m->id;
		p.timestamp = srv->wall_ms;
		srv__send_one(srv, sc, &p);
		return 0;
	}
	case TCPCHAT_MSG_PONG:
	case TCPCHAT_MSG_ERROR:
		return 0;
	case TCPCHAT_MSG_WHO:
		send_who(srv, sc);
		return 0;
	case TCPCHAT_MSG_LEAVE:
		srv__close(sc, TCPCHAT_REASON_QUIT, 0, "quit");
		return 1;
	case TCPCHAT_MSG_HELLO:
	case TCPCHAT_MSG_WELCOME:
	case TCPCHAT_MSG_JOIN:
		srv->st.proto++;
		srv__fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_EPROTO,
		          "unexpected message type");
		return 1;
	default:
		/* A newer peer's message: say so, and go on. */
		srv__log(srv, TCPCHAT_LOG_DEBUG,
		         "conn %llu: unknown message type %u",
		         (unsigned long long)sc->id, (unsigned)m->type);
		srv__send_error(srv, sc, TCPCHAT_ENOTYPE,
		                "unknown message type", 0);
		return 0;
	}
}

void srv__on_readable(tcpchat_server *srv, struct sconn *sc)
{
	struct conn_read_result res;
	int rc = conn__read(&sc->c, &srv->sh, (size_t)srv->max_frame,
	                    srv__on_msg, sc, &res);
	srv->st.bytes_in += res.bytes;
	if (rc == 0 || rc == 1 || sc->state == S_DEAD)
		return;
	if (rc == TCPCHAT_ECLOSED ||
	    (rc == TCPCHAT_ESYS && errno == ECONNRESET)) {
		srv__close(sc, TCPCHAT_REASON_CLOSED, 0, "connection closed");
	} else if (rc == TCPCHAT_EPROTO || rc == TCPCHAT_EMSGSIZE) {
		srv->st.proto++;
		srv__log(srv, TCPCHAT_LOG_WARN, "conn %llu: %s: %s",
		         (unsigned long long)sc->id, tcpchat_strerror(rc),
		         res.error);
		srv__fail(sc, TCPCHAT_REASON_ERROR, rc, res.error);
	} else {
		srv__close(sc, TCPCHAT_REASON_ERROR, rc,
		           rc == TCPCHAT_ESYS ? strerror(errno)
		                              : tcpchat_strerror(rc));
	}
}

/* The application's answer to a deferred JOIN or MESSAGE. */
void srv__decide(tcpchat_server *srv, struct sconn *sc, int accept,
                 const char *reason)
{
	if (sc->state == S_JOINING) {
		if (!accept) {
			refuse_join(srv, sc, TCPCHAT_EREFUSED,
			            reason ? reason : "refused by the server");
			return;
		}
		complete_join(srv, sc);
		srv__resume(srv, sc);
		return;
	}
	if (sc->state != S_JOINED || !sc->held) {
		srv__log(srv, TCPCHAT_LOG_DEBUG,
		         "conn %llu: no decision pending",
		         (unsigned long long)sc->id);
		return;
	}
	struct held_msg *h = sc->held;
	sc->held = NULL;
	if (accept) {
		/* Stamped again, so that ids keep increasing on the wire. */
		h->m.id = ++srv->next_msg_id;
		h->m.timestamp = srv->wall_ms;
		srv__fanout(srv, &h->m, sc);
	} else {
		srv__send_error(srv, sc, TCPCHAT_EREFUSED,
		                reason ? reason : "message refused", 0);
	}
	free(h);
	srv__resume(srv, sc);
}
