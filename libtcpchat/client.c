/* libtcpchat - the client: connect, handshake, send, receive, heartbeat,
 * goodbye. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "internal.h"
#include "loop.h"
#include "net.h"

enum cstate {
	C_IDLE,
	C_CONNECTING,
	C_HANDSHAKE,
	C_CONNECTED,
	C_CLOSING,
	C_DONE
};

struct ccmd {
	struct loop_cmd node; /* first */
	uint32_t type;        /* TCPCHAT_MSG_TEXT or TCPCHAT_MSG_WHO */
	size_t len;
	char text[];
};

struct tcpchat_client {
	struct loop loop;
	struct reader rd;
	struct conn c;
	long long connect_timeout, max_frame, queue_frames, queue_bytes;
	long long ping_interval, log_level, stop_timeout;
	tcpchat_client_handler handler;
	void *userdata;
	const tcpchat_codec *codec;
	char name[TCPCHAT_NAME_MAX + 1];
	size_t name_len;
	int state;
	int stop_seen, shut_wr;
	int last_error;        /* code of the last ERROR message received */
	char last_reason[256]; /* its text */
	int result;
	int64_t now_ms, deadline, last_rx_ms;
	int ping_sent;
	int has_thread, thread_rc, running;
	int stepping; /* a host loop drives this connection with step() */
	pthread_t thread;
	atomic_int stop_req, abort_req, alive, connected;
	/* what send() has posted and the loop not yet taken, and what is
	 * queued on the connection: the queue limits cover both */
	atomic_size_t cmd_frames, cmd_bytes, q_frames, q_bytes;
};

static void emit(tcpchat_client *cli, tcpchat_client_event *ev)
{
	if (!cli->handler)
		return;
	struct util_cb f;
	util__cb_enter(&f, cli);
	cli->handler(cli, ev, cli->userdata);
	util__cb_leave(&f);
}

static void clog_(tcpchat_client *cli, int level, const char *fmt, ...)
        TC_PRINTF(3, 4);
static void clog_(tcpchat_client *cli, int level, const char *fmt, ...)
{
	if (!cli->handler || level > cli->log_level)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	tcpchat_client_event ev = {.type = TCPCHAT_CEV_LOG};
	ev.level = level;
	ev.text = line;
	emit(cli, &ev);
}

static void publish_queue(tcpchat_client *cli)
{
	atomic_store_explicit(&cli->q_frames, cli->c.qcount,
	                      memory_order_relaxed);
	atomic_store_explicit(&cli->q_bytes, cli->c.qbytes,
	                      memory_order_relaxed);
}

static int reason_of(int err)
{
	switch (err) {
	case TCPCHAT_EKICKED:
		return TCPCHAT_REASON_KICKED;
	case TCPCHAT_ESHUTDOWN:
		return TCPCHAT_REASON_SHUTDOWN;
	case TCPCHAT_ESLOW:
		return TCPCHAT_REASON_SLOW;
	case TCPCHAT_ETIMEDOUT:
		return TCPCHAT_REASON_TIMEOUT;
	case 0:
		return TCPCHAT_REASON_CLOSED;
	default:
		return TCPCHAT_REASON_ERROR;
	}
}

/* Ends the connection and reports it once. */
static void finish(tcpchat_client *cli, int err, int reason, const char *why)
{
	if (cli->state == C_DONE || cli->state == C_IDLE)
		return;
	if (cli->c.fd >= 0) {
		loop__del(&cli->loop, cli->c.fd);
		close(cli->c.fd);
		cli->c.fd = -1;
	}
	conn__clear(&cli->c);
	publish_queue(cli);
	cli->state = C_DONE;
	cli->result = err;
	atomic_store(&cli->connected, 0);
	atomic_store(&cli->alive, 0);
	tcpchat_client_event ev = {.type = TCPCHAT_CEV_DISCONNECTED};
	ev.reason = reason;
	ev.error = err;
	ev.text = why;
	clog_(cli, err ? TCPCHAT_LOG_WARN : TCPCHAT_LOG_INFO,
	      "disconnected (%s): %s", tcpchat_reason_name(reason), why);
	emit(cli, &ev);
}

/* Ends the connection after an error or EOF, using what the server said
 * in its last ERROR message when it sent one. */
static void finish_remote(tcpchat_client *cli, int err, const char *why)
{
	if (cli->last_error) {
		finish(cli, cli->last_error, reason_of(cli->last_error),
		       cli->last_reason);
		return;
	}
	finish(cli, err,
	       err == TCPCHAT_ECLOSED ? TCPCHAT_REASON_CLOSED : reason_of(err),
	       why);
}

static int push_msg(tcpchat_client *cli, const tcpchat_msg *m)
{
	cli->rd.enc.len = 0;
	int rc = cli->codec->encode(cli->codec->codec_data, m, 0, &cli->rd.enc);
	if (rc)
		return rc;
	struct frame *f = frame__new(cli->rd.enc.data, cli->rd.enc.len);
	if (!f)
		return TCPCHAT_ENOMEM;
	rc = conn__push(&cli->c, f, UINT32_MAX, SIZE_MAX);
	frame__unref(f);
	publish_queue(cli);
	return rc;
}

static void begin_close(tcpchat_client *cli)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_LEAVE};
	m.code = TCPCHAT_REASON_QUIT;
	push_msg(cli, &m);
	cli->state = C_CLOSING;
	cli->deadline = cli->now_ms + cli->stop_timeout;
}

static void run_commands(tcpchat_client *cli);

/* ERROR codes after which the server keeps the connection open. */
static int nonfatal(int err)
{
	return err == TCPCHAT_EBADMSG || err == TCPCHAT_EREFUSED ||
	       err == TCPCHAT_ENOTFOUND || err == TCPCHAT_EMSGSIZE;
}

static int on_msg(void *ctx, tcpchat_msg *m)
{
	tcpchat_client *cli = ctx;
	cli->last_rx_ms = cli->now_ms;
	cli->ping_sent = 0;
	if (m->type == TCPCHAT_MSG_ERROR) {
		int err = m->code > 0 && m->code <= (uint32_t)-TCPCHAT_ERROR_MIN
		                  ? -(int)m->code
		                  : TCPCHAT_EPROTO;
		if (cli->state != C_HANDSHAKE && nonfatal(err)) {
			/* The connection goes on: not a reason to remember. */
			tcpchat_client_event ev = {.type = TCPCHAT_CEV_MESSAGE};
			ev.msg = m;
			emit(cli, &ev);
			return cli->state == C_DONE;
		}
		cli->last_error = err;
		size_t n = TC_MIN(m->body.len, sizeof cli->last_reason - 1);
		memcpy(cli->last_reason, m->body.ptr, n);
		cli->last_reason[n] = '\0';
		if (!n)
			snprintf(cli->last_reason, sizeof cli->last_reason,
			         "%s", tcpchat_strerror(cli->last_error));
	}
	if (cli->state == C_HANDSHAKE) {
		if (m->type == TCPCHAT_MSG_WELCOME) {
			cli->state = C_CONNECTED;
			atomic_store(&cli->connected, 1);
			cli->deadline = 0;
			tcpchat_client_event ev = {
			        .type = TCPCHAT_CEV_CONNECTED};
			ev.name.ptr = cli->name;
			ev.name.len = cli->name_len;
			clog_(cli, TCPCHAT_LOG_INFO, "joined as %s", cli->name);
			emit(cli, &ev);
			/* Texts queued during the handshake go now, before
			 * the goodbye of a stop that came meanwhile. */
			if (cli->state == C_CONNECTED)
				run_commands(cli);
			if (cli->stop_seen && cli->state == C_CONNECTED)
				begin_close(cli);
			return 0;
		}
		if (m->type == TCPCHAT_MSG_ERROR) {
			finish_remote(cli, cli->last_error, cli->last_reason);
			return 1;
		}
		if (m->type == TCPCHAT_MSG_PING || m->type == TCPCHAT_MSG_PONG)
			return 0;
		finish(cli, TCPCHAT_EPROTO, TCPCHAT_REASON_ERROR,
		       "server did not answer the handshake");
		return 1;
	}
	switch (m->type) {
	case TCPCHAT_MSG_PING: {
		tcpchat_msg p = {.type = TCPCHAT_MSG_PONG};
		p.id = m->id;
		push_msg(cli, &p);
		return 0;
	}
	case TCPCHAT_MSG_PONG:
	case TCPCHAT_MSG_WELCOME:
		return 0;
	case TCPCHAT_MSG_TEXT:
	case TCPCHAT_MSG_JOIN:
	case TCPCHAT_MSG_LEAVE:
	case TCPCHAT_MSG_WHO:
	case TCPCHAT_MSG_ERROR: {
		tcpchat_client_event ev = {.type = TCPCHAT_CEV_MESSAGE};
		ev.msg = m;
		emit(cli, &ev);
		return 0;
	}
	default:
		finish(cli, TCPCHAT_EPROTO, TCPCHAT_REASON_ERROR,
		       "unexpected message from the server");
		return 1;
	}
}

static void set_events(tcpchat_client *cli, unsigned ev)
{
	if (cli->c.fd < 0 || cli->c.events == ev)
		return;
	if (loop__mod(&cli->loop, cli->c.fd, ev, &cli->c) == 0)
		cli->c.events = ev;
}

static void do_flush(tcpchat_client *cli)
{
	if (cli->c.fd < 0 || cli->state == C_CONNECTING)
		return;
	size_t bytes, frames;
	int rc = conn__flush(&cli->c, &cli->rd, &bytes, &frames);
	publish_queue(cli);
	if (rc < 0) {
		char why[128];
		snprintf(why, sizeof why, "write: %s", strerror(errno));
		finish_remote(cli, TCPCHAT_ESYS, why);
		return;
	}
	if (rc == 0 && cli->state == C_CLOSING && !cli->shut_wr) {
		shutdown(cli->c.fd, SHUT_WR);
		cli->shut_wr = 1;
	}
	set_events(cli, LOOP_READ | (rc == 1 ? LOOP_WRITE : 0));
}

static void unaccount(tcpchat_client *cli, size_t len)
{
	atomic_fetch_sub(&cli->cmd_frames, 1);
	atomic_fetch_sub(&cli->cmd_bytes, len);
}

/* Takes every posted command; sends them while connected, else drops
 * them. */
static void take_commands(tcpchat_client *cli)
{
	struct loop_cmd *n = loop__take(&cli->loop);
	while (n) {
		struct ccmd *c = (struct ccmd *)n;
		n = n->next;
		if (cli->state == C_CONNECTED) {
			tcpchat_msg m = {.type = c->type};
			m.body.ptr = c->text;
			m.body.len = c->len;
			if (push_msg(cli, &m) != 0)
				clog_(cli, TCPCHAT_LOG_ERROR,
				      "could not queue a message");
		}
		unaccount(cli, c->len);
		free(c);
	}
}

/* Queues the texts posted by tcpchat_client_send().  During the
 * handshake they stay posted: they are sent once WELCOME has come. */
static void run_commands(tcpchat_client *cli)
{
	if (cli->state == C_CONNECTING || cli->state == C_HANDSHAKE)
		return;
	take_commands(cli);
}

static void connected_check(tcpchat_client *cli)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(cli->c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		char why[160];
		snprintf(why, sizeof why, "connect: %s", strerror(err));
		errno = err;
		finish(cli, TCPCHAT_ESYS, TCPCHAT_REASON_ERROR, why);
		return;
	}
	cli->state = C_HANDSHAKE;
}

static void on_events(tcpchat_client *cli, unsigned events)
{
	if (cli->state == C_CONNECTING) {
		connected_check(cli);
		if (cli->state != C_HANDSHAKE)
			return;
	}
	if (events & LOOP_WRITE)
		do_flush(cli);
	if (cli->c.fd < 0 || !(events & (LOOP_READ | LOOP_ERROR)))
		return;
	struct conn_read_result res;
	int rc = conn__read(&cli->c, &cli->rd, (size_t)cli->max_frame, on_msg,
	                    cli, &res);
	if (cli->state == C_DONE || rc == 0 || rc == 1)
		return;
	if (rc == TCPCHAT_ECLOSED) {
		if (cli->state == C_CLOSING)
			finish(cli, 0, TCPCHAT_REASON_QUIT, "goodbye");
		else
			finish_remote(cli, TCPCHAT_ECLOSED,
			              "connection closed by the server");
	} else if (rc == TCPCHAT_EPROTO || rc == TCPCHAT_EMSGSIZE) {
		finish(cli, rc, TCPCHAT_REASON_ERROR, res.error);
	} else {
		char why[128];
		snprintf(why, sizeof why, "read: %s",
		         rc == TCPCHAT_ESYS ? strerror(errno)
		                            : tcpchat_strerror(rc));
		finish_remote(cli, rc, why);
	}
}

static void run_timers(tcpchat_client *cli)
{
	int64_t now = cli->now_ms;
	switch (cli->state) {
	case C_CONNECTING:
	case C_HANDSHAKE:
		if (cli->deadline && now >= cli->deadline)
			finish(cli, TCPCHAT_ETIMEDOUT, TCPCHAT_REASON_TIMEOUT,
			       "timed out connecting to the server");
		break;
	case C_CLOSING:
		if (now >= cli->deadline)
			finish(cli, 0, TCPCHAT_REASON_QUIT,
			       "goodbye (timed out)");
		break;
	case C_CONNECTED:
		if (cli->ping_interval <= 0)
			break;
		if (now - cli->last_rx_ms >= 2 * cli->ping_interval) {
			finish(cli, TCPCHAT_ETIMEDOUT, TCPCHAT_REASON_TIMEOUT,
			       "server stopped answering");
		} else if (!cli->ping_sent &&
		           now - cli->last_rx_ms >= cli->ping_interval) {
			tcpchat_msg p = {.type = TCPCHAT_MSG_PING};
			push_msg(cli, &p);
			cli->ping_sent = 1;
		}
		break;
	default:
		break;
	}
}

static int wait_ms(tcpchat_client *cli)
{
	int64_t due = INT64_MAX;
	switch (cli->state) {
	case C_CONNECTING:
	case C_HANDSHAKE:
	case C_CLOSING:
		if (cli->deadline)
			due = cli->deadline;
		break;
	case C_CONNECTED:
		if (cli->ping_interval > 0)
			due = cli->last_rx_ms +
			      (cli->ping_sent ? 2 : 1) * cli->ping_interval;
		break;
	case C_DONE:
	case C_IDLE:
		return 0;
	default:
		break;
	}
	if (due == INT64_MAX)
		return -1;
	int64_t d = due - util__now_ms();
	if (d < 0)
		d = 0;
	return d > 60000 ? 60000 : (int)d;
}

/* One iteration.  Returns 1 once the connection is over. */
static int iterate(tcpchat_client *cli, int timeout_ms)
{
	struct loop_event evs[8];
	int n = loop__wait(&cli->loop, timeout_ms, evs, 8);
	if (n < 0)
		return n;
	cli->now_ms = util__now_ms();
	if (cli->loop.woken) {
		/* Read the requests before taking the texts: every text sent
		 * before a stop is then queued before the goodbye. */
		int stop = atomic_load(&cli->stop_req);
		int abort_now = atomic_load(&cli->abort_req);
		run_commands(cli);
		if (abort_now)
			finish(cli, 0, TCPCHAT_REASON_QUIT, "client destroyed");
		if (stop && !cli->stop_seen) {
			cli->stop_seen = 1;
			if (cli->state == C_CONNECTED)
				begin_close(cli);
		}
	}
	for (int i = 0; i < n && cli->state != C_DONE; i++)
		on_events(cli, evs[i].events);
	if (cli->state != C_DONE)
		run_timers(cli);
	if (cli->state != C_DONE && !(cli->c.events & LOOP_WRITE) &&
	    cli->c.qcount)
		do_flush(cli);
	else if (cli->state == C_CLOSING && !cli->c.qcount)
		do_flush(cli); /* sends the FIN */
	return cli->state == C_DONE;
}

static int run_loop(tcpchat_client *cli)
{
	for (;;) {
		int rc = iterate(cli, wait_ms(cli));
		if (rc < 0)
			return rc;
		if (rc)
			break;
	}
	return cli->result;
}

TCPCHAT_API int tcpchat_client_run(tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	if (util__in_callback(cli))
		return TCPCHAT_ERECURSIVE;
	if (cli->has_thread || cli->running || cli->stepping ||
	    cli->state == C_IDLE || cli->state == C_DONE)
		return TCPCHAT_ESTATE;
	cli->running = 1;
	int rc = run_loop(cli);
	cli->running = 0;
	return rc;
}

static void *thread_main(void *arg)
{
	tcpchat_client *cli = arg;
	cli->thread_rc = run_loop(cli);
	return NULL;
}

TCPCHAT_API int tcpchat_client_start(tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	if (util__in_callback(cli))
		return TCPCHAT_ERECURSIVE;
	if (cli->has_thread || cli->running || cli->stepping ||
	    cli->state == C_IDLE || cli->state == C_DONE)
		return TCPCHAT_ESTATE;
	int rc = pthread_create(&cli->thread, NULL, thread_main, cli);
	if (rc) {
		errno = rc;
		return TCPCHAT_ESYS;
	}
	cli->has_thread = 1;
	return 0;
}

TCPCHAT_API int tcpchat_client_join(tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	if (util__in_callback(cli))
		return TCPCHAT_ERECURSIVE;
	if (!cli->has_thread)
		return TCPCHAT_ESTATE;
	pthread_join(cli->thread, NULL);
	cli->has_thread = 0;
	return cli->thread_rc;
}

TCPCHAT_API int tcpchat_client_stop(tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	atomic_store(&cli->stop_req, 1);
	loop__wake(&cli->loop);
	return 0;
}

/* Posts a message for the loop to send; any thread. */
static int post(tcpchat_client *cli, uint32_t type, const char *text,
                size_t len)
{
	if (!atomic_load(&cli->alive))
		return TCPCHAT_ECLOSED;
	size_t frames =
	        atomic_fetch_add(&cli->cmd_frames, 1) +
	        atomic_load_explicit(&cli->q_frames, memory_order_relaxed);
	size_t bytes =
	        atomic_fetch_add(&cli->cmd_bytes, len) +
	        atomic_load_explicit(&cli->q_bytes, memory_order_relaxed);
	if (frames >= (size_t)cli->queue_frames ||
	    bytes + len > (size_t)cli->queue_bytes) {
		unaccount(cli, len);
		return TCPCHAT_EQUEUEFULL;
	}
	struct ccmd *c = malloc(sizeof *c + len);
	if (!c) {
		unaccount(cli, len);
		return TCPCHAT_ENOMEM;
	}
	c->type = type;
	c->len = len;
	if (len)
		memcpy(c->text, text, len);
	loop__post(&cli->loop, &c->node);
	return 0;
}

TCPCHAT_API int tcpchat_client_send(tcpchat_client *cli, const char *text,
                                    size_t len)
{
	if (!cli || !util__text_ok(text, len))
		return TCPCHAT_EINVAL;
	if (len > (size_t)cli->max_frame)
		return TCPCHAT_EMSGSIZE;
	return post(cli, TCPCHAT_MSG_TEXT, text, len);
}

TCPCHAT_API int tcpchat_client_who(tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	return post(cli, TCPCHAT_MSG_WHO, NULL, 0);
}

TCPCHAT_API int tcpchat_client_fd(const tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	return loop__fd(&cli->loop);
}

TCPCHAT_API int tcpchat_client_timeout_ms(tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	return wait_ms(cli);
}

TCPCHAT_API int tcpchat_client_step(tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	if (util__in_callback(cli))
		return TCPCHAT_ERECURSIVE;
	if (cli->has_thread || cli->running)
		return TCPCHAT_ESTATE;
	if (cli->state == C_IDLE || cli->state == C_DONE)
		return 1;
	/* Host-driven from now until the connection is over: run() and
	 * start() refuse meanwhile. */
	cli->stepping = 1;
	int rc = iterate(cli, 0);
	if (rc != 0)
		cli->stepping = 0;
	return rc;
}

TCPCHAT_API int tcpchat_client_is_connected(const tcpchat_client *cli)
{
	return cli ? atomic_load(&((tcpchat_client *)cli)->connected) : 0;
}

TCPCHAT_API int tcpchat_client_connect(tcpchat_client *cli, const char *addr,
                                       const char *name)
{
	if (!cli || !addr || !name)
		return TCPCHAT_EINVAL;
	if (util__in_callback(cli))
		return TCPCHAT_ERECURSIVE;
	if (cli->state != C_IDLE && cli->state != C_DONE)
		return TCPCHAT_ESTATE;
	/* Texts posted for an earlier connection are not for this one. */
	take_commands(cli);
	size_t nlen = strlen(name);
	if (tcpchat_name_check(name, nlen) != 0)
		return TCPCHAT_EBADNAME;
	union net_addr a;
	socklen_t alen;
	int rc = net__resolve(addr, 0, &a, &alen);
	if (rc)
		return rc;
	int fd;
	rc = net__connect(&a, alen, &fd);
	if (rc)
		return rc;
	if (loop__add(&cli->loop, fd, LOOP_READ | LOOP_WRITE, &cli->c) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return TCPCHAT_ESYS;
	}
	memcpy(cli->name, name, nlen + 1);
	cli->name_len = nlen;
	cli->c.fd = fd;
	cli->c.codec = cli->codec;
	cli->c.dflags = TCPCHAT_FROM_SERVER;
	cli->c.events = LOOP_READ | LOOP_WRITE;
	cli->state = C_CONNECTING;
	cli->stop_seen = 0;
	cli->shut_wr = 0;
	cli->stepping = 0;
	cli->last_error = 0;
	cli->last_reason[0] = '\0';
	cli->result = 0;
	cli->ping_sent = 0;
	cli->now_ms = util__now_ms();
	cli->last_rx_ms = cli->now_ms;
	cli->deadline = cli->connect_timeout > 0
	                        ? cli->now_ms + cli->connect_timeout
	                        : 0;
	atomic_store(&cli->stop_req, 0);
	atomic_store(&cli->alive, 1);
	tcpchat_msg hello = {.type = TCPCHAT_MSG_HELLO};
	hello.code = TCPCHAT_PROTOCOL_VERSION;
	hello.sender.ptr = cli->name;
	hello.sender.len = nlen;
	rc = push_msg(cli, &hello);
	if (rc) {
		finish(cli, rc, TCPCHAT_REASON_ERROR, "cannot encode HELLO");
		cli->state = C_IDLE;
		return rc;
	}
	return 0;
}

TCPCHAT_API int tcpchat_client_set_codec(tcpchat_client *cli,
                                         const tcpchat_codec *codec)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	if (!codec)
		codec = tcpchat_codec_binary();
	if (codec->abi != TCPCHAT_CODEC_ABI || !codec->encode ||
	    !codec->decode || !codec->name)
		return TCPCHAT_EINVAL;
	if (cli->state != C_IDLE && cli->state != C_DONE)
		return TCPCHAT_ESTATE;
	cli->codec = codec;
	return 0;
}

TCPCHAT_API void tcpchat_client_set_handler(tcpchat_client *cli,
                                            tcpchat_client_handler fn,
                                            void *userdata)
{
	if (!cli)
		return;
	cli->handler = fn;
	cli->userdata = userdata;
}

TCPCHAT_API int tcpchat_client_new(tcpchat_client **out)
{
	if (!out)
		return TCPCHAT_EINVAL;
	*out = NULL;
	tcpchat_client *cli = calloc(1, sizeof *cli);
	if (!cli)
		return TCPCHAT_ENOMEM;
	cli->connect_timeout = 10000;
	cli->max_frame = 1 << 20;
	cli->queue_frames = 4096;
	cli->queue_bytes = 4 << 20;
	cli->ping_interval = 30000;
	cli->log_level = TCPCHAT_LOG_INFO;
	cli->stop_timeout = 2000;
	cli->codec = tcpchat_codec_binary();
	cli->c.kind = 1;
	cli->c.fd = -1;
	atomic_init(&cli->stop_req, 0);
	atomic_init(&cli->abort_req, 0);
	atomic_init(&cli->alive, 0);
	atomic_init(&cli->connected, 0);
	atomic_init(&cli->cmd_frames, 0);
	atomic_init(&cli->cmd_bytes, 0);
	atomic_init(&cli->q_frames, 0);
	atomic_init(&cli->q_bytes, 0);
	int rc = loop__init(&cli->loop);
	if (rc) {
		free(cli);
		return rc;
	}
	rc = reader__init(&cli->rd, 4096);
	if (rc) {
		loop__fini(&cli->loop);
		free(cli);
		return rc;
	}
	*out = cli;
	return 0;
}

TCPCHAT_API void tcpchat_client_destroy(tcpchat_client *cli)
{
	if (!cli)
		return;
	if (cli->has_thread) {
		/* Make the thread end now: close the connection under it by
		 * asking it to stop with no time to flush. */
		atomic_store(&cli->abort_req, 1);
		tcpchat_client_stop(cli);
		pthread_join(cli->thread, NULL);
		cli->has_thread = 0;
	}
	if (cli->c.fd >= 0)
		close(cli->c.fd);
	conn__clear(&cli->c);
	cli->state = C_DONE;
	take_commands(cli); /* frees what is still posted */
	reader__fini(&cli->rd);
	loop__fini(&cli->loop);
	free(cli);
}

static long long *copt(tcpchat_client *cli, int option, long long *min,
                       long long *max)
{
	*min = 0;
	*max = INT32_MAX;
	switch (option) {
	case TCPCHAT_COPT_CONNECT_TIMEOUT:
		return &cli->connect_timeout;
	case TCPCHAT_COPT_MAX_FRAME:
		*min = 64;
		*max = 64 << 20;
		return &cli->max_frame;
	case TCPCHAT_COPT_QUEUE_FRAMES:
		*min = 1;
		return &cli->queue_frames;
	case TCPCHAT_COPT_QUEUE_BYTES:
		*min = 64;
		return &cli->queue_bytes;
	case TCPCHAT_COPT_PING_INTERVAL:
		return &cli->ping_interval;
	case TCPCHAT_COPT_LOG_LEVEL:
		*max = TCPCHAT_LOG_DEBUG;
		return &cli->log_level;
	case TCPCHAT_COPT_STOP_TIMEOUT:
		return &cli->stop_timeout;
	default:
		return NULL;
	}
}

TCPCHAT_API int tcpchat_client_set_option(tcpchat_client *cli, int option,
                                          long long value)
{
	long long min, max;
	long long *p = cli ? copt(cli, option, &min, &max) : NULL;
	if (!p || value < min || value > max)
		return TCPCHAT_EINVAL;
	*p = value;
	return 0;
}

TCPCHAT_API int tcpchat_client_get_option(const tcpchat_client *cli, int option,
                                          long long *value)
{
	long long min, max;
	long long *p = (cli && value)
	                       ? copt((tcpchat_client *)cli, option, &min, &max)
	                       : NULL;
	if (!p)
		return TCPCHAT_EINVAL;
	*value = *p;
	return 0;
}
