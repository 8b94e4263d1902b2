/* libtcpchat - the server object: creation and destruction, options,
 * events and logging, and one iteration of its loop, driven by the
 * shared run modes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h> /* malloc_trim */
#endif
#include <string.h>
#include <unistd.h>

#include "server_int.h"

#define INPUT_ROUNDS 2 /* extra non-blocking waits before output */
#define TRIM_AFTER_BYTES (256 * 1024)
#define TRIM_DELAY_MS 500
#define WAIT_CAP_MS 60000

/* ---- events and logging ------------------------------------------------ */

int srv__emit(tcpchat_server *srv, tcpchat_server_event *ev)
{
	if (!srv->handler)
		return 0;
	struct util_cb f;
	util__cb_enter(&f, srv);
	int rc = srv->handler(srv, ev, srv->userdata);
	util__cb_leave(&f);
	return rc;
}

void srv__log(tcpchat_server *srv, int level, const char *fmt, ...)
{
	if (!srv->handler || level > srv->log_level)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	tcpchat_server_event ev = {.type = TCPCHAT_SEV_LOG};
	ev.level = level;
	ev.text = line;
	srv__emit(srv, &ev);
}

const char *srv__who(const struct sconn *sc, char *buf, size_t cap)
{
	if (sc->name_len)
		snprintf(buf, cap, "conn %llu (%s)", (unsigned long long)sc->id,
		         sc->name);
	else
		snprintf(buf, cap, "conn %llu", (unsigned long long)sc->id);
	return buf;
}

void srv__conn_event(struct sconn *sc, tcpchat_server_event *ev, int type)
{
	memset(ev, 0, sizeof *ev);
	ev->type = type;
	ev->conn_id = sc->id;
	ev->peer = &sc->peer.sa;
	ev->peer_len = sc->peer.sa.sa_family == AF_INET6
	                       ? (socklen_t)sizeof sc->peer.in6
	                       : (socklen_t)sizeof sc->peer.in4;
	ev->name.ptr = sc->name;
	ev->name.len = sc->name_len;
	ev->codec = sc->c.codec->name;
	ev->protocol = sc->proto;
	ev->tls_subject = transport__peer_subject(&sc->c.tp);
}

/* ---- heap trimming (opt-in) -------------------------------------------- */

static void on_trim_timer(struct loop_timer *t)
{
	tcpchat_server *srv = t->data;
	if (srv->busy) { /* memory in use again soon: wait for a lull */
		loop__timer_start(&srv->loop, t, TRIM_DELAY_MS, 0);
		return;
	}
	srv->freed_bytes = 0;
#if defined(__GLIBC__)
	malloc_trim(0);
#endif
}

/* Counts memory given back by connections; with TRIM_HEAP set, past
 * TRIM_AFTER_BYTES the allocator is asked, a little later, to return free
 * pages to the system. */
void srv__note_freed(tcpchat_server *srv, size_t bytes)
{
	if (!srv->trim_heap)
		return;
	srv->freed_bytes += bytes;
	if (srv->freed_bytes >= TRIM_AFTER_BYTES &&
	    !loop__timer_armed(&srv->trim_timer))
		loop__timer_start(&srv->loop, &srv->trim_timer, TRIM_DELAY_MS,
		                  0);
}

/* ---- one iteration --------------------------------------------------- */

/* The wakeup fired: carry out what other threads asked for. */
static void on_wake(struct loop *l, void *data)
{
	tcpchat_server *srv = data;
	TC_UNUSED(l);
	srv->wall_ms = util__wall_ms();
	/* Read the stop request before taking the commands: what was posted
	 * before stop() is then carried out before the shutdown drops
	 * commands. */
	int stop = atomic_load(&srv->stop_req);
	srv__durable_reap(srv);
	srv__run_commands(srv);
	if (stop && !srv->stopping)
		srv__begin_shutdown(srv);
}

/* Under load, output waits a little for more input, so that one write per
 * connection carries several messages: the writes, one per recipient,
 * are what a delivery costs.  It waits only while another message is
 * expected in time (from the recent gap between messages), for at most
 * eight times what a flush costs and at most BATCH_US, and never in
 * host-driven mode (step() does not block).  Under a light load nothing
 * waits. */
static void coalesce(tcpchat_server *srv)
{
	int64_t now = util__now_us();
	/* With a store, texts go out when committed, not when read. */
	uint64_t *seen = srv->durable ? &srv->st.saved : &srv->st.in;
	uint64_t msgs = *seen - srv->in_seen;
	if (msgs) {
		int64_t gap = (now - srv->last_in_us) / (int64_t)msgs;
		srv->gap_us += (gap - srv->gap_us) / 8;
		srv->last_in_us = now;
		srv->in_seen = *seen;
	}
	if (!srv->batch_us || !srv->flush_head || !msgs || srv->stopping ||
	    srv->run.stepping)
		return;
	int64_t window = TC_MIN(srv->batch_us, 8 * srv->flush_us);
	int64_t until = now + window;
	while (srv->gap_us < until - now) {
		srv->inputs = 0;
		srv__durable_kick(srv); /* what came meanwhile, to the disk */
		if (loop__poll_us(&srv->loop, until - now) <= 0 || !srv->inputs)
			break;
		now = util__now_us();
	}
	srv->in_seen = *seen;
	srv->last_in_us = util__now_us();
}

static int iterate(void *obj, int timeout_ms)
{
	tcpchat_server *srv = obj;
	srv->inputs = 0;
	int n = loop__poll(&srv->loop, timeout_ms);
	if (n < 0)
		return n;
	srv->wall_ms = util__wall_ms();
	srv->busy = n > 0;
	/* Output waits for the end of the iteration.  While input keeps
	 * arriving, take a little more first (without blocking), so that
	 * messages that arrive together leave together in one write: one
	 * empty wait costs less than the writes that one more message in
	 * the batch saves. */
	for (int round = 0; srv->inputs && round < INPUT_ROUNDS; round++) {
		srv->inputs = 0;
		if (loop__poll(&srv->loop, 0) < 0)
			break;
	}
	coalesce(srv);
	if (srv->cl)
		srv__cluster_reap(srv);
	loop__run_timers(&srv->loop);
	/* Published before the flush too, so that whatever a peer sees of
	 * this iteration's output is already counted. */
	srv__stats_publish(srv);
	srv__durable_kick(srv);
	int64_t f0 = srv->flush_head && srv->batch_us ? util__now_us() : 0;
	srv__flush_all(srv);
	if (f0) /* what a flush costs, smoothed */
		srv->flush_us += (util__now_us() - f0 - srv->flush_us) / 8;
	int rc = 0;
	if (srv->stopping) {
		/* Connections closed by finish_shutdown() are only counted
		 * out by the flush: test for the end after it. */
		srv__finish_shutdown(srv);
		srv__flush_all(srv);
		if (dl_empty(&srv->members) && srv->nconns == 0)
			rc = 1;
	}
	srv__stats_publish(srv);
	return rc;
}

static int timeout_ms(void *obj)
{
	tcpchat_server *srv = obj;
	return loop__timeout_ms(&srv->loop, WAIT_CAP_MS);
}

static int prepare(void *obj)
{
	/* Open the listeners on the caller's thread so that errors reach
	 * the caller of start(). */
	return srv__open_listeners(obj);
}

static int begin(void *obj)
{
	tcpchat_server *srv = obj;
	int rc = srv__open_listeners(srv);
	if (rc)
		return rc;
	srv->running = 1;
	srv->ran = 1;
	srv->stopping = 0;
	loop__update_now(&srv->loop);
	srv->wall_ms = util__wall_ms();
	srv__log(srv, TCPCHAT_LOG_INFO, "server running, %d listener(s)",
	         srv->nlisteners);
	return 0;
}

static int end(void *obj, int rc)
{
	tcpchat_server *srv = obj;
	srv->running = 0;
	srv->stopping = 0;
	loop__timer_stop(&srv->loop, &srv->stop_timer);
	atomic_store(&srv->stop_req, 0);
	srv__stats_publish(srv);
	srv__log(srv, TCPCHAT_LOG_INFO, "server stopped");
	return rc < 0 ? rc : 0;
}

static const struct runner_ops server_ops = {
        .begin = begin,
        .prepare = prepare,
        .iterate = iterate,
        .timeout_ms = timeout_ms,
        .end = end,
};

TCPCHAT_API int tcpchat_server_run(tcpchat_server *srv)
{
	return srv ? runner__run(&srv->run) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_server_start(tcpchat_server *srv)
{
	return srv ? runner__start(&srv->run) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_server_join(tcpchat_server *srv)
{
	return srv ? runner__join(&srv->run) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_server_step(tcpchat_server *srv)
{
	return srv ? runner__step(&srv->run) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_server_stop(tcpchat_server *srv)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	atomic_store(&srv->stop_req, 1);
	loop__wake(&srv->loop);
	return 0;
}

TCPCHAT_API int tcpchat_server_fd(const tcpchat_server *srv)
{
	return srv ? loop__fd(&srv->loop) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_server_timeout_ms(tcpchat_server *srv)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	if (!srv->running)
		return 0; /* step() must be called to start */
	return timeout_ms(srv);
}

/* ---- setup --------------------------------------------------------------- */

TCPCHAT_API int tcpchat_server_new(tcpchat_server **out)
{
	if (!out)
		return TCPCHAT_EINVAL;
	*out = NULL;
	tcpchat_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return TCPCHAT_ENOMEM;
	srv->max_clients = 10000;
	srv->max_frame = 65536;
	srv->queue_frames = 1024;
	srv->queue_bytes = 1 << 20;
	srv->policy = TCPCHAT_SLOW_DROP_NEWEST;
	srv->hs_timeout = 10000;
	srv->idle_timeout = 120000;
	srv__roomlog_epoch(srv);
	srv->shutdown_timeout = 2000;
	srv->log_level = TCPCHAT_LOG_INFO;
	srv->backlog = 511;
	srv->trim_heap = 0;
	srv->batch_us = 2000;
	srv->user_rooms = 64;
	srv->max_rooms = 10000;
	srv->announce_max = 100;
	srv->history_msgs = 1000;
	srv->history_bytes = 1 << 20;
	srv->ack_window = 120000;
	srv->ack_max = 65536;
	srv__peers_init(srv);
	srv->rate_msgs = 20;
	srv->rate_burst = 40;
	srv->rate_bytes = 65536;
	srv->rate_bytes_burst = 262144;
	srv->rate_kick = 10;
	dl_init(&srv->acks_age);
	srv->gap_us = INT32_MAX;
	atomic_init(&srv->max_frame_pub, srv->max_frame);
	dl_init(&srv->members);
	dl_init(&srv->pending);
	atomic_init(&srv->stop_req, 0);
	runner__init(&srv->run, &server_ops, srv);
	srv__dir_init(srv);
	int rc = srv__rooms_init(srv);
	if (rc == 0) {
		rc = loop__init(&srv->loop, on_wake, srv);
		if (rc)
			srv__rooms_fini(srv);
	}
	if (rc) {
		free(srv);
		return rc;
	}
	loop__timer_init(&srv->accept_timer, srv__on_accept_timer, srv);
	loop__timer_init(&srv->trim_timer, on_trim_timer, srv);
	loop__timer_init(&srv->stop_timer, srv__on_stop_timer, srv);
	rc = conn__shared_init(&srv->sh, (size_t)srv->max_frame);
	if (rc) {
		conn__shared_fini(&srv->sh);
		loop__fini(&srv->loop);
		srv__rooms_fini(srv);
		free(srv);
		return rc;
	}
	srv->reserve_fd = srv__spare_fd();
	srv__tls_init(srv);
	*out = srv;
	return 0;
}

TCPCHAT_API void tcpchat_server_destroy(tcpchat_server *srv)
{
	if (!srv)
		return;
	if (srv->run.has_thread) {
		srv->abort_stop = 1;
		tcpchat_server_stop(srv);
		runner__reap(&srv->run);
	}
	/* Close whatever is left, without events: the host is tearing the
	 * server down. */
	srv->handler = NULL;
	srv->stopping = 1; /* no LEAVE fan-out */
	struct dlist *lists[] = {&srv->members, &srv->pending};
	for (size_t i = 0; i < TC_ARRAY_LEN(lists); i++) {
		while (!dl_empty(lists[i])) {
			struct sconn *sc =
			        CONTAINER(lists[i]->next, struct sconn, member);
			conn__clear(&sc->c, &srv->sh); /* no last flush */
			srv__close(sc, TCPCHAT_REASON_SHUTDOWN,
			           TCPCHAT_ESHUTDOWN, "server destroyed");
		}
	}
	/* Closed connections wait in the flush list to be freed. */
	while (srv->flush_head) {
		struct sconn *sc = srv->flush_head;
		srv->flush_head = sc->fnext;
		srv__free(srv, sc);
	}
	while (srv->dead_head) {
		struct sconn *sc = srv->dead_head;
		srv->dead_head = sc->fnext;
		srv__free(srv, sc);
	}
	srv__free_listeners(srv);
	free(srv->greeting);
	srv__free_commands(srv);
	if (srv->reserve_fd >= 0)
		close(srv->reserve_fd);
	srv__cluster_fini(srv);
	srv__durable_close(srv);
	srv__acks_fini(srv);
	srv__dir_fini(srv);
	srv__peers_fini(srv);
	srv__rooms_fini(srv);
	conn__shared_fini(&srv->sh);
	loop__fini(&srv->loop);
	srv__tls_fini(srv);
	free(srv);
}

TCPCHAT_API int tcpchat_server_listen(tcpchat_server *srv, const char *addr,
                                      const tcpchat_codec *codec)
{
	if (!srv || !addr)
		return TCPCHAT_EINVAL;
	return srv__add_listener(srv, addr, codec, 0);
}

TCPCHAT_API int tcpchat_server_port(const tcpchat_server *srv, int index)
{
	return srv ? srv__listener_port(srv, index) : TCPCHAT_EINVAL;
}

TCPCHAT_API void tcpchat_server_set_handler(tcpchat_server *srv,
                                            tcpchat_server_handler fn,
                                            void *userdata)
{
	if (!srv)
		return;
	srv->handler = fn;
	srv->userdata = userdata;
}

#define SOPT(id, field, lo, hi)                                                \
	{                                                                      \
		TCPCHAT_SOPT_##id, offsetof(tcpchat_server, field), lo, hi     \
	}

static const struct util_opt server_opts[] = {
        SOPT(MAX_CLIENTS, max_clients, 1, INT32_MAX),
        SOPT(MAX_FRAME, max_frame, 64, 64 << 20),
        SOPT(QUEUE_FRAMES, queue_frames, 1, INT32_MAX),
        SOPT(QUEUE_BYTES, queue_bytes, 64, INT32_MAX),
        SOPT(SLOW_POLICY, policy, 0, TCPCHAT_SLOW_DISCONNECT),
        SOPT(HANDSHAKE_TIMEOUT, hs_timeout, 0, INT32_MAX),
        SOPT(IDLE_TIMEOUT, idle_timeout, 0, INT32_MAX),
        SOPT(SHUTDOWN_TIMEOUT, shutdown_timeout, 0, INT32_MAX),
        SOPT(LOG_LEVEL, log_level, 0, TCPCHAT_LOG_DEBUG),
        SOPT(BACKLOG, backlog, 1, 65535),
        SOPT(TRIM_HEAP, trim_heap, 0, 1),
        SOPT(BATCH_US, batch_us, 0, 1000000),
        SOPT(USER_ROOMS, user_rooms, 1, 65535),
        SOPT(MAX_ROOMS, max_rooms, 1, INT32_MAX),
        SOPT(ANNOUNCE_MAX, announce_max, 0, INT32_MAX),
        SOPT(EPOCH, epoch, 0, INT64_MAX),
        SOPT(HISTORY_MSGS, history_msgs, 0, 1 << 20),
        SOPT(HISTORY_BYTES, history_bytes, 0, INT32_MAX),
        SOPT(ACK_WINDOW, ack_window, 0, INT32_MAX),
        SOPT(ACK_MAX, ack_max, 0, INT32_MAX),
        SOPT(RETAIN_MSGS, retain_msgs, 0, INT64_MAX),
        SOPT(RETAIN_AGE, retain_age, 0, INT64_MAX),
        SOPT(ADDR_CONNS, addr_conns, 0, INT32_MAX),
        SOPT(ADDR_RATE, addr_rate, 0, INT32_MAX),
        SOPT(ADDR_BURST, addr_burst, 1, INT32_MAX),
        SOPT(ADDR_HANDSHAKES, addr_handshakes, 0, INT32_MAX),
        SOPT(RATE_MSGS, rate_msgs, 0, 1000000),
        SOPT(RATE_BURST, rate_burst, 1, 1000000),
        SOPT(RATE_BYTES, rate_bytes, 0, INT32_MAX),
        SOPT(RATE_BYTES_BURST, rate_bytes_burst, 64, INT32_MAX),
        SOPT(RATE_KICK, rate_kick, 0, 2000000),
};

TCPCHAT_API int tcpchat_server_set_option(tcpchat_server *srv, int option,
                                          long long value)
{
	if (srv && srv->durable && option == TCPCHAT_SOPT_EPOCH)
		return TCPCHAT_ESTATE; /* the store's */
	int rc = util__opt_set(srv, server_opts, TC_ARRAY_LEN(server_opts),
	                       option, value);
	if (rc)
		return rc;
	if (option == TCPCHAT_SOPT_MAX_FRAME)
		atomic_store(&srv->max_frame_pub, value);
	if (option == TCPCHAT_SOPT_EPOCH && value == 0)
		srv__roomlog_epoch(srv);
	if (option == TCPCHAT_SOPT_IDLE_TIMEOUT) {
		/* Applies at once: every user's timer, or TCP keepalive, is
		 * set anew. */
		struct dlist *lists[] = {&srv->members, &srv->pending};
		for (size_t i = 0; i < TC_ARRAY_LEN(lists); i++) {
			struct dlist *it;
			for (it = lists[i]->next; it != lists[i];
			     it = it->next) {
				struct sconn *sc =
				        CONTAINER(it, struct sconn, member);
				srv__keepalive(srv, sc, 0);
				if (sc->state == S_JOINED)
					srv__arm_idle(srv, sc);
			}
		}
	}
	return 0;
}

TCPCHAT_API int tcpchat_server_get_option(const tcpchat_server *srv, int option,
                                          long long *value)
{
	return util__opt_get(srv, server_opts, TC_ARRAY_LEN(server_opts),
	                     option, value);
}
