/* Helpers for the client suites: a recording client, a server with a
 * fixed epoch, a TCP proxy. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clientutil.h"

/* ---- the recording client ------------------------------------------------ */

static void copy_view(char *dst, size_t cap, tcpchat_str s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	if (n)
		memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}

static void record_msg(struct cu_ev *e, const tcpchat_msg *m)
{
	e->has_msg = 1;
	e->mtype = m->type;
	e->code = m->code;
	e->flags = m->flags;
	e->id = m->id;
	e->seq = m->seq;
	e->epoch = m->epoch;
	e->first = m->first;
	e->last = m->last;
	e->oldest = m->oldest;
	copy_view(e->sender, sizeof e->sender, m->sender);
	copy_view(e->room, sizeof e->room, m->room);
	copy_view(e->target, sizeof e->target, m->target);
	copy_view(e->body, sizeof e->body, m->body);
	copy_view(e->ref, sizeof e->ref, m->ref);
}

static int handler(tcpchat_client *cli, const tcpchat_client_event *ev,
                   void *ud)
{
	struct cu_rec *r = ud;
	pthread_mutex_lock(&r->mu);
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->v = realloc(r->v, r->cap * sizeof *r->v);
		ck_assert_ptr_nonnull(r->v);
	}
	struct cu_ev *e = &r->v[r->n];
	memset(e, 0, sizeof *e);
	e->type = ev->type;
	e->error = ev->error;
	e->reason = ev->reason;
	e->attempt = ev->attempt;
	e->delay_ms = ev->delay_ms;
	if (ev->msg)
		record_msg(e, ev->msg);
	copy_view(e->evroom, sizeof e->evroom, ev->room);
	if (ev->type == TCPCHAT_CEV_LOG && ev->text)
		snprintf(e->body, sizeof e->body, "%s", ev->text);
	else if (ev->text)
		snprintf(e->text, sizeof e->text, "%s", ev->text);
	if (r->watch[0])
		r->watch_rc = tcpchat_client_room_position(
		        cli, r->watch, &r->watch_epoch, &r->watch_seq);
	tcpchat_client_current_room(cli, r->current, sizeof r->current);
	r->n++;
	pthread_mutex_unlock(&r->mu);
	return 0;
}

void cu_init(struct cu_rec *r, const char *watch)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
	if (watch)
		snprintf(r->watch, sizeof r->watch, "%s", watch);
	ck_assert_int_eq(tcpchat_client_new(&r->cli), 0);
	tcpchat_client_set_handler(r->cli, handler, r);
	ck_assert_int_eq(tcpchat_client_set_option(r->cli,
	                                           TCPCHAT_COPT_CONNECT_TIMEOUT,
	                                           TU_TIMEOUT),
	                 0);
	ck_assert_int_eq(tcpchat_client_set_option(r->cli,
	                                           TCPCHAT_COPT_LOG_LEVEL,
	                                           TCPCHAT_LOG_DEBUG),
	                 0);
}

void cu_fini(struct cu_rec *r)
{
	tcpchat_client_destroy(r->cli);
	free(r->v);
	pthread_mutex_destroy(&r->mu);
}

void cu_start(struct cu_rec *r, int port, const char *name)
{
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	ck_assert_int_eq(tcpchat_client_connect(r->cli, addr, name), 0);
	ck_assert_int_eq(tcpchat_client_start(r->cli), 0);
	struct cu_want w = {.type = TCPCHAT_CEV_CONNECTED};
	ck_assert_msg(cu_wait(r, &w, 1), "%s did not connect", name);
}

void cu_stop(struct cu_rec *r)
{
	tcpchat_client_stop(r->cli);
	ck_assert_int_eq(tcpchat_client_join(r->cli), 0);
}

static int str_ok(const char *want, const char *got)
{
	return !want || strcmp(want, got) == 0;
}

static int match(const struct cu_want *w, const struct cu_ev *e)
{
	return (!w->type || e->type == w->type) &&
	       (!w->mtype || (e->has_msg && e->mtype == w->mtype)) &&
	       (e->flags & w->flags) == w->flags && str_ok(w->room, e->room) &&
	       str_ok(w->sender, e->sender) && str_ok(w->body, e->body) &&
	       str_ok(w->ref, e->ref);
}

long cu_index(struct cu_rec *r, const struct cu_want *w, int nth)
{
	long at = -1;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (match(w, &r->v[i]) && nth-- == 0) {
			at = (long)i;
			break;
		}
	pthread_mutex_unlock(&r->mu);
	return at;
}

int cu_count(struct cu_rec *r, const struct cu_want *w)
{
	int n = 0;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		n += match(w, &r->v[i]);
	pthread_mutex_unlock(&r->mu);
	return n;
}

struct wait_arg {
	struct cu_rec *r;
	const struct cu_want *w;
	int n;
};

static int cond_count(void *p)
{
	struct wait_arg *a = p;
	return cu_count(a->r, a->w) >= a->n;
}

int cu_wait(struct cu_rec *r, const struct cu_want *w, int n)
{
	struct wait_arg a = {r, w, n};
	return tu_wait_until(cond_count, &a, TU_TIMEOUT);
}

struct cu_ev cu_get(struct cu_rec *r, const struct cu_want *w, int nth)
{
	long i = cu_index(r, w, nth);
	ck_assert_msg(i >= 0, "no event #%d of type %d (msg %u, body %s)", nth,
	              w->type, w->mtype, w->body ? w->body : "-");
	pthread_mutex_lock(&r->mu);
	struct cu_ev e = r->v[i];
	pthread_mutex_unlock(&r->mu);
	return e;
}

struct cu_ev *cu_copy(struct cu_rec *r, size_t *n)
{
	pthread_mutex_lock(&r->mu);
	*n = r->n;
	struct cu_ev *v = malloc((r->n ? r->n : 1) * sizeof *v);
	if (v && r->n)
		memcpy(v, r->v, r->n * sizeof *v);
	pthread_mutex_unlock(&r->mu);
	ck_assert_ptr_nonnull(v);
	return v;
}

struct cu_pos cu_watch(struct cu_rec *r)
{
	struct cu_pos p;
	pthread_mutex_lock(&r->mu);
	p.rc = r->watch_rc;
	p.epoch = r->watch_epoch;
	p.seq = r->watch_seq;
	memcpy(p.current, r->current, sizeof p.current);
	pthread_mutex_unlock(&r->mu);
	return p;
}

void cu_dump(struct cu_rec *r)
{
	size_t n;
	struct cu_ev *v = cu_copy(r, &n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr,
		        "%zu: ev %d err %d msg %u flags %x room %s sender %s "
		        "body %s ref %s seq %llu epoch %llu first %llu last "
		        "%llu text %s\n",
		        i, v[i].type, v[i].error, v[i].mtype, v[i].flags,
		        v[i].room, v[i].sender, v[i].body, v[i].ref,
		        (unsigned long long)v[i].seq,
		        (unsigned long long)v[i].epoch,
		        (unsigned long long)v[i].first,
		        (unsigned long long)v[i].last, v[i].text);
	free(v);
}

struct cu_ev cu_wait_text(struct cu_rec *r, const char *body)
{
	struct cu_want w = {.type = TCPCHAT_CEV_MESSAGE,
	                    .mtype = TCPCHAT_MSG_TEXT,
	                    .body = body};
	if (!cu_wait(r, &w, 1))
		cu_dump(r);
	ck_assert_msg(cu_wait(r, &w, 1), "no text '%s'", body);
	return cu_get(r, &w, 0);
}

struct cu_ev cu_wait_ack(struct cu_rec *r, const char *ref)
{
	struct cu_want w = {.type = TCPCHAT_CEV_ACK, .ref = ref};
	ck_assert_msg(cu_wait(r, &w, 1), "no ACK event for '%s'", ref);
	return cu_get(r, &w, 0);
}

void cu_join(struct cu_rec *r, const char *name, const char *room)
{
	struct cu_want w = {.type = TCPCHAT_CEV_MESSAGE,
	                    .mtype = TCPCHAT_MSG_JOIN,
	                    .room = room,
	                    .sender = name};
	int before = cu_count(r, &w);
	ck_assert_int_eq(tcpchat_client_room_join(r->cli, room), 0);
	ck_assert_msg(cu_wait(r, &w, before + 1), "%s: no join of %s", name,
	              room);
}

tcpchat_server *cu_server(uint64_t epoch, long history_msgs, int *port)
{
	const tcpchat_codec *codecs[1] = {tcpchat_codec_binary()};
	tcpchat_server *srv = tu_server_new_codecs(codecs, 1, port);
	ck_assert_ptr_nonnull(srv);
	ck_assert_int_eq(tcpchat_server_set_option(srv, TCPCHAT_SOPT_EPOCH,
	                                           (long long)epoch),
	                 0);
	if (history_msgs)
		ck_assert_int_eq(
		        tcpchat_server_set_option(
		                srv, TCPCHAT_SOPT_HISTORY_MSGS, history_msgs),
		        0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	return srv;
}

void cu_duo_start(struct cu_duo *d, uint64_t epoch, long history_msgs,
                  const char *watch)
{
	d->srv = cu_server(epoch, history_msgs, &d->port);
	cu_init(&d->a, watch);
	cu_init(&d->b, NULL);
	cu_start(&d->a, d->port, "alice");
	cu_start(&d->b, d->port, "bob");
}

void cu_duo_stop(struct cu_duo *d)
{
	cu_stop(&d->a);
	cu_stop(&d->b);
	cu_fini(&d->a);
	cu_fini(&d->b);
	tu_server_stop(d->srv);
}

int cu_listen(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	socklen_t len = sizeof a;
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* ---- the proxy ------------------------------------------------------------ */

#define PROXY_MAX 16

struct pair {
	int down, up; /* the client's side, the server's side; -1: none */
};

static int dial_upstream(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void pair_close(struct pair *p)
{
	if (p->down >= 0)
		close(p->down);
	if (p->up >= 0)
		close(p->up);
	p->down = p->up = -1;
}

/* Copies what from has to to (dropped when drop).  0, or -1 when either
 * side is done. */
static int pump(int from, int to, int drop)
{
	char buf[16384];
	ssize_t n = recv(from, buf, sizeof buf, 0);
	if (n <= 0)
		return -1;
	for (ssize_t off = 0; !drop && off < n;) {
		ssize_t k =
		        send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
		if (k <= 0)
			return -1;
		off += k;
	}
	return 0;
}

static void proxy_accept(struct cu_proxy *p, struct pair *pairs)
{
	int fd = accept(p->lfd, NULL, NULL);
	if (fd < 0)
		return;
	int up = atomic_load(&p->refuse) ? -1 : dial_upstream(p->upstream);
	for (int i = 0; up >= 0 && i < PROXY_MAX; i++)
		if (pairs[i].down < 0) {
			pairs[i].down = fd;
			pairs[i].up = up;
			atomic_fetch_add(&p->accepted, 1);
			return;
		}
	if (up >= 0)
		close(up);
	close(fd);
}

static void *proxy_main(void *arg)
{
	struct cu_proxy *p = arg;
	struct pair pairs[PROXY_MAX];
	for (int i = 0; i < PROXY_MAX; i++)
		pairs[i].down = pairs[i].up = -1;
	int cuts = 0;
	while (!atomic_load(&p->quit)) {
		int want = atomic_load(&p->cut_req);
		if (want != cuts) {
			for (int i = 0; i < PROXY_MAX; i++)
				pair_close(&pairs[i]);
			cuts = want;
			atomic_store(&p->cut_done, cuts);
		}
		struct pollfd fds[2 + 2 * PROXY_MAX];
		int n = 0;
		fds[n++] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
		fds[n++] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
		for (int i = 0; i < PROXY_MAX; i++) {
			fds[n++] = (struct pollfd){.fd = pairs[i].down,
			                           .events = POLLIN};
			fds[n++] = (struct pollfd){.fd = pairs[i].up,
			                           .events = POLLIN};
		}
		if (poll(fds, (nfds_t)n, 1000) <= 0)
			continue;
		if (fds[1].revents) {
			char c[16];
			if (read(p->wake[0], c, sizeof c) < 0)
				continue;
		}
		if (fds[0].revents & POLLIN)
			proxy_accept(p, pairs);
		for (int i = 0; i < PROXY_MAX; i++) {
			struct pair *q = &pairs[i];
			short rd = fds[2 + 2 * i].revents;
			short ru = fds[3 + 2 * i].revents;
			if (q->down >= 0 && rd && pump(q->down, q->up, 0) < 0)
				pair_close(q);
			if (q->up >= 0 && ru &&
			    pump(q->up, q->down, atomic_load(&p->deaf)) < 0)
				pair_close(q);
		}
	}
	for (int i = 0; i < PROXY_MAX; i++)
		pair_close(&pairs[i]);
	return NULL;
}

void cu_proxy_start(struct cu_proxy *p, int upstream)
{
	memset(p, 0, sizeof *p);
	p->upstream = upstream;
	ck_assert_int_eq(pipe(p->wake), 0);
	p->lfd = cu_listen(&p->port);
	ck_assert_int_eq(pthread_create(&p->th, NULL, proxy_main, p), 0);
}

static void proxy_wake(struct cu_proxy *p)
{
	ck_assert_int_eq(write(p->wake[1], "x", 1), 1);
}

static int cond_cut(void *arg)
{
	struct cu_proxy *p = arg;
	return atomic_load(&p->cut_done) == atomic_load(&p->cut_req);
}

void cu_proxy_cut(struct cu_proxy *p)
{
	atomic_fetch_add(&p->cut_req, 1);
	proxy_wake(p);
	ck_assert(tu_wait_until(cond_cut, p, TU_TIMEOUT));
}

void cu_proxy_stop(struct cu_proxy *p)
{
	atomic_store(&p->quit, 1);
	proxy_wake(p);
	pthread_join(p->th, NULL);
	close(p->lfd);
	close(p->wake[0]);
	close(p->wake[1]);
}
