/* libtcpchat - what the server does with each incoming message: the
 * handshake (protocol 1 or 2), chat text to a room or a user, ping,
 * leave, types it does not know, the dispatch of the room requests, and
 * the decisions an application may take later (deferred JOIN, MESSAGE
 * room JOIN and KICK). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define QUIT_REASON_MAX 256 /* bytes of a goodbye's words */

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

void srv__req_error(tcpchat_server *srv, struct sconn *sc,
                    const tcpchat_msg *req, int err, const char *why)
{
	tcpchat_msg m = srv__error_msg(srv, sc, err, why, 0);
	if (sc->proto >= 2) {
		m.room = req->room;
		m.target = req->target;
		if (req->type == TCPCHAT_MSG_TEXT && srv__ref_ok(&req->ref))
			m.ref = req->ref;
	}
	srv__send_one(srv, sc, &m);
}

/* A failed handshake, logged at INFO (a client's mistake, or a name
 * taken, is no warning for the operator) with the name asked for, shown
 * safely (it may be no valid name), when there is one. */
static void log_handshake(tcpchat_server *srv, const struct sconn *sc,
                          const tcpchat_str *name, const char *why)
{
	if (!srv__logs(srv, TCPCHAT_LOG_INFO))
		return;
	if (!name || !name->len) {
		srv__log(srv, TCPCHAT_LOG_INFO,
		         "conn %llu: handshake failed: %s",
		         (unsigned long long)sc->id, why);
		return;
	}
	char shown[TCPCHAT_NAME_MAX + 1];
	size_t n = TC_MIN(name->len, TCPCHAT_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name->ptr[i];
		shown[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
	}
	shown[n] = '\0';
	srv__log(srv, TCPCHAT_LOG_INFO, "conn %llu: name '%s%s' refused: %s",
	         (unsigned long long)sc->id, shown, name->len > n ? "..." : "",
	         why);
}

static void handshake_fail(tcpchat_server *srv, struct sconn *sc, int err,
                           const tcpchat_str *name, const char *why)
{
	log_handshake(srv, sc, name, why);
	srv__fail(sc, TCPCHAT_REASON_ERROR, err, why);
}

void srv__refuse_join(tcpchat_server *srv, struct sconn *sc, int err,
                      const tcpchat_str *name, const char *why)
{
	srv->st.refused++;
	handshake_fail(srv, sc, err, name, why);
}

/* The user is in: WELCOME to them; the default room, whose members are
 * told. */
void srv__complete_join(tcpchat_server *srv, struct sconn *sc)
{
	if (srv->cl && !sc->claimed) {
		/* The name is claimed cluster-wide first: this comes again
		 * with the answer. */
		int rc = srv__cluster_claim(srv, sc);
		if (rc) {
			tcpchat_str name = {sc->name, sc->name_len};
			srv__refuse_join(srv, sc, rc, &name,
			                 rc == TCPCHAT_EBUS
			                         ? "the cluster cannot be "
			                           "reached: try again"
			                         : "server out of memory");
		}
		return;
	}
	sc->state = S_JOINED;
	sc->c.dflags = 0;
	dl_del(&sc->member);
	dl_push(&srv->members, &sc->member);
	srv->nusers++;
	srv->st.users = srv->nusers;
	srv__touch(srv, sc);
	srv__arm_idle(srv, sc);
	srv__log(srv, TCPCHAT_LOG_DEBUG,
	         "conn %llu: %s joined (protocol %u, %s)",
	         (unsigned long long)sc->id, sc->name, (unsigned)sc->proto,
	         sc->c.codec->name);

	tcpchat_msg w = {.type = TCPCHAT_MSG_WELCOME};
	w.code = sc->proto;
	w.timestamp = srv->wall_ms;
	w.sender.ptr = sc->name;
	w.sender.len = sc->name_len;
	if (modern(sc)) {
		w.caps = TCPCHAT_CAP_BASE;
		w.max_frame = (uint64_t)srv->max_frame;
		w.queue_frames = (uint64_t)srv->queue_frames;
		w.queue_bytes = (uint64_t)srv->queue_bytes;
	}
	if (sc->proto >= 2) {
		w.caps |= TCPCHAT_CAP_ROOMS | TCPCHAT_CAP_HISTORY;
		if (srv->lobby) {
			srv__room_stamp(srv, srv->lobby, &w);
			srv__room_mark(srv, srv->lobby, &w);
		}
	}
	srv__send_one(srv, sc, &w);
	if (srv->cl)
		srv__cluster_online(srv, sc);
	/* A HELLO with AFTER resumes the default room once in it. */
	struct held_msg *h = sc->held;
	sc->held = NULL;
	if (srv->lobby &&
	    srv__join_room(srv, sc, srv->lobby->name, srv->lobby->name_len,
	                   JOIN_LOGIN, h ? &h->m : NULL) != 0)
		srv__fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_ENOMEM,
		          "server out of memory");
	free(h);
}

/* A HELLO that resumes the default room: what it asks is kept until the
 * user is in.  Returns 0, or 1 after closing sc (no memory). */
static int keep_resume(tcpchat_server *srv, struct sconn *sc,
                       const tcpchat_msg *m)
{
	if (!(m->flags & TCPCHAT_MSGF_AFTER) || sc->proto < 2 || !srv->lobby)
		return 0;
	struct held_msg *h = malloc(sizeof *h);
	if (!h) {
		srv__fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_ENOMEM,
		          "server out of memory");
		return 1;
	}
	memset(h, 0, sizeof *h);
	h->m.type = TCPCHAT_MSG_HELLO;
	h->m.flags = TCPCHAT_MSGF_AFTER;
	h->m.seq = m->seq;
	h->m.epoch = m->epoch;
	sc->held = h;
	return 0;
}

static int on_hello(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	if (m->type != TCPCHAT_MSG_HELLO) {
		srv->st.proto++;
		handshake_fail(srv, sc, TCPCHAT_EPROTO, NULL, "expected HELLO");
		return 1;
	}
	sc->peer_caps =
	        (uint8_t)(m->caps & (TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS |
	                             TCPCHAT_CAP_HISTORY));
	if (m->code < 1 || (m->code == 1 && !srv->lobby)) {
		srv->st.proto++;
		handshake_fail(srv, sc, TCPCHAT_EVERSION, NULL,
		               m->code == 1
		                       ? "this server needs protocol 2: it "
		                         "has no default room"
		                       : "unsupported protocol version "
		                         "(this server speaks 1 and 2)");
		return 1;
	}
	/* A newer client is answered in the highest version both know. */
	sc->proto = (uint8_t)TC_MIN(m->code, TCPCHAT_PROTOCOL_VERSION);
	if (tcpchat_name_check(m->sender.ptr, m->sender.len) != 0) {
		srv__refuse_join(
		        srv, sc, TCPCHAT_EBADNAME, &m->sender,
		        "invalid name: use 1-32 bytes of printable UTF-8 "
		        "without spaces");
		return 1;
	}
	if (m->body.len > TCPCHAT_CREDENTIAL_MAX ||
	    (m->body.len && !util__text_ok(m->body.ptr, m->body.len))) {
		/* The name is logged, never the credential. */
		srv__refuse_join(
		        srv, sc, TCPCHAT_EREFUSED, &m->sender,
		        "invalid credential: use at most 1024 bytes of "
		        "UTF-8 without control characters");
		return 1;
	}
	if (srv__name_find(srv, m->sender.ptr, m->sender.len) ||
	    (srv->cl &&
	     srv__cluster_name_taken(srv, m->sender.ptr, m->sender.len))) {
		srv__refuse_join(srv, sc, TCPCHAT_ENAMEINUSE, &m->sender,
		                 "name already in use");
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
	if (keep_resume(srv, sc, m))
		return 1;

	tcpchat_server_event ev;
	srv__conn_event(sc, &ev, TCPCHAT_SEV_JOIN);
	ev.credential = m->body;
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
		srv__refuse_join(srv, sc, TCPCHAT_EREFUSED, &m->sender, why);
		return 1;
	}
	srv__complete_join(srv, sc);
	return sc->cl_wait;
}

/* Keeps a copy of a message (a stamped TEXT, or a JOIN request) while
 * the application decides, and pauses the user's input.  Returns 1, or 0
 * after an ERROR when there is no memory for it. */
int srv__hold(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m)
{
	size_t n = m->body.len + m->room.len + m->target.len + m->ref.len;
	struct held_msg *h = malloc(sizeof *h + n);
	if (!h) {
		srv__send_error(srv, sc, TCPCHAT_ENOMEM, "server out of memory",
		                0);
		return 0;
	}
	h->m = *m;
	char *p = h->data;
	tcpchat_str *strs[] = {&h->m.body, &h->m.room, &h->m.target, &h->m.ref};
	for (size_t i = 0; i < TC_ARRAY_LEN(strs); i++) {
		if (strs[i]->len)
			memcpy(p, strs[i]->ptr, strs[i]->len);
		strs[i]->ptr = p;
		p += strs[i]->len;
	}
	h->m.sender.ptr = sc->name;
	sc->held = h;
	srv__pause(srv, sc);
	return 1;
}

/* Where a TEXT from sc goes: the room *r, or the user *to for a private
 * message.  Returns 0, or 1 after a non-fatal ERROR. */
static int text_dest(tcpchat_server *srv, struct sconn *sc,
                     const tcpchat_msg *m, struct room **r, struct sconn **to)
{
	*r = NULL;
	*to = NULL;
	if (sc->proto < 2) {
		if (m->room.len || m->target.len) {
			srv__req_error(srv, sc, m, TCPCHAT_ENOTSUP,
			               "rooms and private messages need "
			               "protocol 2");
			return 1;
		}
		*r = srv->lobby; /* a protocol-1 user never leaves it */
		return 0;
	}
	if (m->room.len && m->target.len) {
		srv__req_error(srv, sc, m, TCPCHAT_EBADMSG,
		               "a message has a room or a target, not both");
		return 1;
	}
	if (m->target.len)
		return srv__private_target(srv, sc, m, to);
	*r = sc->cur;
	if (m->room.len) {
		if (tcpchat_room_check(m->room.ptr, m->room.len) != 0) {
			srv__req_error(srv, sc, m, TCPCHAT_EBADROOM,
			               tcpchat_strerror(TCPCHAT_EBADROOM));
			return 1;
		}
		*r = srv__room_find(srv, m->room.ptr, m->room.len);
	} else if (!*r) {
		srv__req_error(srv, sc, m, TCPCHAT_ENOTMEMBER,
		               "you are not in any room: join one first");
		return 1;
	}
	if (!*r || !srv__member_of(sc, *r)) {
		srv__req_error(srv, sc, m, TCPCHAT_ENOTMEMBER,
		               "you are not in that room");
		return 1;
	}
	return 0;
}

/* Sends a stamped TEXT on its way, to room r or to user to; its ref (if
 * any) is the sender's alone: the others get the text without it. */
static void post_text(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *out,
                      struct room *r, struct sconn *to)
{
	tcpchat_str ref = out->ref;
	out->ref.ptr = NULL;
	out->ref.len = 0;
	if (r) {
		srv__room_post(srv, r, out, sc, ref);
		return;
	}
	if (to) {
		out->target.ptr = to->name;
		out->target.len = to->name_len;
		srv__private_deliver(srv, sc, to, out);
	} else {
		int rc = srv__cluster_private(srv, sc, out);
		if (rc) {
			out->ref = ref;
			srv__req_error(
			        srv, sc, out, rc,
			        rc == TCPCHAT_EBUS
			                ? "that user is on another server "
			                  "and the cluster bus is down"
			                : tcpchat_strerror(rc));
			return;
		}
	}
	if (ref.len && sc->state == S_JOINED) {
		out->ref = ref;
		srv__ack_send(srv, sc, srv__ack_new(srv, sc, out, 0), out);
	}
}

/* A TEXT with a ref: a bad one is refused, a known one (a resend) gets
 * its first ACK again.  Returns 1 when the text is answered so. */
static int ref_answered(tcpchat_server *srv, struct sconn *sc,
                        const tcpchat_msg *m)
{
	if (!m->ref.len)
		return 0;
	if (sc->proto < 2 || !srv__ref_ok(&m->ref)) {
		srv__req_error(srv, sc, m, TCPCHAT_EBADMSG,
		               sc->proto < 2 ? "references need protocol 2"
		                             : "a reference is 1-64 bytes of "
		                               "UTF-8 without control "
		                               "characters");
		return 1;
	}
	const struct ack_rec *a = srv__ack_find(srv, sc, &m->ref);
	if (!a)
		return 0;
	srv__ack_again(srv, sc, a);
	return 1;
}

static int on_text(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m)
{
	if (!util__chat_text_ok(m->body.ptr, m->body.len)) {
		srv__req_error(
		        srv, sc, m, TCPCHAT_EBADMSG,
		        "message must be UTF-8 text, not empty or blank, "
		        "without control characters");
		return 0;
	}
	if (ref_answered(srv, sc, m))
		return sc->state == S_DEAD;
	struct room *r;
	struct sconn *to;
	if (text_dest(srv, sc, m, &r, &to))
		return sc->state == S_DEAD;
	tcpchat_msg out = {.type = TCPCHAT_MSG_TEXT};
	out.id = ++srv->next_msg_id;
	out.timestamp = srv->wall_ms;
	out.sender.ptr = sc->name;
	out.sender.len = sc->name_len;
	out.body = m->body;
	out.ref = m->ref;
	if (r) {
		srv__room_stamp(srv, r, &out);
	} else if (to) {
		out.target.ptr = to->name;
		out.target.len = to->name_len;
	} else {
		out.target = m->target; /* a user of another server */
	}
	if (srv->handler) {
		tcpchat_server_event ev;
		srv__conn_event(sc, &ev, TCPCHAT_SEV_MESSAGE);
		ev.msg = &out;
		int verdict = srv__emit(srv, &ev);
		if (sc->state == S_DEAD)
			return 1;
		if (verdict == TCPCHAT_DEFER)
			return srv__hold(srv, sc, &out);
		if (verdict) {
			srv__req_error(srv, sc, &out, TCPCHAT_EREFUSED,
			               ev.refuse_reason ? ev.refuse_reason
			                                : "message refused");
			return 0;
		}
	}
	post_text(srv, sc, &out, r, to);
	return sc->state == S_DEAD;
}

/* LEAVE: the user says goodbye, maybe with a few words for the others. */
static int on_quit(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m)
{
	char why[QUIT_REASON_MAX + 1] = "quit";
	if (sc->proto >= 2 && util__chat_text_ok(m->body.ptr, m->body.len)) {
		size_t n = util__utf8_cut(m->body.ptr, m->body.len,
		                          QUIT_REASON_MAX);
		memcpy(why, m->body.ptr, n);
		why[n] = '\0';
	}
	srv__close(sc, TCPCHAT_REASON_QUIT, 0, why);
	return 1;
}

static int unexpected(tcpchat_server *srv, struct sconn *sc,
                      const tcpchat_msg *m)
{
	char why[64];
	snprintf(why, sizeof why, "unexpected %s message",
	         tcpchat_msg_type_name((int)m->type));
	srv->st.proto++;
	srv__log(srv, TCPCHAT_LOG_INFO, "conn %llu: protocol error: %s",
	         (unsigned long long)sc->id, why);
	srv__fail(sc, TCPCHAT_REASON_ERROR, TCPCHAT_EPROTO, why);
	return 1;
}

int srv__on_msg(void *ctx, tcpchat_msg *m)
{
	struct sconn *sc = ctx;
	tcpchat_server *srv = sc->srv;
	srv->st.in++;
	sc->in_msgs++;
	if (sc->state == S_HANDSHAKE)
		return on_hello(srv, sc, m);
	if (sc->state != S_JOINED)
		return 0; /* draining on shutdown: ignore */
	size_t fb = srv->reading == sc ? srv->read_res->frame : m->body.len;
	int limited = srv__rate_charge(srv, sc, m, fb);
	srv__touch(srv, sc);
	if (limited)
		return sc->state == S_DEAD;
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
		srv__on_who(srv, sc, m);
		return sc->state == S_DEAD;
	case TCPCHAT_MSG_LEAVE:
		if (sc->proto >= 2 &&
		    (m->room.len || m->code == TCPCHAT_REASON_PART))
			return srv__on_part(srv, sc, m);
		return on_quit(srv, sc, m);
	case TCPCHAT_MSG_HELLO:
	case TCPCHAT_MSG_WELCOME:
		return unexpected(srv, sc, m);
	default:
		break;
	}
	if (sc->proto >= 2) {
		switch (m->type) {
		case TCPCHAT_MSG_JOIN:
			return srv__on_join(srv, sc, m);
		case TCPCHAT_MSG_TOPIC:
			return srv__on_topic(srv, sc, m);
		case TCPCHAT_MSG_ROOMS:
			srv__on_rooms(srv, sc);
			return sc->state == S_DEAD;
		case TCPCHAT_MSG_HISTORY:
			srv__on_history(srv, sc, m);
			return sc->state == S_DEAD;
		case TCPCHAT_MSG_KICK:
			return srv__on_kick(srv, sc, m);
		default:
			break;
		}
	} else if (m->type == TCPCHAT_MSG_JOIN) {
		return unexpected(srv, sc, m); /* a protocol-1 client's JOIN */
	}
	if (srv__people_answer(srv, sc, m))
		return sc->state == S_DEAD;
	/* A newer peer's message: say so, and go on. */
	srv__log(srv, TCPCHAT_LOG_DEBUG, "conn %llu: unknown message type %u",
	         (unsigned long long)sc->id, (unsigned)m->type);
	srv__send_error(srv, sc, TCPCHAT_ENOTYPE, "unknown message type", 0);
	return 0;
}

/* A bad frame from sc: the client's error (logged at INFO), which ends
 * its connection.  Its ERROR and the others' LEAVE say what happened, a
 * frame too large with the limit. */
void srv__bad_frame(tcpchat_server *srv, struct sconn *sc, int rc,
                    const char *error)
{
	char why[96], who[SRV_WHO_MAX];
	if (rc == TCPCHAT_EMSGSIZE)
		snprintf(why, sizeof why, "%s, the limit is %lld bytes",
		         sc->c.codec == tcpchat_codec_line()
		                 ? "line too long"
		                 : "frame too large",
		         srv->max_frame);
	else
		snprintf(why, sizeof why, "%s",
		         error ? error : tcpchat_strerror(rc));
	srv->st.proto++;
	srv__log(srv, TCPCHAT_LOG_INFO, "%s: protocol error: %s",
	         srv__who(sc, who, sizeof who), why);
	srv__fail(sc, TCPCHAT_REASON_ERROR, rc, why);
}

void srv__on_readable(tcpchat_server *srv, struct sconn *sc)
{
	struct conn_read_result res;
	if (srv->inputs == 0) /* the first input of this wait: what it
	                         stamps is of now, not of the last wake */
		srv->wall_ms = util__wall_ms();
	srv->reading = sc; /* a close meanwhile counts these bytes too */
	srv->read_res = &res;
	int rc = conn__read(&sc->c, &srv->sh, (size_t)srv->max_frame,
	                    srv__on_msg, sc, &res);
	srv->reading = NULL;
	srv->st.bytes_in += res.bytes;
	sc->in_bytes += res.bytes;
	if (rc == 0 || rc == 1 || sc->state == S_DEAD)
		return;
	if (rc == TCPCHAT_EPROTO || rc == TCPCHAT_EMSGSIZE)
		srv__bad_frame(srv, sc, rc, res.error);
	else
		srv__lost(sc, rc);
}

/* The application's answer to a deferred JOIN or MESSAGE. */
void srv__decide(tcpchat_server *srv, struct sconn *sc, int accept,
                 const char *reason)
{
	if (sc->state == S_JOINING && sc->cl_wait) {
		srv__log(
		        srv, TCPCHAT_LOG_DEBUG,
		        "conn %llu: decided already, its name is being claimed",
		        (unsigned long long)sc->id);
		return;
	}
	if (sc->state == S_JOINING) {
		if (!accept) {
			tcpchat_str name = {sc->name, sc->name_len};
			srv__refuse_join(srv, sc, TCPCHAT_EREFUSED, &name,
			                 reason ? reason
			                        : "refused by the server");
			return;
		}
		srv__complete_join(srv, sc);
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
	if (h->m.type == TCPCHAT_MSG_KICK) {
		srv__kick_decided(srv, sc, &h->m, accept, reason);
	} else if (!accept) {
		srv__req_error(srv, sc, &h->m, TCPCHAT_EREFUSED,
		               reason ? reason
		               : h->m.type == TCPCHAT_MSG_JOIN
		                       ? "refused by the server"
		                       : "message refused");
	} else if (h->m.type == TCPCHAT_MSG_JOIN) {
		if (!srv__join_banned(
		            srv, sc,
		            srv__room_find(srv, h->m.room.ptr, h->m.room.len),
		            &h->m))
			srv__join_room(srv, sc, h->m.room.ptr, h->m.room.len,
			               JOIN_ASKED,
			               h->m.flags & TCPCHAT_MSGF_AFTER ? &h->m
			                                               : NULL);
	} else {
		/* Where it goes is looked up again: the room or the target
		 * may have gone meanwhile. */
		struct room *r;
		struct sconn *to;
		tcpchat_msg req = h->m;
		if (sc->proto < 2) /* stamped with the default room */
			req.room.len = 0;
		if (text_dest(srv, sc, &req, &r, &to) == 0) {
			/* Stamped again, so that ids keep increasing. */
			h->m.id = ++srv->next_msg_id;
			h->m.timestamp = srv->wall_ms;
			post_text(srv, sc, &h->m, r, to);
		}
	}
	free(h);
	srv__resume(srv, sc);
}
