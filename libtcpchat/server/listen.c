/* libtcpchat - listeners: open, accept, refuse, and survive running out of
 * file descriptors. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server_int.h"

#define ACCEPT_BURST 64
#define ACCEPT_PAUSE_MS 100

/* A descriptor kept in reserve: closed to accept (and refuse) one
 * connection when the process has run out, so the loop does not spin on
 * a listener it cannot serve.  -1 if none could be had. */
int srv__spare_fd(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Refuses a connection of listener l before it starts, with an ERROR
 * in l's codec (a TLS peer gets no word: plaintext would only garble
 * its handshake, and a handshake costs what refusing saves). */
static void refuse_now(tcpchat_server *srv, int fd, const struct listener *l,
                       int err, const char *why)
{
	const tcpchat_codec *codec = l->codec;
	tcpchat_msg m = srv__error_msg(srv, NULL, err, why, 1);
	srv->sh.enc.len = 0;
	if (l->tls || codec->encode(codec->codec_data, &m, TCPCHAT_FROM_SERVER,
	                            &srv->sh.enc) != 0)
		srv->sh.enc.len = 0;
	srv->st.refused++;
	/* The peer hears of it now, before the iteration ends: count first. */
	srv__stats_publish(srv);
	transport__refuse(fd, srv->sh.enc.data, srv->sh.enc.len);
}

static void listeners_watch(tcpchat_server *srv, unsigned events)
{
	for (int i = 0; i < srv->nlisteners; i++)
		loop__set(&srv->loop, &srv->listeners[i]->w, events);
}

void srv__on_accept_timer(struct loop_timer *t)
{
	tcpchat_server *srv = t->data;
	if (srv->reserve_fd < 0)
		srv->reserve_fd = srv__spare_fd();
	if (!srv->stopping)
		listeners_watch(srv, LOOP_READ);
}

static void pause_accepting(tcpchat_server *srv)
{
	listeners_watch(srv, 0);
	loop__timer_start(&srv->loop, &srv->accept_timer, ACCEPT_PAUSE_MS, 0);
}

/* Out of descriptors: use the spare one to take the connection off the
 * queue and close it.  Returns 1 to go on accepting. */
static int out_of_fds(tcpchat_server *srv, struct listener *l)
{
	srv__log(srv, TCPCHAT_LOG_WARN, "accept: %s; refusing a connection",
	         strerror(errno));
	if (srv->reserve_fd >= 0) {
		close(srv->reserve_fd);
		int t = accept(l->fd, NULL, NULL);
		if (t >= 0)
			close(t);
		srv->reserve_fd = srv__spare_fd();
		srv->st.refused++;
		srv__stats_publish(srv);
		return 1;
	}
	pause_accepting(srv); /* no spare either: stop for a while */
	return 0;
}

/* Closes and frees a connection that never started. */
static void discard(tcpchat_server *srv, struct sconn *sc)
{
	if (sc->addr_counted)
		srv__peer_gone(srv, &sc->peer, 1);
	transport__close(&sc->c.tp, 0);
	free(sc);
}

static void take_one(tcpchat_server *srv, struct listener *l, int fd,
                     const union net_addr *peer, socklen_t plen)
{
	if (srv->nconns >= (uint64_t)srv->max_clients) {
		srv__log(srv, TCPCHAT_LOG_WARN,
		         "refusing a connection: server full (%llu)",
		         (unsigned long long)srv->nconns);
		refuse_now(srv, fd, l, TCPCHAT_EFULL, "server full");
		return;
	}
	int counted;
	const char *why = srv__peer_admit(srv, peer, &counted);
	if (why) {
		refuse_now(srv, fd, l, TCPCHAT_EFULL, why);
		return;
	}
	struct sconn *sc = srv__session_new(srv, l, fd, peer, plen);
	if (!sc) {
		if (counted)
			srv__peer_gone(srv, peer, 1);
		refuse_now(srv, fd, l, TCPCHAT_ENOMEM, "server out of memory");
		return;
	}
	sc->addr_counted = sc->addr_hs = counted ? 1 : 0;
	tcpchat_server_event ev;
	srv__conn_event(sc, &ev, TCPCHAT_SEV_CONNECT);
	if (srv__emit(srv, &ev)) {
		srv->st.refused++;
		srv__stats_publish(srv); /* the peer sees the close now */
		discard(srv, sc);
		return;
	}
	int rc = srv__session_start(srv, sc);
	if (rc) {
		srv__log(srv, TCPCHAT_LOG_ERROR,
		         "cannot watch a connection: %s",
		         rc == TCPCHAT_ESYS ? strerror(errno)
		                            : tcpchat_strerror(rc));
		discard(srv, sc);
		return;
	}
	if (srv__logs(srv, TCPCHAT_LOG_DEBUG)) {
		char from[64], on[64];
		srv__log(srv, TCPCHAT_LOG_DEBUG,
		         "conn %llu: accepted from %s on %s@%s",
		         (unsigned long long)sc->id,
		         net__addr_str(&sc->peer, from, sizeof from),
		         l->codec->name,
		         net__addr_str(&l->addr, on, sizeof on));
	}
	srv__keepalive(srv, sc, 1);
	srv__greet(srv, l, sc);
}

static void on_listen_io(struct loop_watcher *w, unsigned events)
{
	struct listener *l = w->data;
	tcpchat_server *srv = l->srv;
	TC_UNUSED(events);
	if (srv->stopping)
		return;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		union net_addr peer;
		socklen_t plen;
		int fd;
		if (net__accept(l->fd, &fd, &peer, &plen) != 0) {
			if (errno == EMFILE || errno == ENFILE) {
				if (out_of_fds(srv, l))
					continue;
				return;
			}
			if (errno == ECONNABORTED || errno == EINTR ||
			    errno == EPROTO)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				srv__log(srv, TCPCHAT_LOG_ERROR, "accept: %s",
				         strerror(errno));
			return;
		}
		take_one(srv, l, fd, &peer, plen);
	}
}

static int bind_one(tcpchat_server *srv, struct listener *l)
{
	int rc = net__listen(&l->addr, l->addr_len, (int)srv->backlog, &l->fd);
	if (rc)
		return rc;
	/* Remember the bound port, so a restart listens on the same one. */
	int port = net__local_port(l->fd);
	if (port > 0) {
		if (l->addr.sa.sa_family == AF_INET)
			l->addr.in4.sin_port = htons((uint16_t)port);
		else
			l->addr.in6.sin6_port = htons((uint16_t)port);
	}
	return 0;
}

static int watch_one(tcpchat_server *srv, struct listener *l)
{
	if (l->w.fd >= 0)
		return 0;
	return loop__watch(&srv->loop, &l->w, l->fd, LOOP_READ, on_listen_io,
	                   l);
}

int srv__open_listeners(tcpchat_server *srv)
{
	for (int i = 0; i < srv->nlisteners; i++) {
		struct listener *l = srv->listeners[i];
		if (l->fd < 0) {
			int rc = bind_one(srv, l);
			if (rc)
				return rc;
		}
		int rc = watch_one(srv, l);
		if (rc)
			return rc;
	}
	return 0;
}

void srv__close_listeners(tcpchat_server *srv)
{
	for (int i = 0; i < srv->nlisteners; i++) {
		struct listener *l = srv->listeners[i];
		loop__unwatch(&srv->loop, &l->w);
		if (l->fd >= 0) {
			close(l->fd);
			l->fd = -1;
		}
	}
	loop__timer_stop(&srv->loop, &srv->accept_timer);
}

void srv__free_listeners(tcpchat_server *srv)
{
	srv__close_listeners(srv);
	for (int i = 0; i < srv->nlisteners; i++) {
		frame__unref(srv->listeners[i]->greet);
		free(srv->listeners[i]);
	}
	srv->nlisteners = 0;
}

static int codec_ok(const tcpchat_codec *c)
{
	return c->abi >= 1 && c->abi <= TCPCHAT_CODEC_ABI && c->encode &&
	       c->decode && c->name;
}

int srv__add_listener(tcpchat_server *srv, const char *addr,
                      const tcpchat_codec *codec, int tls)
{
	if (!codec)
		codec = tcpchat_codec_binary();
	if (!codec_ok(codec) || srv->nlisteners == MAX_LISTENERS)
		return TCPCHAT_EINVAL;
	int slot = -1;
	for (int i = 0; i < srv->ncodecs; i++)
		if (srv->codecs[i] == codec)
			slot = i;
	if (slot < 0 && srv->ncodecs == MAX_CODECS)
		return TCPCHAT_EINVAL;
	struct net_addrs as;
	int rc = net__resolve(addr, 1, &as);
	if (rc)
		return rc;
	struct listener *l = calloc(1, sizeof *l);
	if (!l)
		return TCPCHAT_ENOMEM;
	l->srv = srv;
	l->codec = codec;
	l->tls = tls;
	l->w.fd = -1;
	/* Every address the name has, until one can be bound. */
	for (int i = 0; i < as.n; i++) {
		l->addr = as.a[i];
		l->addr_len = as.len[i];
		rc = bind_one(srv, l);
		if (rc == 0)
			break;
	}
	if (rc) {
		free(l);
		return rc;
	}
	if (srv->running && watch_one(srv, l) != 0) {
		close(l->fd);
		free(l);
		return TCPCHAT_ESYS;
	}
	if (slot < 0) {
		slot = srv->ncodecs++;
		srv->codecs[slot] = codec;
	}
	l->codec_slot = slot;
	srv->listeners[srv->nlisteners++] = l;
	return 0;
}

int srv__listener_port(const tcpchat_server *srv, int index)
{
	if (index < 0 || index >= srv->nlisteners)
		return TCPCHAT_EINVAL;
	const struct listener *l = srv->listeners[index];
	return ntohs(l->addr.sa.sa_family == AF_INET ? l->addr.in4.sin_port
	                                             : l->addr.in6.sin6_port);
}
