/* libtcpchat - a server connection's life: creation, its timer (the
 * handshake deadline, then the idle heartbeat) or TCP keepalive, closing
 * and freeing. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

/* Peers of a codec without PING are people: silence is no reason to
 * close them (TCP keepalive notices a peer that is gone). */
static int pinged_codec(const struct sconn *sc)
{
	return !(sc->c.codec->flags & TCPCHAT_CODEC_NO_PING);
}

static void on_io(struct loop_watcher *w, unsigned events)
{
	struct sconn *sc = w->data;
	tcpchat_server *srv = sc->srv;
	if (sc->state == S_DEAD)
		return;
	if (events & LOOP_WRITE)
		srv__do_flush(srv, sc);
	if (sc->state != S_DEAD && !sc->paused &&
	    ((events & (LOOP_READ | LOOP_ERROR)) ||
	     transport__pending(&sc->c.tp))) {
		srv__on_readable(srv, sc);
		srv->inputs++;
	}
	/* A TLS read may leave output to move (the handshake is done). */
	if (sc->state != S_DEAD &&
	    conn__interest(&sc->c, sc->c.w.events) != sc->c.w.events)
		srv__set_events(srv, sc, sc->c.w.events);
}

/* One timer per connection, re-armed lazily: input only notes the time
 * (srv__touch), and the timer, when it fires, works out whether the
 * deadline really passed.  So input costs no heap operation. */
static void on_timer(struct loop_timer *t)
{
	struct sconn *sc = t->data;
	tcpchat_server *srv = sc->srv;
	int64_t now = srv->loop.now;
	if (sc->state == S_HANDSHAKE || sc->state == S_JOINING) {
		if (srv->hs_timeout <= 0)
			return; /* turned off meanwhile */
		int64_t due = sc->since_ms + srv->hs_timeout;
		if (now < due) {
			loop__timer_at(&srv->loop, t, due);
			return;
		}
		srv__log(srv, TCPCHAT_LOG_INFO,
		         "conn %llu: handshake failed: handshake timeout",
		         (unsigned long long)sc->id);
		srv__fail(sc, TCPCHAT_REASON_TIMEOUT, TCPCHAT_ETIMEDOUT,
		          "handshake timeout");
		return;
	}
	if (sc->state != S_JOINED || srv->idle_timeout <= 0 ||
	    !pinged_codec(sc))
		return;
	int64_t half = sc->last_ms + srv->idle_timeout / 2;
	int64_t full = sc->last_ms + srv->idle_timeout;
	if (now < half) {
		loop__timer_at(&srv->loop, t, half);
	} else if (!sc->pinged) {
		sc->pinged = 1;
		tcpchat_msg p = {.type = TCPCHAT_MSG_PING};
		p.timestamp = srv->wall_ms;
		srv__send_one(srv, sc, &p);
		loop__timer_at(&srv->loop, t, full);
	} else if (now >= full) {
		srv__fail(sc, TCPCHAT_REASON_TIMEOUT, TCPCHAT_ETIMEDOUT,
		          "idle timeout");
	} else {
		loop__timer_at(&srv->loop, t, full);
	}
}

void srv__touch(tcpchat_server *srv, struct sconn *sc)
{
	sc->last_ms = srv->loop.now;
	sc->pinged = 0;
}

void srv__arm_idle(tcpchat_server *srv, struct sconn *sc)
{
	/* Armed first when the user is in: the handshake is over. */
	if (sc->addr_hs) {
		sc->addr_hs = 0;
		srv__peer_handshake_done(srv, &sc->peer);
	}
	if (srv->idle_timeout > 0 && pinged_codec(sc))
		loop__timer_at(&srv->loop, &sc->timer,
		               sc->last_ms + srv->idle_timeout / 2);
	else
		loop__timer_stop(&srv->loop, &sc->timer);
}

struct sconn *srv__session_new(tcpchat_server *srv, struct listener *l, int fd,
                               const union net_addr *peer, socklen_t plen)
{
	struct sconn *sc = calloc(1, sizeof *sc);
	if (!sc)
		return NULL;
	if (!l->tls) {
		transport__tcp(&sc->c.tp, fd);
	} else if (srv__tls_transport(srv, &sc->c.tp, fd) != 0) {
		free(sc);
		return NULL;
	}
	sc->c.w.fd = -1;
	sc->c.codec = l->codec;
	sc->c.dflags = TCPCHAT_HANDSHAKE;
	sc->srv = srv;
	sc->id = ++srv->next_conn_id;
	sc->codec_slot = (uint8_t)l->codec_slot;
	sc->peer = *peer;
	TC_UNUSED(plen); /* told by the family */
	sc->since_ms = sc->last_ms = srv->loop.now;
	sc->member.prev = sc->member.next = &sc->member;
	sc->state = S_HANDSHAKE;
	loop__timer_init(&sc->timer, on_timer, sc);
	return sc;
}

/* Registers a new session with the loop, the directory and the timers.
 * Returns 0, or an error after which the caller frees sc and closes fd. */
int srv__session_start(tcpchat_server *srv, struct sconn *sc)
{
	int rc = srv__id_insert(srv, sc);
	if (rc)
		return rc;
	rc = loop__watch(&srv->loop, &sc->c.w, sc->c.tp.fd, LOOP_READ, on_io,
	                 sc);
	if (rc == 0 && srv->hs_timeout > 0)
		rc = loop__timer_at(&srv->loop, &sc->timer,
		                    sc->since_ms + srv->hs_timeout);
	if (rc) {
		loop__unwatch(&srv->loop, &sc->c.w);
		srv__id_remove(srv, sc);
		return rc;
	}
	dl_push(&srv->pending, &sc->member);
	srv->nconns++;
	srv->st.clients = srv->nconns;
	srv->st.accepted++;
	return 0;
}

void srv__keepalive(tcpchat_server *srv, struct sconn *sc, int at_accept)
{
	if (pinged_codec(sc) || sc->c.tp.fd < 0 ||
	    (at_accept && srv->idle_timeout <= 0))
		return;
	if (net__keepalive(sc->c.tp.fd, srv->idle_timeout) != 0) {
		char who[SRV_WHO_MAX];
		srv__log(srv, TCPCHAT_LOG_WARN, "%s: TCP keepalive: %s",
		         srv__who(sc, who, sizeof who), strerror(errno));
	}
}

void srv__set_events(tcpchat_server *srv, struct sconn *sc, unsigned ev)
{
	if (sc->state == S_DEAD)
		return;
	if (sc->paused)
		ev &= ~LOOP_READ;
	loop__set(&srv->loop, &sc->c.w, conn__interest(&sc->c, ev));
}

void srv__pause(tcpchat_server *srv, struct sconn *sc)
{
	sc->paused = 1;
	srv__set_events(srv, sc, sc->c.w.events);
}

void srv__resume(tcpchat_server *srv, struct sconn *sc)
{
	if (!sc->paused || sc->state == S_DEAD || sc->cl_wait)
		return;
	sc->paused = 0;
	/* What arrived behind the message that waited is handled first. */
	struct conn_read_result res;
	int rc = conn__resume(&sc->c, &srv->sh, (size_t)srv->max_frame,
	                      srv__on_msg, sc, &res);
	if (sc->state == S_DEAD)
		return;
	if (rc < 0) {
		srv__bad_frame(srv, sc, rc, res.error);
		return;
	}
	if (!sc->paused) {
		srv__set_events(srv, sc, sc->c.w.events | LOOP_READ);
		if (transport__pending(&sc->c.tp))
			srv__on_readable(srv, sc); /* the loop would not say */
	}
}

/* "512 B", "1.2 kB", "3.4 MB" or "5.6 GB". */
static const char *size_str(uint64_t n, char *buf, size_t cap)
{
	static const char *const units[] = {"kB", "MB", "GB", "TB"};
	if (n < 1000) {
		snprintf(buf, cap, "%" PRIu64 " B", n);
		return buf;
	}
	double v = (double)n / 1000;
	size_t u = 0;
	while (v >= 1000 && u + 1 < TC_ARRAY_LEN(units)) {
		v /= 1000;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}

int srv__why_says_more(int reason, const char *why)
{
	return why && *why && reason != TCPCHAT_REASON_CLOSED &&
	       reason != TCPCHAT_REASON_SHUTDOWN &&
	       (reason != TCPCHAT_REASON_QUIT || strcmp(why, "quit") != 0);
}

/* The DEBUG line of a close: why, how long, and what went through. */
static void log_close(tcpchat_server *srv, const struct sconn *sc, int reason,
                      const char *why)
{
	char who[SRV_WHO_MAX], in[32], out[32];
	int more = srv__why_says_more(reason, why);
	uint64_t in_bytes = sc->in_bytes;
	if (srv->reading == sc) /* closed by what it sent */
		in_bytes += srv->read_res->bytes;
	srv__log(srv, TCPCHAT_LOG_DEBUG,
	         "%s: closed (%s%s%s) after %.1f s; in %" PRIu32
	         " msgs / %s, out %" PRIu32 " frames / %s, dropped %" PRIu64,
	         srv__who(sc, who, sizeof who), tcpchat_reason_name(reason),
	         more ? ": " : "", more ? why : "",
	         (double)(srv->loop.now - sc->since_ms) / 1000, sc->in_msgs,
	         size_str(in_bytes, in, sizeof in), sc->out_frames,
	         size_str(sc->out_bytes, out, sizeof out), sc->dropped);
}

void srv__close(struct sconn *sc, int reason, int error, const char *why)
{
	tcpchat_server *srv = sc->srv;
	if (sc->state == S_DEAD)
		return;
	if (srv__logs(srv, TCPCHAT_LOG_DEBUG))
		log_close(srv, sc, reason, why);
	int joined = sc->state == S_JOINED || sc->state == S_DRAINING;
	sc->state = S_DEAD;
	if (sc->addr_counted) {
		srv__peer_gone(srv, &sc->peer, sc->addr_hs);
		sc->addr_counted = sc->addr_hs = 0;
	}
	loop__timer_stop(&srv->loop, &sc->timer);
	dl_del(&sc->member);
	if (srv->cl)
		srv__cluster_offline(srv, sc, joined, reason, why);
	srv__name_remove(srv, sc);
	srv__id_remove(srv, sc);
	if (joined) {
		srv->nusers--;
		srv->st.users = srv->nusers;
	}
	free(sc->held);
	sc->held = NULL;
	tcpchat_server_event ev;
	srv__conn_event(sc, &ev,
	                joined ? TCPCHAT_SEV_LEAVE : TCPCHAT_SEV_DISCONNECT);
	ev.reason = reason;
	ev.error = error;
	ev.text = why;
	srv__emit(srv, &ev);
	/* A shutdown tells everyone; once one is asked for, a cascade of
	 * closes (a mass disconnect fans out a LEAVE per user to every
	 * other user) ends without more notices, so the stop is prompt. */
	if (joined && !srv->stopping &&
	    !atomic_load_explicit(&srv->stop_req, memory_order_relaxed))
		srv__announce_leave(srv, sc, reason, why);
	srv__members_clear(srv, sc);
	loop__unwatch(&srv->loop, &sc->c.w);
	if (reason == TCPCHAT_REASON_SLOW) {
		/* Nothing more of the chat: only the reason, if it fits. */
		conn__drop_unsent(&sc->c);
		srv__send_error(srv, sc, TCPCHAT_ESLOW, why, 1);
	}
	srv__want_flush(srv, sc); /* a last flush, then it is freed */
}

void srv__lost(struct sconn *sc, int rc)
{
	int e = rc == TCPCHAT_ESYS ? errno : 0;
	if (rc == TCPCHAT_ECLOSED || e == ECONNRESET)
		srv__close(sc, TCPCHAT_REASON_CLOSED, 0, "connection closed");
	else if (rc == TCPCHAT_ETLS)
		srv__tls_failed(sc);
	else if (e == ETIMEDOUT)
		srv__close(sc, TCPCHAT_REASON_TIMEOUT, TCPCHAT_ETIMEDOUT,
		           "peer not responding, TCP timeout");
	else
		srv__close(sc, TCPCHAT_REASON_ERROR, rc,
		           e ? strerror(e) : tcpchat_strerror(rc));
}

void srv__fail(struct sconn *sc, int reason, int err, const char *why)
{
	if (sc->state == S_DEAD)
		return;
	srv__send_error(sc->srv, sc, err, why, 1);
	srv__close(sc, reason, err, why);
}

void srv__free(tcpchat_server *srv, struct sconn *sc)
{
	transport__close(&sc->c.tp, 1);
	srv__note_freed(srv, sizeof *sc + sc->c.qcap * sizeof(struct frame *));
	conn__clear(&sc->c, &srv->sh);
	srv->nconns--;
	srv->st.clients = srv->nconns;
	free(sc);
}
