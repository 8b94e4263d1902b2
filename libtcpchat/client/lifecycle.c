/* libtcpchat - the client object: creation and destruction, options,
 * events and logging, the run modes and the thread-safe calls (posting
 * commands to the loop; the room calls are in rooms.c). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

void cli__emit(tcpchat_client *cli, tcpchat_client_event *ev)
{
	if (!cli->handler)
		return;
	struct util_cb f;
	util__cb_enter(&f, cli);
	cli->handler(cli, ev, cli->userdata);
	util__cb_leave(&f);
}

void cli__log(tcpchat_client *cli, int level, const char *fmt, ...)
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
	cli__emit(cli, &ev);
}

static void unaccount(tcpchat_client *cli, size_t len)
{
	atomic_fetch_sub(&cli->cmd_frames, 1);
	atomic_fetch_sub(&cli->cmd_bytes, len);
}

int cli__cmd_needs_history(const struct ccmd *c)
{
	return c->kind == CC_HIST || c->kind == CC_RESUME ||
	       (c->ref[0] && !c->ref_auto);
}

/* Why the connected server cannot take c: 0, or an error code with the
 * reason in why. */
static int cmd_refusal(tcpchat_client *cli, const struct ccmd *c, char *why,
                       size_t size)
{
	uint64_t limit = atomic_load(&cli->srv_max_frame);
	unsigned proto = atomic_load(&cli->srv_protocol);
	if ((c->kind != CC_PLAIN || c->v2) && proto < 2) {
		snprintf(why, size,
		         "the server speaks protocol %u, without rooms", proto);
		return TCPCHAT_ENOTSUP;
	}
	if (cli__cmd_needs_history(c) &&
	    !(atomic_load(&cli->srv_caps) & TCPCHAT_CAP_HISTORY)) {
		snprintf(why, size, "the server keeps no history");
		return TCPCHAT_ENOTSUP;
	}
	if (limit && c->f->len > limit) {
		snprintf(why, size,
		         "a message of %u bytes is over the server's limit of "
		         "%llu",
		         (unsigned)c->f->len, (unsigned long long)limit);
		return TCPCHAT_EMSGSIZE;
	}
	return 0;
}

static void send_cmd(tcpchat_client *cli, const struct ccmd *c)
{
	char why[160];
	int rc = cmd_refusal(cli, c, why, sizeof why);
	if (!rc && cli__push_frame(cli, c->f) != 0) {
		rc = TCPCHAT_ENOMEM;
		snprintf(why, sizeof why, "could not queue a message");
	}
	if (rc) {
		cli__log(cli, TCPCHAT_LOG_ERROR, "not sent: %s", why);
		if (c->ref[0])
			cli__acks_refuse_cmd(cli, c, rc, why);
		return;
	}
	if (c->kind == CC_JOIN)
		cli__rooms_requested(cli, c->room);
	else if (c->kind == CC_RESUME)
		cli__hist_resume_sent(cli, c);
	if (c->ref[0])
		cli__acks_sent(cli, c);
}

/* Takes every posted frame; queues them while connected, else drops
 * them (they were for a connection that is over; a text with a ref gets
 * its ACK event). */
void cli__take_commands(tcpchat_client *cli)
{
	struct loop_cmd *n = loop__take(&cli->loop);
	while (n) {
		struct ccmd *c = (struct ccmd *)n;
		n = n->next;
		if (cli->state == C_CONNECTED)
			send_cmd(cli, c);
		else if (c->ref[0])
			cli__acks_refuse_cmd(cli, c, TCPCHAT_ECLOSED,
			                     "not connected");
		unaccount(cli, c->f->len);
		frame__unref(c->f);
		free(c);
	}
}

/* ---- run modes ----------------------------------------------------------- */

static void on_wake(struct loop *l, void *data)
{
	tcpchat_client *cli = data;
	TC_UNUSED(l);
	/* Read the requests before taking the texts: every text sent before
	 * a stop is then queued before the goodbye. */
	int stop = atomic_load(&cli->stop_req);
	int abort_now = atomic_load(&cli->abort_req);
	/* During the handshake, and while waiting to reconnect, texts stay
	 * posted: they go after WELCOME. */
	if (cli->state != C_CONNECTING && cli->state != C_HANDSHAKE &&
	    cli->state != C_WAITING)
		cli__take_commands(cli);
	if (abort_now)
		cli__finish(cli, 0, TCPCHAT_REASON_QUIT, "client destroyed");
	if (stop && !cli->stop_seen) {
		cli->stop_seen = 1;
		if (cli->state == C_CONNECTED)
			cli__begin_close(cli);
		else if (cli->state == C_WAITING)
			cli__finish(cli, 0, TCPCHAT_REASON_QUIT,
			            "stopped while reconnecting");
	}
}

static int iterate(void *obj, int timeout_ms)
{
	tcpchat_client *cli = obj;
	int n = loop__poll(&cli->loop, timeout_ms);
	if (n < 0)
		return n;
	if (cli->state != C_DONE)
		loop__run_timers(&cli->loop);
	if (cli->state != C_DONE && !(cli->c.w.events & LOOP_WRITE) &&
	    cli->c.qcount)
		cli__flush(cli);
	else if (cli->state == C_CLOSING && conn__drained(&cli->c))
		cli__flush(cli); /* sends the FIN */
	return cli->state == C_DONE;
}

static int timeout_ms(void *obj)
{
	tcpchat_client *cli = obj;
	if (cli->state == C_DONE || cli->state == C_IDLE)
		return 0;
	return loop__timeout_ms(&cli->loop, 60000);
}

static int begin(void *obj)
{
	tcpchat_client *cli = obj;
	return cli->state == C_IDLE || cli->state == C_DONE ? 1 : 0;
}

static int end(void *obj, int rc)
{
	tcpchat_client *cli = obj;
	return rc < 0 ? rc : cli->result;
}

static const struct runner_ops client_ops = {
        .begin = begin,
        .prepare = begin,
        .iterate = iterate,
        .timeout_ms = timeout_ms,
        .end = end,
};

TCPCHAT_API int tcpchat_client_run(tcpchat_client *cli)
{
	return cli ? runner__run(&cli->run) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_client_start(tcpchat_client *cli)
{
	return cli ? runner__start(&cli->run) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_client_join(tcpchat_client *cli)
{
	return cli ? runner__join(&cli->run) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_client_step(tcpchat_client *cli)
{
	return cli ? runner__step(&cli->run) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_client_stop(tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	atomic_store(&cli->stop_req, 1);
	loop__wake(&cli->loop);
	return 0;
}

TCPCHAT_API int tcpchat_client_fd(const tcpchat_client *cli)
{
	return cli ? loop__fd(&cli->loop) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_client_timeout_ms(tcpchat_client *cli)
{
	return cli ? timeout_ms(cli) : TCPCHAT_EINVAL;
}

TCPCHAT_API int tcpchat_client_is_connected(const tcpchat_client *cli)
{
	return cli ? atomic_load(&((tcpchat_client *)cli)->connected) : 0;
}

TCPCHAT_API int tcpchat_client_server_info(tcpchat_client *cli,
                                           tcpchat_server_info *out)
{
	if (!cli || !out || out->size < sizeof(size_t))
		return TCPCHAT_EINVAL;
	if (!atomic_load(&cli->have_info))
		return TCPCHAT_ECLOSED;
	tcpchat_server_info s;
	memset(&s, 0, sizeof s);
	s.size = TC_MIN(out->size, sizeof s);
	s.caps = atomic_load(&cli->srv_caps);
	s.max_frame = atomic_load(&cli->srv_max_frame);
	s.queue_frames = atomic_load(&cli->srv_queue_frames);
	s.queue_bytes = atomic_load(&cli->srv_queue_bytes);
	s.protocol = atomic_load(&cli->srv_protocol);
	pthread_mutex_lock(&cli->room_mu);
	memcpy(s.default_room, cli->default_room, sizeof s.default_room);
	pthread_mutex_unlock(&cli->room_mu);
	memcpy(out, &s, s.size);
	return 0;
}

/* ---- thread-safe sends ---------------------------------------------------- */

int cli__post_cmd(tcpchat_client *cli, const tcpchat_msg *m,
                  const struct ccmd *meta)
{
	if (!atomic_load(&cli->alive))
		return TCPCHAT_ECLOSED;
	if (atomic_load(&cli->have_info) &&
	    (((meta->kind != CC_PLAIN || meta->v2) &&
	      atomic_load(&cli->srv_protocol) < 2) ||
	     (cli__cmd_needs_history(meta) &&
	      !(atomic_load(&cli->srv_caps) & TCPCHAT_CAP_HISTORY))))
		return TCPCHAT_ENOTSUP;
	tcpchat_buf b = {0};
	int rc = cli->codec->encode(cli->codec->codec_data, m, 0, &b);
	if (rc) {
		tcpchat_buf_free(&b);
		return rc;
	}
	uint64_t limit = atomic_load(&cli->srv_max_frame);
	if (!limit)
		limit = (uint64_t)atomic_load(&cli->max_frame_pub);
	if (b.len > limit) {
		tcpchat_buf_free(&b);
		return TCPCHAT_EMSGSIZE;
	}
	size_t len = b.len;
	size_t frames =
	        atomic_fetch_add(&cli->cmd_frames, 1) +
	        atomic_load_explicit(&cli->q_frames, memory_order_relaxed);
	size_t bytes =
	        atomic_fetch_add(&cli->cmd_bytes, len) +
	        atomic_load_explicit(&cli->q_bytes, memory_order_relaxed);
	if (frames >= (size_t)atomic_load(&cli->queue_frames_pub) ||
	    bytes + len > (size_t)atomic_load(&cli->queue_bytes_pub)) {
		unaccount(cli, len);
		tcpchat_buf_free(&b);
		return TCPCHAT_EQUEUEFULL;
	}
	struct ccmd *c = malloc(sizeof *c);
	struct frame *f = c ? frame__new(b.data, len) : NULL;
	tcpchat_buf_free(&b);
	if (!f) {
		free(c);
		unaccount(cli, len);
		return TCPCHAT_ENOMEM;
	}
	*c = *meta;
	c->f = f;
	loop__post(&cli->loop, &c->node);
	return 0;
}

int cli__post(tcpchat_client *cli, const tcpchat_msg *m, int kind,
              const char *room)
{
	struct ccmd meta;
	memset(&meta, 0, sizeof meta);
	meta.kind = kind;
	if (room)
		snprintf(meta.room, sizeof meta.room, "%s", room);
	return cli__post_cmd(cli, m, &meta);
}

TCPCHAT_API int tcpchat_client_send(tcpchat_client *cli, const char *text,
                                    size_t len)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	return cli__post_text(cli, NULL, NULL, text, len, NULL, NULL, 0);
}

TCPCHAT_API int tcpchat_client_who(tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	tcpchat_msg m = {.type = TCPCHAT_MSG_WHO};
	return cli__post(cli, &m, CC_PLAIN, NULL);
}

/* ---- setup ----------------------------------------------------------------- */

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
	cli__take_commands(cli);
	return cli__connect(cli, addr, name);
}

/* Overwrites n bytes at p in a way the compiler keeps. */
static void wipe(char *p, size_t n)
{
	volatile char *v = p;
	while (n--)
		*v++ = 0;
}

TCPCHAT_API int tcpchat_client_set_credential(tcpchat_client *cli,
                                              const char *cred)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	if (util__in_callback(cli))
		return TCPCHAT_ERECURSIVE;
	if (cli->state != C_IDLE && cli->state != C_DONE)
		return TCPCHAT_ESTATE;
	size_t n = cred ? strlen(cred) : 0;
	if (n > TCPCHAT_CREDENTIAL_MAX || (n && !util__text_ok(cred, n)))
		return TCPCHAT_EINVAL;
	char *copy = NULL;
	if (n) {
		copy = malloc(n + 1);
		if (!copy)
			return TCPCHAT_ENOMEM;
		memcpy(copy, cred, n + 1);
	}
	if (cli->credential) {
		wipe(cli->credential, cli->credential_len);
		free(cli->credential);
	}
	cli->credential = copy;
	cli->credential_len = n;
	return 0;
}

static int codec_ok(const tcpchat_codec *c)
{
	return c->abi >= 1 && c->abi <= TCPCHAT_CODEC_ABI && c->encode &&
	       c->decode && c->name;
}

TCPCHAT_API int tcpchat_client_set_codec(tcpchat_client *cli,
                                         const tcpchat_codec *codec)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	if (!codec)
		codec = tcpchat_codec_binary();
	if (!codec_ok(codec))
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
	cli->reconnect_min = 250;
	cli->reconnect_max = 30000;
	cli->unacked_tail = &cli->unacked;
	uint64_t key[2];
	util__random_key(key);
	snprintf(cli->ref_prefix, sizeof cli->ref_prefix, "%016llx",
	         (unsigned long long)key[0]);
	cli->rng = key[1] | 1;
	cli->codec = tcpchat_codec_binary();
	cli->c.tp.fd = -1;
	cli->c.w.fd = -1;
	atomic_init(&cli->max_frame_pub, cli->max_frame);
	atomic_init(&cli->queue_frames_pub, cli->queue_frames);
	atomic_init(&cli->queue_bytes_pub, cli->queue_bytes);
	if (pthread_mutex_init(&cli->room_mu, NULL) != 0) {
		free(cli);
		return TCPCHAT_ESYS;
	}
	runner__init(&cli->run, &client_ops, cli);
	int rc = loop__init(&cli->loop, on_wake, cli);
	if (rc) {
		pthread_mutex_destroy(&cli->room_mu);
		free(cli);
		return rc;
	}
	loop__timer_init(&cli->timer, cli__on_timer, cli);
	rc = conn__shared_init(&cli->sh, 4096);
	if (rc) {
		conn__shared_fini(&cli->sh);
		loop__fini(&cli->loop);
		pthread_mutex_destroy(&cli->room_mu);
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
	if (cli->run.has_thread) {
		/* Make the thread end now: close the connection under it by
		 * asking it to stop with no time to flush. */
		atomic_store(&cli->abort_req, 1);
		tcpchat_client_stop(cli);
		runner__reap(&cli->run);
	}
	loop__unwatch(&cli->loop, &cli->c.w);
	transport__close(&cli->c.tp, 0);
	conn__clear(&cli->c, &cli->sh);
	loop__timer_stop(&cli->loop, &cli->timer);
	cli->state = C_DONE;
	cli->handler = NULL;     /* no more events */
	cli__take_commands(cli); /* frees what is still posted */
	conn__shared_fini(&cli->sh);
	loop__fini(&cli->loop);
	cli__rooms_free(cli);
	cli__acks_free(cli);
	cli__hist_free(cli);
	pthread_mutex_destroy(&cli->room_mu);
	tcpchat_client_set_credential(cli, NULL);
	cli__tls_free(cli);
	free(cli);
}

#define COPT(id, field, lo, hi)                                                \
	{                                                                      \
		TCPCHAT_COPT_##id, offsetof(tcpchat_client, field), lo, hi     \
	}

static const struct util_opt client_opts[] = {
        COPT(CONNECT_TIMEOUT, connect_timeout, 0, INT32_MAX),
        COPT(MAX_FRAME, max_frame, 64, 64 << 20),
        COPT(QUEUE_FRAMES, queue_frames, 1, INT32_MAX),
        COPT(QUEUE_BYTES, queue_bytes, 64, INT32_MAX),
        COPT(PING_INTERVAL, ping_interval, 0, INT32_MAX),
        COPT(LOG_LEVEL, log_level, 0, TCPCHAT_LOG_DEBUG),
        COPT(STOP_TIMEOUT, stop_timeout, 0, INT32_MAX),
        COPT(RECONNECT, reconnect, 0, 1),
        COPT(RECONNECT_MIN, reconnect_min, 1, INT32_MAX),
        COPT(RECONNECT_MAX, reconnect_max, 1, INT32_MAX),
        COPT(RECONNECT_TRIES, reconnect_tries, 0, INT32_MAX),
};

TCPCHAT_API int tcpchat_client_set_option(tcpchat_client *cli, int option,
                                          long long value)
{
	int rc = util__opt_set(cli, client_opts, TC_ARRAY_LEN(client_opts),
	                       option, value);
	if (rc)
		return rc;
	atomic_store(&cli->max_frame_pub, cli->max_frame);
	atomic_store(&cli->queue_frames_pub, cli->queue_frames);
	atomic_store(&cli->queue_bytes_pub, cli->queue_bytes);
	atomic_store(&cli->reconnect_pub, (int)cli->reconnect);
	if (option == TCPCHAT_COPT_PING_INTERVAL && cli->state == C_CONNECTED)
		cli__arm_timer(cli);
	return 0;
}

TCPCHAT_API int tcpchat_client_get_option(const tcpchat_client *cli, int option,
                                          long long *value)
{
	return util__opt_get(cli, client_opts, TC_ARRAY_LEN(client_opts),
	                     option, value);
}
