/* Integration tests of the run modes over loopback: the server and the
 * client driven by run() in a test thread, by start()/stop()/join(), and
 * by a host poll() loop with fd()/timeout_ms()/step(); client edge cases;
 * thread-safe calls while the loop runs; the server's event handler. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tcpchat_config.h"
#include "testutil.h"

#define REC_N 64

/* ---- small helpers ------------------------------------------------------ */

struct ge_arg {
	atomic_int *v;
	int min;
};

static int cond_ge(void *p)
{
	struct ge_arg *g = p;
	return atomic_load(g->v) >= g->min;
}

/* Waits until *v >= min, for at most TU_TIMEOUT ms. */
static int wait_ge(atomic_int *v, int min)
{
	struct ge_arg g = {v, min};
	return tu_wait_until(cond_ge, &g, TU_TIMEOUT);
}

static void addr_of(char *buf, size_t size, int port)
{
	snprintf(buf, size, "127.0.0.1:%d", port);
}

/* A loopback port with nothing listening on it. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t len = sizeof a;
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int str_is(tcpchat_str s, const char *want)
{
	size_t n = strlen(want);
	return s.len == n && (n == 0 || memcmp(s.ptr, want, n) == 0);
}

static void copy_view(char *dst, size_t cap, tcpchat_str s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	if (n)
		memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}

/* Bounded hold inside a callback, to keep the loop thread in it while
 * the test thread calls the API from outside (ms is scaled by tu_ms()). */
static void hold_for(atomic_int *release, int ms)
{
	int64_t end = tu_now_ms() + tu_ms(ms);
	while (!atomic_load(release) && tu_now_ms() < end) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

/* ---- server event recorder ---------------------------------------------- */

struct srec {
	pthread_mutex_t mu;
	atomic_int n_connect, n_connect_ok, n_join, n_message, n_message_ok;
	atomic_int n_leave, n_disconnect, n_log, n_running;
	/* behaviour; set before the loop runs, or atomics */
	atomic_int refuse_connect;
	const char *refuse_name, *refuse_reason; /* refuse_name: JOIN */
	const char *refuse_name2;                /* refused with no reason */
	const char *veto_prefix, *veto_reason;   /* MESSAGE */
	int probe_recursion;
	atomic_int probed, rc_run, rc_step, rc_join;
	atomic_int hold_join, hold_leave, held, release;
	/* recorded, under mu */
	struct {
		char name[40];
		int reason, error, has_text;
	} leave[REC_N];
	int nleave;
	struct {
		int reason, error;
	} disc[REC_N];
	int ndisc;
	struct {
		int level;
		char text[200];
	} log[REC_N];
	int nlog;
	int log_levels[8]; /* count per level; [7]: out of range */
	int log_empty;     /* LOG events with a NULL or empty text */
};

static void srec_init(struct srec *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
}

static void srec_fini(struct srec *r)
{
	pthread_mutex_destroy(&r->mu);
}

static int shandler(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct srec *r = ud;
	switch (ev->type) {
	case TCPCHAT_SEV_CONNECT:
		atomic_fetch_add(&r->n_connect, 1);
		if (ev->conn_id != 0 && ev->peer &&
		    ev->peer->sa_family == AF_INET &&
		    ev->peer_len >= (socklen_t)sizeof(struct sockaddr_in) &&
		    ev->codec && strcmp(ev->codec, "binary") == 0)
			atomic_fetch_add(&r->n_connect_ok, 1);
		return atomic_load(&r->refuse_connect);
	case TCPCHAT_SEV_JOIN:
		if (r->probe_recursion && !atomic_exchange(&r->probed, 1)) {
			atomic_store(&r->rc_run, tcpchat_server_run(srv));
			atomic_store(&r->rc_step, tcpchat_server_step(srv));
			atomic_store(&r->rc_join, tcpchat_server_join(srv));
		}
		if (atomic_exchange(&r->hold_join, 0)) {
			atomic_fetch_add(&r->held, 1);
			hold_for(&r->release, 2000);
		}
		if (r->refuse_name && str_is(ev->name, r->refuse_name)) {
			ev->refuse_reason = r->refuse_reason;
			return 1;
		}
		if (r->refuse_name2 && str_is(ev->name, r->refuse_name2))
			return 1;
		atomic_fetch_add(&r->n_join, 1);
		return 0;
	case TCPCHAT_SEV_MESSAGE: {
		const tcpchat_msg *m = ev->msg;
		if (m && m->type == TCPCHAT_MSG_TEXT && m->id > 0 &&
		    m->timestamp > 1600000000000LL &&
		    m->sender.len == ev->name.len &&
		    memcmp(m->sender.ptr, ev->name.ptr, ev->name.len) == 0)
			atomic_fetch_add(&r->n_message_ok, 1);
		atomic_fetch_add(&r->n_message, 1);
		if (r->veto_prefix && m &&
		    m->body.len >= strlen(r->veto_prefix) &&
		    memcmp(m->body.ptr, r->veto_prefix,
		           strlen(r->veto_prefix)) == 0) {
			ev->refuse_reason = r->veto_reason;
			return 1;
		}
		return 0;
	}
	case TCPCHAT_SEV_LEAVE:
		pthread_mutex_lock(&r->mu);
		if (r->nleave < REC_N) {
			copy_view(r->leave[r->nleave].name,
			          sizeof r->leave[r->nleave].name, ev->name);
			r->leave[r->nleave].reason = ev->reason;
			r->leave[r->nleave].error = ev->error;
			r->leave[r->nleave].has_text = ev->text && *ev->text;
			r->nleave++;
		}
		pthread_mutex_unlock(&r->mu);
		if (atomic_exchange(&r->hold_leave, 0)) {
			atomic_fetch_add(&r->held, 1);
			hold_for(&r->release, 300);
		}
		atomic_fetch_add(&r->n_leave, 1);
		return 0;
	case TCPCHAT_SEV_DISCONNECT:
		pthread_mutex_lock(&r->mu);
		if (r->ndisc < REC_N) {
			r->disc[r->ndisc].reason = ev->reason;
			r->disc[r->ndisc].error = ev->error;
			r->ndisc++;
		}
		pthread_mutex_unlock(&r->mu);
		atomic_fetch_add(&r->n_disconnect, 1);
		return 0;
	case TCPCHAT_SEV_LOG:
		pthread_mutex_lock(&r->mu);
		if (ev->level >= TCPCHAT_LOG_ERROR &&
		    ev->level <= TCPCHAT_LOG_DEBUG)
			r->log_levels[ev->level]++;
		else
			r->log_levels[7]++;
		if (!ev->text || !*ev->text)
			r->log_empty++;
		if (ev->text && strstr(ev->text, "server running"))
			atomic_fetch_add(&r->n_running, 1);
		if (r->nlog < REC_N && ev->text) {
			r->log[r->nlog].level = ev->level;
			snprintf(r->log[r->nlog].text,
			         sizeof r->log[r->nlog].text, "%s", ev->text);
			r->nlog++;
		}
		pthread_mutex_unlock(&r->mu);
		atomic_fetch_add(&r->n_log, 1);
		return 0;
	default:
		return 0;
	}
}

/* Finds the LEAVE event of name; 1 if there is one. */
static int srec_leave(struct srec *r, const char *name, int *reason, int *error)
{
	int found = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->nleave; i++) {
		if (strcmp(r->leave[i].name, name) == 0) {
			*reason = r->leave[i].reason;
			*error = r->leave[i].error;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return found;
}

/* Level of the first log line containing needle, or -1. */
static int srec_log_level(struct srec *r, const char *needle)
{
	int level = -1;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->nlog; i++) {
		if (strstr(r->log[i].text, needle)) {
			level = r->log[i].level;
			break;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return level;
}

struct log_wait {
	struct srec *r;
	const char *needle;
};

static int cond_log(void *p)
{
	struct log_wait *w = p;
	return srec_log_level(w->r, w->needle) >= 0;
}

/* A server with the recorder as handler and the timers of
 * tu_server_timers(), on 127.0.0.1 port 0, not yet running. */
static tcpchat_server *srv_new(struct srec *r, int *port)
{
	tcpchat_server *srv;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	ck_assert_int_eq(tu_server_timers(srv), 0);
	if (r)
		tcpchat_server_set_handler(srv, shandler, r);
	ck_assert_int_eq(tcpchat_server_listen(srv, "127.0.0.1:0", NULL), 0);
	*port = tcpchat_server_port(srv, 0);
	ck_assert_int_gt(*port, 0);
	return srv;
}

/* ---- client event recorder ---------------------------------------------- */

struct cmsg {
	uint32_t type, code;
	char sender[40];
	char body[128];
};

struct crec {
	pthread_mutex_t mu;
	atomic_int connected, disconnected, n_msg, n_log_ok;
	/* behaviour */
	int probe_recursion;
	atomic_int probed, rc_run, rc_step, rc_connect, rc_join;
	atomic_int hold_connected, hold_disc, held, release;
	/* recorded, under mu */
	char name[40];
	int reason, error;
	char text[200];
	struct cmsg msg[REC_N];
	int nmsg;
	char log[REC_N][120];
	int nlog;
};

static void crec_init(struct crec *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
	r->reason = r->error = 12345;
}

static void crec_fini(struct crec *r)
{
	pthread_mutex_destroy(&r->mu);
}

static int chandler(tcpchat_client *cli, const tcpchat_client_event *ev,
                    void *ud)
{
	struct crec *r = ud;
	switch (ev->type) {
	case TCPCHAT_CEV_CONNECTED:
		if (r->probe_recursion && !atomic_exchange(&r->probed, 1)) {
			atomic_store(&r->rc_run, tcpchat_client_run(cli));
			atomic_store(&r->rc_step, tcpchat_client_step(cli));
			atomic_store(&r->rc_connect,
			             tcpchat_client_connect(cli, "127.0.0.1:1",
			                                    "other"));
			atomic_store(&r->rc_join, tcpchat_client_join(cli));
		}
		pthread_mutex_lock(&r->mu);
		copy_view(r->name, sizeof r->name, ev->name);
		pthread_mutex_unlock(&r->mu);
		if (atomic_exchange(&r->hold_connected, 0)) {
			atomic_fetch_add(&r->held, 1);
			hold_for(&r->release, 2000);
		}
		atomic_fetch_add(&r->connected, 1);
		break;
	case TCPCHAT_CEV_MESSAGE:
		pthread_mutex_lock(&r->mu);
		if (r->nmsg < REC_N && ev->msg) {
			struct cmsg *m = &r->msg[r->nmsg++];
			m->type = ev->msg->type;
			m->code = ev->msg->code;
			copy_view(m->sender, sizeof m->sender, ev->msg->sender);
			copy_view(m->body, sizeof m->body, ev->msg->body);
		}
		pthread_mutex_unlock(&r->mu);
		atomic_fetch_add(&r->n_msg, 1);
		break;
	case TCPCHAT_CEV_DISCONNECTED:
		pthread_mutex_lock(&r->mu);
		r->reason = ev->reason;
		r->error = ev->error;
		snprintf(r->text, sizeof r->text, "%s",
		         ev->text ? ev->text : "");
		pthread_mutex_unlock(&r->mu);
		if (atomic_exchange(&r->hold_disc, 0)) {
			atomic_fetch_add(&r->held, 1);
			hold_for(&r->release, 300);
		}
		atomic_fetch_add(&r->disconnected, 1);
		break;
	case TCPCHAT_CEV_LOG:
		pthread_mutex_lock(&r->mu);
		if (ev->text && *ev->text && ev->level >= TCPCHAT_LOG_ERROR &&
		    ev->level <= TCPCHAT_LOG_DEBUG) {
			atomic_fetch_add(&r->n_log_ok, 1);
			if (r->nlog < REC_N)
				snprintf(r->log[r->nlog++], sizeof r->log[0],
				         "%d %s", ev->level, ev->text);
		}
		pthread_mutex_unlock(&r->mu);
		break;
	default:
		break;
	}
	return 0;
}

/* 1 when the client received a message of that type, sender and body. */
static int crec_has(struct crec *r, uint32_t type, const char *sender,
                    const char *body)
{
	int found = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->nmsg && !found; i++)
		found = r->msg[i].type == type &&
		        strcmp(r->msg[i].sender, sender) == 0 &&
		        strcmp(r->msg[i].body, body) == 0;
	pthread_mutex_unlock(&r->mu);
	return found;
}

struct has_arg {
	struct crec *r;
	uint32_t type;
	const char *sender, *body;
};

static int cond_has(void *p)
{
	struct has_arg *h = p;
	return crec_has(h->r, h->type, h->sender, h->body);
}

static int wait_has(struct crec *r, uint32_t type, const char *sender,
                    const char *body)
{
	struct has_arg h = {r, type, sender, body};
	return tu_wait_until(cond_has, &h, TU_TIMEOUT);
}

static int crec_has_log(struct crec *r, const char *needle)
{
	int found = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->nlog && !found; i++)
		found = strstr(r->log[i], needle) != NULL;
	pthread_mutex_unlock(&r->mu);
	return found;
}

static tcpchat_client *cli_new(struct crec *r)
{
	tcpchat_client *cli;
	ck_assert_int_eq(tcpchat_client_new(&cli), 0);
	ck_assert_ptr_nonnull(cli);
	if (r)
		tcpchat_client_set_handler(cli, chandler, r);
	/* Bound every connect and stop well inside the test's limits, and
	 * give a stop all that time to flush. */
	ck_assert_int_eq(tcpchat_client_set_option(
	                         cli, TCPCHAT_COPT_CONNECT_TIMEOUT, TU_TIMEOUT),
	                 0);
	ck_assert_int_eq(tcpchat_client_set_option(
	                         cli, TCPCHAT_COPT_STOP_TIMEOUT, TU_TIMEOUT),
	                 0);
	return cli;
}

static void cli_connect(tcpchat_client *cli, int port, const char *name)
{
	char addr[32];
	addr_of(addr, sizeof addr, port);
	ck_assert_int_eq(tcpchat_client_connect(cli, addr, name), 0);
}

/* ---- loop threads --------------------------------------------------------- */

/* Blocking run() of a server or client in a test thread. */
struct runner {
	pthread_t th;
	tcpchat_server *srv;
	tcpchat_client *cli;
	atomic_int done, rc;
};

static void *runner_main(void *arg)
{
	struct runner *rn = arg;
	int rc = rn->srv ? tcpchat_server_run(rn->srv)
	                 : tcpchat_client_run(rn->cli);
	atomic_store(&rn->rc, rc);
	atomic_store(&rn->done, 1);
	return NULL;
}

static void runner_start(struct runner *rn, tcpchat_server *srv,
                         tcpchat_client *cli)
{
	memset(rn, 0, sizeof *rn);
	rn->srv = srv;
	rn->cli = cli;
	ck_assert_int_eq(pthread_create(&rn->th, NULL, runner_main, rn), 0);
}

/* Waits (bounded) for the thread to finish and returns what it returned. */
static int runner_join(struct runner *rn)
{
	ck_assert_msg(wait_ge(&rn->done, 1), "the loop did not return");
	pthread_join(rn->th, NULL);
	return atomic_load(&rn->rc);
}

/* Host-driven loop of a server or client: the test thread polls the
 * object's fd (or, with the poll backend, just waits at most 10 ms) with
 * the object's timeout and calls step() until it returns non-zero. */
struct host {
	pthread_t th;
	tcpchat_server *srv;
	tcpchat_client *cli;
	int fd;
	atomic_int done, rc, steps, rc_run_inside, rc_start_inside, started;
};

static void *host_main(void *arg)
{
	struct host *h = arg;
	int64_t deadline = tu_now_ms() + 3 * TU_TIMEOUT;
	int rc = TCPCHAT_ETIMEDOUT;
	while (tu_now_ms() < deadline) {
		int t = h->srv ? tcpchat_server_timeout_ms(h->srv)
		               : tcpchat_client_timeout_ms(h->cli);
		if (t < 0 || t > 1000)
			t = 1000; /* stay bounded; wakeups come through fd */
		if (h->fd >= 0) {
			struct pollfd p = {.fd = h->fd, .events = POLLIN};
			poll(&p, 1, t);
		} else {
			poll(NULL, 0, t < 10 ? t : 10);
		}
		rc = h->srv ? tcpchat_server_step(h->srv)
		            : tcpchat_client_step(h->cli);
		if (atomic_fetch_add(&h->steps, 1) == 0) {
			/* Running now: run() and start() must refuse. */
			if (h->srv) {
				atomic_store(&h->rc_run_inside,
				             tcpchat_server_run(h->srv));
				atomic_store(&h->rc_start_inside,
				             tcpchat_server_start(h->srv));
			} else {
				atomic_store(&h->rc_run_inside,
				             tcpchat_client_run(h->cli));
				atomic_store(&h->rc_start_inside,
				             tcpchat_client_start(h->cli));
			}
			atomic_store(&h->started, 1);
		}
		if (rc != 0)
			break;
	}
	atomic_store(&h->rc, rc);
	atomic_store(&h->done, 1);
	return NULL;
}

static void host_start(struct host *h, tcpchat_server *srv, tcpchat_client *cli)
{
	memset(h, 0, sizeof *h);
	h->srv = srv;
	h->cli = cli;
	h->fd = srv ? tcpchat_server_fd(srv) : tcpchat_client_fd(cli);
#if TCPCHAT_USE_EPOLL
	ck_assert_int_ge(h->fd, 0);
#else
	ck_assert_int_eq(h->fd, TCPCHAT_ENOTSUP);
#endif
	ck_assert_int_eq(pthread_create(&h->th, NULL, host_main, h), 0);
}

static int host_join(struct host *h)
{
	ck_assert_msg(wait_ge(&h->done, 1), "step() never returned 1");
	pthread_join(h->th, NULL);
	return atomic_load(&h->rc);
}

/* ---- 1. server run modes ------------------------------------------------- */

/* Two users chat through the server; returns them connected. */
static void chat(int port, struct tu_peer *a, struct tu_peer *b)
{
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(a, port, NULL, "alice"), 0);
	ck_assert_int_eq(tu_peer_join(b, port, NULL, "bob"), 0);
	ck_assert_int_eq(tu_peer_expect(a, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "bob");
	ck_assert_int_eq(tu_peer_send_text(b, "hi alice"), 0);
	ck_assert_int_eq(tu_peer_expect(a, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "bob");
	ck_assert_str_eq(m.body, "hi alice");
	ck_assert_int_eq(tu_peer_send_text(a, "hi bob"), 0);
	ck_assert_int_eq(tu_peer_expect(b, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "alice");
	ck_assert_str_eq(m.body, "hi bob");
}

/* After a stop: each user got the shutdown ERROR and was closed. */
static void expect_shutdown(struct tu_peer *p)
{
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_expect(p, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_ESHUTDOWN);
	ck_assert_int_eq(tu_peer_wait_closed(p, TU_TIMEOUT), 1);
	tu_peer_close(p);
}

static void expect_recursion_refused(struct srec *r)
{
	ck_assert_int_eq(atomic_load(&r->probed), 1);
	ck_assert_int_eq(atomic_load(&r->rc_run), TCPCHAT_ERECURSIVE);
	ck_assert_int_eq(atomic_load(&r->rc_step), TCPCHAT_ERECURSIVE);
	ck_assert_int_lt(atomic_load(&r->rc_join), 0);
}

START_TEST(server_blocking_run)
{
	struct srec r;
	srec_init(&r);
	r.probe_recursion = 1;
	int port;
	tcpchat_server *srv = srv_new(&r, &port);
	struct runner rn;
	struct tu_peer a, b;
	runner_start(&rn, srv, NULL);
	chat(port, &a, &b);
	expect_recursion_refused(&r);
	/* Already running: run() from another thread is refused. */
	ck_assert_int_eq(tcpchat_server_run(srv), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_server_stop(srv), 0);
	ck_assert_int_eq(runner_join(&rn), 0);
	expect_shutdown(&a);
	expect_shutdown(&b);
	int reason, error;
	ck_assert(srec_leave(&r, "alice", &reason, &error));
	ck_assert_int_eq(reason, TCPCHAT_REASON_SHUTDOWN);
	ck_assert_int_eq(error, TCPCHAT_ESHUTDOWN);
	ck_assert(srec_leave(&r, "bob", &reason, &error));
	ck_assert_int_eq(reason, TCPCHAT_REASON_SHUTDOWN);

	/* Stopped: nothing listens on the port any more. */
	struct tu_peer c;
	ck_assert_int_ne(tu_peer_connect(&c, port, NULL, 0), 0);
	tu_peer_close(&c);

	/* Run it again: it listens on the same port, the names are free.
	 * The listener opens when run() starts, in the runner thread. */
	ck_assert_int_eq(tcpchat_server_port(srv, 0), port);
	runner_start(&rn, srv, NULL);
	ck_assert(wait_ge(&r.n_running, 2));
	chat(port, &a, &b);
	ck_assert_int_eq(tcpchat_server_stop(srv), 0);
	ck_assert_int_eq(runner_join(&rn), 0);
	expect_shutdown(&a);
	expect_shutdown(&b);
	ck_assert_int_eq(atomic_load(&r.n_join), 4);
	tcpchat_server_destroy(srv);
	srec_fini(&r);
}
END_TEST

START_TEST(server_stop_before_run)
{
	/* A stop posted before run() starts makes it return at once. */
	struct srec r;
	srec_init(&r);
	int port;
	tcpchat_server *srv = srv_new(&r, &port);
	ck_assert_int_eq(tcpchat_server_stop(srv), 0);
	struct runner rn;
	runner_start(&rn, srv, NULL);
	ck_assert_int_eq(runner_join(&rn), 0);
	ck_assert_int_eq(atomic_load(&r.n_running), 1);
	/* ...and only that run: the next one serves until its own stop. */
	runner_start(&rn, srv, NULL);
	ck_assert(wait_ge(&r.n_running, 2));
	struct tu_peer a, b;
	chat(port, &a, &b);
	tcpchat_server_stop(srv);
	ck_assert_int_eq(runner_join(&rn), 0);
	expect_shutdown(&a);
	expect_shutdown(&b);
	tcpchat_server_destroy(srv);
	srec_fini(&r);
}
END_TEST

START_TEST(server_own_thread)
{
	struct srec r;
	srec_init(&r);
	r.probe_recursion = 1;
	int port;
	tcpchat_server *srv = srv_new(&r, &port);
	const int shutdown_ms = 3 * TU_TIMEOUT;
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_SHUTDOWN_TIMEOUT,
	                                  shutdown_ms),
	        0);
	ck_assert_int_eq(tcpchat_server_join(srv), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	ck_assert_int_eq(tcpchat_server_start(srv), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_server_run(srv), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_server_step(srv), TCPCHAT_ESTATE);
	struct tu_peer a, b;
	chat(port, &a, &b);
	expect_recursion_refused(&r);
	/* Queues are empty: the stop must not wait for SHUTDOWN_TIMEOUT
	 * (had it waited, the join would have taken all of it). */
	int64_t t0 = tu_now_ms();
	ck_assert_int_eq(tcpchat_server_stop(srv), 0);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	ck_assert_int_lt(tu_now_ms() - t0, shutdown_ms);
	ck_assert_int_eq(tcpchat_server_join(srv), TCPCHAT_ESTATE);
	expect_shutdown(&a);
	expect_shutdown(&b);
	int reason, error;
	ck_assert(srec_leave(&r, "alice", &reason, &error));
	ck_assert_int_eq(reason, TCPCHAT_REASON_SHUTDOWN);

	/* start again after the join */
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	chat(port, &a, &b);
	ck_assert_int_eq(tcpchat_server_stop(srv), 0);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	expect_shutdown(&a);
	expect_shutdown(&b);
	tcpchat_server_destroy(srv);
	srec_fini(&r);
}
END_TEST

START_TEST(server_host_driven)
{
	struct srec r;
	srec_init(&r);
	r.probe_recursion = 1;
	int port;
	tcpchat_server *srv = srv_new(&r, &port);
	/* Not running yet: step() must be called at once. */
	ck_assert_int_eq(tcpchat_server_timeout_ms(srv), 0);
	int fd = tcpchat_server_fd(srv);
#if TCPCHAT_USE_EPOLL
	ck_assert_int_ge(fd, 0);
#else
	ck_assert_int_eq(fd, TCPCHAT_ENOTSUP);
#endif
	for (int round = 0; round < 2; round++) {
		struct host h;
		host_start(&h, srv, NULL);
		ck_assert_int_eq(h.fd, fd); /* stable */
		/* the first step() (re)opens the listener */
		ck_assert(wait_ge(&h.started, 1));
		struct tu_peer a, b;
		chat(port, &a, &b);
		ck_assert_int_eq(atomic_load(&h.rc_run_inside), TCPCHAT_ESTATE);
		ck_assert_int_eq(atomic_load(&h.rc_start_inside),
		                 TCPCHAT_ESTATE);
		ck_assert_int_eq(tcpchat_server_stop(srv), 0);
		ck_assert_int_eq(host_join(&h), 1);
		ck_assert_int_gt(atomic_load(&h.steps), 1);
		expect_shutdown(&a);
		expect_shutdown(&b);
		ck_assert_int_eq(tcpchat_server_timeout_ms(srv), 0);
	}
	expect_recursion_refused(&r);
	ck_assert_int_eq(atomic_load(&r.n_join), 4);
	int reason, error;
	ck_assert(srec_leave(&r, "bob", &reason, &error));
	ck_assert_int_eq(reason, TCPCHAT_REASON_SHUTDOWN);
	tcpchat_server_destroy(srv);
	srec_fini(&r);
}
END_TEST

/* run()/start() from another thread while the loop thread is inside a
 * callback are "already running" (ESTATE), not recursion; join() from the
 * main thread while the loop thread is in a callback waits and returns
 * what the loop returned. */
START_TEST(server_calls_during_callback)
{
	struct srec r;
	srec_init(&r);
	int port;
	tcpchat_server *srv = srv_new(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	atomic_store(&r.hold_join, 1);
	struct tu_peer a;
	ck_assert_int_eq(tu_peer_connect(&a, port, NULL, 0), 0);
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
	h.code = TCPCHAT_PROTOCOL_VERSION;
	h.sender.ptr = "alice";
	h.sender.len = 5;
	ck_assert_int_eq(tu_peer_send_msg(&a, &h), 0);
	ck_assert(wait_ge(&r.held, 1));
	ck_assert_int_eq(tcpchat_server_run(srv), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_server_start(srv), TCPCHAT_ESTATE);
	atomic_store(&r.release, 1);
	struct tu_msg m;
	ck_assert_int_eq(
	        tu_peer_expect(&a, TCPCHAT_MSG_WELCOME, &m, TU_TIMEOUT), 1);

	/* hold the loop in the shutdown LEAVE event while joining */
	atomic_store(&r.release, 0);
	atomic_store(&r.hold_leave, 1);
	ck_assert_int_eq(tcpchat_server_stop(srv), 0);
	ck_assert(wait_ge(&r.held, 2));
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	ck_assert_int_eq(atomic_load(&r.n_leave), 1);
	expect_shutdown(&a);
	tcpchat_server_destroy(srv);
	srec_fini(&r);
}
END_TEST

/* ---- 2. client run modes ------------------------------------------------- */

enum { MODE_RUN, MODE_THREAD, MODE_HOST };

struct cloop {
	int mode;
	struct runner rn;
	struct host h;
};

static void cloop_start(struct cloop *l, int mode, tcpchat_client *cli)
{
	l->mode = mode;
	if (mode == MODE_RUN)
		runner_start(&l->rn, NULL, cli);
	else if (mode == MODE_THREAD)
		ck_assert_int_eq(tcpchat_client_start(cli), 0);
	else
		host_start(&l->h, NULL, cli);
}

/* Returns what run()/join() returned, or 0 when step() returned 1. */
static int cloop_end(struct cloop *l, tcpchat_client *cli)
{
	if (l->mode == MODE_RUN)
		return runner_join(&l->rn);
	if (l->mode == MODE_THREAD)
		return tcpchat_client_join(cli);
	int rc = host_join(&l->h);
	ck_assert_int_eq(rc, 1);
	/* while the host loop drove it, run() and start() refused */
	ck_assert_int_eq(atomic_load(&l->h.rc_run_inside), TCPCHAT_ESTATE);
	ck_assert_int_eq(atomic_load(&l->h.rc_start_inside), TCPCHAT_ESTATE);
	return 0;
}

static void client_mode(int mode)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "peer"), 0);
	struct crec r;
	crec_init(&r);
	tcpchat_client *cli = cli_new(&r);
	ck_assert_int_eq(tcpchat_client_is_connected(cli), 0);
	cli_connect(cli, port, "cli");
	ck_assert_int_eq(tcpchat_client_connect(cli, "127.0.0.1:1", "x"),
	                 TCPCHAT_ESTATE);
	struct cloop l;
	cloop_start(&l, mode, cli);

	ck_assert(wait_ge(&r.connected, 1));
	pthread_mutex_lock(&r.mu);
	ck_assert_str_eq(r.name, "cli");
	pthread_mutex_unlock(&r.mu);
	ck_assert_int_eq(tcpchat_client_is_connected(cli), 1);
	ck_assert(crec_has_log(&r, "cli"));
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "cli");

	ck_assert_int_eq(tcpchat_client_send(cli, "hello from cli", 14), 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "cli");
	ck_assert_str_eq(m.body, "hello from cli");

	ck_assert_int_eq(tu_peer_send_text(&p, "hello from peer"), 0);
	ck_assert(wait_has(&r, TCPCHAT_MSG_TEXT, "peer", "hello from peer"));

	ck_assert_int_eq(tcpchat_client_stop(cli), 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "cli");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);
	ck_assert(wait_ge(&r.disconnected, 1));
	ck_assert_int_eq(cloop_end(&l, cli), 0);
	ck_assert_int_eq(atomic_load(&r.disconnected), 1);
	ck_assert_int_eq(r.reason, TCPCHAT_REASON_QUIT);
	ck_assert_int_eq(r.error, 0);
	ck_assert_int_eq(tcpchat_client_is_connected(cli), 0);
	ck_assert_int_eq(tcpchat_client_send(cli, "late", 4), TCPCHAT_ECLOSED);
	/* over: run() refuses, step() says "done" */
	ck_assert_int_eq(tcpchat_client_run(cli), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_step(cli), 1);

	/* connect again, same name, same mode */
	cli_connect(cli, port, "cli");
	cloop_start(&l, mode, cli);
	ck_assert(wait_ge(&r.connected, 2));
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "cli");
	ck_assert_int_eq(tcpchat_client_send(cli, "again", 5), 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "again");
	ck_assert_int_eq(tcpchat_client_stop(cli), 0);
	ck_assert_int_eq(cloop_end(&l, cli), 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT),
	                 1);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);
	ck_assert_int_eq(atomic_load(&r.disconnected), 2);

	tcpchat_client_destroy(cli);
	tu_peer_close(&p);
	tu_server_stop(srv);
	crec_fini(&r);
}

START_TEST(client_blocking_run)
{
	client_mode(MODE_RUN);
}
END_TEST

START_TEST(client_own_thread)
{
	client_mode(MODE_THREAD);
}
END_TEST

START_TEST(client_host_driven)
{
	tcpchat_client *cli = cli_new(NULL);
	/* idle: step() has nothing to do */
	ck_assert_int_eq(tcpchat_client_step(cli), 1);
	ck_assert_int_eq(tcpchat_client_timeout_ms(cli), 0);
	tcpchat_client_destroy(cli);
	client_mode(MODE_HOST);
}
END_TEST

START_TEST(client_recursion_refused)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct crec r;
	crec_init(&r);
	r.probe_recursion = 1;
	tcpchat_client *cli = cli_new(&r);
	cli_connect(cli, port, "cli");
	ck_assert_int_eq(tcpchat_client_start(cli), 0);
	ck_assert_int_eq(tcpchat_client_start(cli), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_run(cli), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_step(cli), TCPCHAT_ESTATE);
	ck_assert(wait_ge(&r.connected, 1));
	ck_assert_int_eq(atomic_load(&r.rc_run), TCPCHAT_ERECURSIVE);
	ck_assert_int_eq(atomic_load(&r.rc_step), TCPCHAT_ERECURSIVE);
	ck_assert_int_eq(atomic_load(&r.rc_connect), TCPCHAT_ERECURSIVE);
	ck_assert_int_lt(atomic_load(&r.rc_join), 0);
	ck_assert_int_eq(tcpchat_client_stop(cli), 0);
	ck_assert_int_eq(tcpchat_client_join(cli), 0);
	ck_assert_int_eq(r.reason, TCPCHAT_REASON_QUIT);
	tcpchat_client_destroy(cli);
	tu_server_stop(srv);
	crec_fini(&r);
}
END_TEST

/* As server_calls_during_callback, for the client. */
START_TEST(client_calls_during_callback)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct crec r;
	crec_init(&r);
	tcpchat_client *cli = cli_new(&r);
	cli_connect(cli, port, "cli");
	atomic_store(&r.hold_connected, 1);
	ck_assert_int_eq(tcpchat_client_start(cli), 0);
	ck_assert(wait_ge(&r.held, 1));
	ck_assert_int_eq(tcpchat_client_run(cli), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_start(cli), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_send(cli, "queued", 6), 0);
	atomic_store(&r.release, 1);
	ck_assert(wait_ge(&r.connected, 1));

	atomic_store(&r.release, 0);
	atomic_store(&r.hold_disc, 1);
	ck_assert_int_eq(tcpchat_client_stop(cli), 0);
	ck_assert(wait_ge(&r.held, 2));
	ck_assert_int_eq(tcpchat_client_join(cli), 0);
	ck_assert_int_eq(atomic_load(&r.disconnected), 1);
	ck_assert_int_eq(r.reason, TCPCHAT_REASON_QUIT);
	tcpchat_client_destroy(cli);
	tu_server_stop(srv);
	crec_fini(&r);
}
END_TEST

/* ---- 3. client edge cases ------------------------------------------------ */

START_TEST(client_name_in_use)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "dup"), 0);
	struct crec r;
	crec_init(&r);
	tcpchat_client *cli = cli_new(&r);
	cli_connect(cli, port, "dup");
	ck_assert_int_eq(tcpchat_client_run(cli), TCPCHAT_ENAMEINUSE);
	ck_assert_int_eq(atomic_load(&r.connected), 0);
	ck_assert_int_eq(atomic_load(&r.disconnected), 1);
	ck_assert_int_eq(r.error, TCPCHAT_ENAMEINUSE);
	ck_assert_int_eq(r.reason, TCPCHAT_REASON_ERROR);
	ck_assert_int_gt(strlen(r.text), 0);
	ck_assert_int_eq(tcpchat_client_is_connected(cli), 0);
	ck_assert_int_eq(tcpchat_client_send(cli, "x", 1), TCPCHAT_ECLOSED);
	/* The first "dup" is unaffected. */
	struct tu_peer q;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&q, port, NULL, "other"), 0);
	ck_assert_int_eq(tu_peer_send_text(&q, "still there?"), 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "still there?");
	tcpchat_client_destroy(cli);
	tu_peer_close(&p);
	tu_peer_close(&q);
	tu_server_stop(srv);
	crec_fini(&r);
}
END_TEST

START_TEST(client_connect_refused)
{
	struct crec r;
	crec_init(&r);
	tcpchat_client *cli = cli_new(&r);
	cli_connect(cli, closed_port(), "cli");
	/* queued before the connection fails: dropped with it */
	ck_assert_int_eq(tcpchat_client_send(cli, "lost", 4), 0);
	ck_assert_int_eq(tcpchat_client_run(cli), TCPCHAT_ESYS);
	ck_assert_int_eq(atomic_load(&r.connected), 0);
	ck_assert_int_eq(atomic_load(&r.disconnected), 1);
	ck_assert_int_eq(r.error, TCPCHAT_ESYS);
	ck_assert_int_eq(r.reason, TCPCHAT_REASON_ERROR);
	ck_assert_int_gt(strlen(r.text), 0);
	ck_assert_int_eq(tcpchat_client_run(cli), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_send(cli, "x", 1), TCPCHAT_ECLOSED);

	/* Connecting again (to a server now): the text of the failed
	 * connection is not sent on the new one. */
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "peer"), 0);
	cli_connect(cli, port, "cli");
	ck_assert_int_eq(tcpchat_client_send(cli, "fresh", 5), 0);
	ck_assert_int_eq(tcpchat_client_start(cli), 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "fresh");
	ck_assert_int_eq(tcpchat_client_stop(cli), 0);
	ck_assert_int_eq(tcpchat_client_join(cli), 0);
	ck_assert_int_eq(atomic_load(&r.connected), 1);
	tcpchat_client_destroy(cli);
	tu_peer_close(&p);
	tu_server_stop(srv);
	crec_fini(&r);
}
END_TEST

/* Starts a client called name in its own thread and waits until joined. */
static tcpchat_client *cli_joined(struct crec *r, int port, const char *name,
                                  struct tu_peer *watcher)
{
	tcpchat_client *cli = cli_new(r);
	cli_connect(cli, port, name);
	ck_assert_int_eq(tcpchat_client_start(cli), 0);
	ck_assert(wait_ge(&r->connected, 1));
	if (watcher) {
		struct tu_msg m;
		ck_assert_int_eq(tu_peer_expect(watcher, TCPCHAT_MSG_JOIN, &m,
		                                TU_TIMEOUT),
		                 1);
		ck_assert_str_eq(m.sender, name);
	}
	return cli;
}

START_TEST(client_server_shutdown)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct crec r;
	crec_init(&r);
	tcpchat_client *cli = cli_joined(&r, port, "cli", NULL);
	tu_server_stop(srv);
	ck_assert(wait_ge(&r.disconnected, 1));
	ck_assert_int_eq(tcpchat_client_join(cli), TCPCHAT_ESHUTDOWN);
	ck_assert_int_eq(r.reason, TCPCHAT_REASON_SHUTDOWN);
	ck_assert_int_eq(r.error, TCPCHAT_ESHUTDOWN);
	ck_assert_str_eq(r.text, "server shutting down");
	/* the ERROR itself came as a message first */
	ck_assert(crec_has(&r, TCPCHAT_MSG_ERROR, "", "server shutting down"));
	ck_assert_int_eq(tcpchat_client_is_connected(cli), 0);
	tcpchat_client_destroy(cli);
	crec_fini(&r);
}
END_TEST

START_TEST(client_kicked)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "peer"), 0);
	struct crec r;
	crec_init(&r);
	tcpchat_client *cli = cli_joined(&r, port, "cli", &p);
	ck_assert_int_eq(tcpchat_server_kick(srv, "cli", "behave"), 0);
	ck_assert(wait_ge(&r.disconnected, 1));
	ck_assert_int_eq(tcpchat_client_join(cli), TCPCHAT_EKICKED);
	ck_assert_int_eq(r.reason, TCPCHAT_REASON_KICKED);
	ck_assert_int_eq(r.error, TCPCHAT_EKICKED);
	ck_assert_str_eq(r.text, "behave");
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "cli");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	tcpchat_client_destroy(cli);
	tu_peer_close(&p);
	tu_server_stop(srv);
	crec_fini(&r);
}
END_TEST

START_TEST(client_send_before_handshake)
{
	enum { N = 5 };
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "peer"), 0);
	struct crec r;
	crec_init(&r);
	tcpchat_client *cli = cli_new(&r);
	cli_connect(cli, port, "early");
	char text[32];
	for (int k = 0; k < N; k++) {
		snprintf(text, sizeof text, "early %d", k);
		ck_assert_int_eq(tcpchat_client_send(cli, text, strlen(text)),
		                 0);
	}
	ck_assert_int_eq(tcpchat_client_start(cli), 0);
	/* JOIN first (the texts were not sent before HELLO), then in order */
	ck_assert_int_eq(tu_peer_recv(&p, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_JOIN);
	ck_assert_str_eq(m.sender, "early");
	for (int k = 0; k < N; k++) {
		snprintf(text, sizeof text, "early %d", k);
		ck_assert_int_eq(tu_peer_recv(&p, &m, TU_TIMEOUT), 1);
		ck_assert_uint_eq(m.type, TCPCHAT_MSG_TEXT);
		ck_assert_str_eq(m.sender, "early");
		ck_assert_str_eq(m.body, text);
	}
	ck_assert_int_eq(atomic_load(&r.connected), 1);
	ck_assert_int_eq(tcpchat_client_stop(cli), 0);
	ck_assert_int_eq(tcpchat_client_join(cli), 0);
	tcpchat_client_destroy(cli);
	tu_peer_close(&p);
	tu_server_stop(srv);
	crec_fini(&r);
}
END_TEST

/* `printf ... | client`: queue everything, stop at once; nothing lost.
 * Rounds: 0: all before run(); 1: own thread, during the handshake;
 * 2: own thread, once connected (the loop takes the texts in batches
 * while the stop comes in). */
START_TEST(client_send_then_stop)
{
	enum { ROUNDS = 12, N = 100 };
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "peer"), 0);
	for (int round = 0; round < ROUNDS; round++) {
		char name[16], text[32];
		snprintf(name, sizeof name, "pipe%d", round);
		struct crec r;
		crec_init(&r);
		tcpchat_client *cli = cli_new(&r);
		cli_connect(cli, port, name);
		int own_thread = round % 3 != 0;
		if (own_thread)
			ck_assert_int_eq(tcpchat_client_start(cli), 0);
		if (round % 3 == 2)
			ck_assert(wait_ge(&r.connected, 1));
		for (int k = 0; k < N; k++) {
			snprintf(text, sizeof text, "line %d", k);
			ck_assert_int_eq(
			        tcpchat_client_send(cli, text, strlen(text)),
			        0);
		}
		ck_assert_int_eq(tcpchat_client_stop(cli), 0);
		if (own_thread)
			ck_assert_int_eq(tcpchat_client_join(cli), 0);
		else
			ck_assert_int_eq(tcpchat_client_run(cli), 0);
		ck_assert_int_eq(tu_peer_recv(&p, &m, TU_TIMEOUT), 1);
		ck_assert_uint_eq(m.type, TCPCHAT_MSG_JOIN);
		ck_assert_str_eq(m.sender, name);
		for (int k = 0; k < N; k++) {
			snprintf(text, sizeof text, "line %d", k);
			ck_assert_int_eq(tu_peer_recv(&p, &m, TU_TIMEOUT), 1);
			ck_assert_msg(m.type == TCPCHAT_MSG_TEXT,
			              "round %d: got type %u before line %d",
			              round, m.type, k);
			ck_assert_str_eq(m.sender, name);
			ck_assert_str_eq(m.body, text);
		}
		ck_assert_int_eq(tu_peer_recv(&p, &m, TU_TIMEOUT), 1);
		ck_assert_uint_eq(m.type, TCPCHAT_MSG_LEAVE);
		ck_assert_str_eq(m.sender, name);
		ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);
		tcpchat_client_destroy(cli);
		crec_fini(&r);
	}
	tu_peer_close(&p);
	tu_server_stop(srv);
}
END_TEST

START_TEST(client_bad_arguments)
{
	tcpchat_client *cli = cli_new(NULL);
	/* never connected */
	ck_assert_int_eq(tcpchat_client_send(cli, "hi", 2), TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_run(cli), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_start(cli), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_join(cli), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_is_connected(cli), 0);
	/* bad names */
	char longname[TCPCHAT_NAME_MAX + 2];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	const char *names[] = {"",     "two words", "tab\tname",
	                       "nl\n", longname,    "\xff\xfe"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		ck_assert_msg(
		        tcpchat_client_connect(cli, "127.0.0.1:1", names[i]) ==
		                TCPCHAT_EBADNAME,
		        "name %zu accepted", i);
	/* bad addresses */
	const char *addrs[] = {"nonsense",        "",
	                       "127.0.0.1",       "127.0.0.1:",
	                       "127.0.0.1:99999", "127.0.0.1:port",
	                       "::1:80",          "[::1"};
	for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++)
		ck_assert_msg(tcpchat_client_connect(cli, addrs[i], "bob") ==
		                      TCPCHAT_EADDR,
		              "address '%s' accepted", addrs[i]);
	ck_assert_int_eq(tcpchat_client_connect(cli, NULL, "bob"),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_connect(cli, "127.0.0.1:1", NULL),
	                 TCPCHAT_EINVAL);
	/* still idle */
	ck_assert_int_eq(tcpchat_client_send(cli, "hi", 2), TCPCHAT_ECLOSED);
	ck_assert_int_eq(tcpchat_client_run(cli), TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_step(cli), 1);
	ck_assert_int_eq(tcpchat_client_send(NULL, "hi", 2), TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_stop(NULL), TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_is_connected(NULL), 0);
	tcpchat_client_destroy(cli);
	tcpchat_client_destroy(NULL);
}
END_TEST

START_TEST(client_invalid_text)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "peer"), 0);
	struct crec r;
	crec_init(&r);
	tcpchat_client *cli = cli_joined(&r, port, "cli", &p);
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
	        {"", 0},
	        {"x", 0},
	        {"\xff", 1},
	        {"a\xc0\xaf", 3},
	        {"\xed\xa0\x80", 3},
	        {"a\nb", 3},
	        {"line\n", 5},
	        {"nul\0x", 5},
	        {"del\x7f", 4},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(tcpchat_client_send(cli, bad[i].s, bad[i].len) ==
		                      TCPCHAT_EINVAL,
		              "text %zu accepted", i);
	ck_assert_int_eq(tcpchat_client_send(cli, NULL, 3), TCPCHAT_EINVAL);
	/* nothing was sent: the next TEXT is the good one */
	ck_assert_int_eq(tcpchat_client_send(cli, "caf\xc3\xa9\tok", 8), 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "caf\xc3\xa9\tok");
	ck_assert_int_eq(tcpchat_client_is_connected(cli), 1);
	ck_assert_int_eq(tcpchat_client_stop(cli), 0);
	ck_assert_int_eq(tcpchat_client_join(cli), 0);
	tcpchat_client_destroy(cli);
	tu_peer_close(&p);
	tu_server_stop(srv);
	crec_fini(&r);
}
END_TEST

START_TEST(client_destroy_while_running)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "peer"), 0);
	struct crec r;
	crec_init(&r);
	tcpchat_client *cli = cli_joined(&r, port, "cli", &p);
	/* some queued work that destroy must free */
	for (int k = 0; k < 20; k++)
		ck_assert_int_eq(tcpchat_client_send(cli, "bye bye", 7), 0);
	/* destroy closes at once: it does not wait for the stop timeout to
	 * flush (TU_TIMEOUT, see cli_new) */
	int64_t t0 = tu_now_ms();
	tcpchat_client_destroy(cli);
	ck_assert_int_lt(tu_now_ms() - t0, TU_TIMEOUT);
	/* the server sees the connection go */
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "cli");
	/* Destroying one that connected but never ran, too. */
	tcpchat_client *c2 = cli_new(NULL);
	cli_connect(c2, port, "c2");
	ck_assert_int_eq(tcpchat_client_send(c2, "never sent", 10), 0);
	tcpchat_client_destroy(c2);
	tu_peer_close(&p);
	tu_server_stop(srv);
	crec_fini(&r);
}
END_TEST

/* ---- 4. thread-safe calls while the loop runs ------------------------------ */

struct bcast {
	pthread_t th;
	tcpchat_server *srv;
	tcpchat_client *cli;
	int index, count;
	atomic_int *sent;  /* shared progress counter, may be NULL */
	atomic_int failed; /* calls that did not return 0 */
};

static void *bcast_main(void *arg)
{
	struct bcast *b = arg;
	char text[32];
	for (int k = 0; k < b->count; k++) {
		snprintf(text, sizeof text, "%c%d %d", b->cli ? 'c' : 't',
		         b->index, k);
		int rc =
		        b->cli ? tcpchat_client_send(b->cli, text, strlen(text))
		               : tcpchat_server_broadcast(b->srv, text,
		                                          strlen(text));
		if (rc != 0)
			atomic_fetch_add(&b->failed, 1);
		if (b->sent)
			atomic_fetch_add(b->sent, 1);
	}
	return NULL;
}

static void bcast_start(struct bcast *b, tcpchat_server *srv,
                        tcpchat_client *cli, int index, int count,
                        atomic_int *sent)
{
	memset(b, 0, sizeof *b);
	b->srv = srv;
	b->cli = cli;
	b->index = index;
	b->count = count;
	b->sent = sent;
	ck_assert_int_eq(pthread_create(&b->th, NULL, bcast_main, b), 0);
}

/* Reads `total` TEXTs "<tag><i> <k>" from p: every thread's k in order,
 * each exactly once (gaps allowed when lossy). */
static void read_numbered(struct tu_peer *p, char tag, int threads, int total,
                          const char *sender, int lossy)
{
	int next[8] = {0};
	struct tu_msg m;
	uint64_t last_id = 0;
	for (int n = 0; n < total; n++) {
		ck_assert_int_eq(
		        tu_peer_expect(p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT), 1);
		char t;
		int i, k;
		ck_assert_msg(sscanf(m.body, "%c%d %d", &t, &i, &k) == 3 &&
		                      t == tag && i >= 0 && i < threads,
		              "unexpected text '%s'", m.body);
		ck_assert_str_eq(m.sender, sender);
		ck_assert_uint_gt(m.id, last_id);
		last_id = m.id;
		if (lossy)
			ck_assert_int_ge(k, next[i]);
		else
			ck_assert_int_eq(k, next[i]);
		next[i] = k + 1;
	}
}

START_TEST(threads_broadcast)
{
	enum { T = 4, N = 250 };
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "reader"), 0);
	struct bcast b[T];
	for (int i = 0; i < T; i++)
		bcast_start(&b[i], srv, NULL, i, N, NULL);
	read_numbered(&p, 't', T, T * N, "", 0);
	for (int i = 0; i < T; i++) {
		pthread_join(b[i].th, NULL);
		ck_assert_int_eq(atomic_load(&b[i].failed), 0);
	}
	/* nothing more than the 1000: the next TEXT is the marker */
	ck_assert_int_eq(tcpchat_server_broadcast(srv, "end", 3), 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "end");
	/* invalid broadcasts are refused up front */
	ck_assert_int_eq(tcpchat_server_broadcast(srv, "", 0), TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_broadcast(srv, NULL, 1),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_broadcast(srv, "\xff", 1),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_broadcast(srv, "a\nb", 3),
	                 TCPCHAT_EINVAL);
	tu_peer_close(&p);
	tu_server_stop(srv);
}
END_TEST

struct action {
	pthread_t th;
	tcpchat_server *srv;
	int kind; /* 0 send_to, 1 kick, 2 stop */
	const char *name, *text;
	atomic_int *wait_for;
	int wait_min;
	atomic_int rc, rc2;
};

static void *action_main(void *arg)
{
	struct action *a = arg;
	if (a->wait_for && !wait_ge(a->wait_for, a->wait_min)) {
		atomic_store(&a->rc, TCPCHAT_ETIMEDOUT);
		return NULL;
	}
	switch (a->kind) {
	case 0:
		atomic_store(&a->rc,
		             tcpchat_server_send_to(a->srv, a->name, a->text,
		                                    strlen(a->text)));
		/* and one for nobody: queued, then skipped */
		atomic_store(&a->rc2, tcpchat_server_send_to(a->srv, "nobody",
		                                             "lost", 4));
		break;
	case 1:
		atomic_store(&a->rc,
		             tcpchat_server_kick(a->srv, a->name, a->text));
		break;
	default:
		atomic_store(&a->rc, tcpchat_server_stop(a->srv));
		break;
	}
	return NULL;
}

static void action_run(struct action *a, tcpchat_server *srv, int kind,
                       const char *name, const char *text)
{
	memset(a, 0, sizeof *a);
	a->srv = srv;
	a->kind = kind;
	a->name = name;
	a->text = text;
	ck_assert_int_eq(pthread_create(&a->th, NULL, action_main, a), 0);
}

START_TEST(threads_send_to)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&a, port, NULL, "alice"), 0);
	ck_assert_int_eq(tu_peer_join(&b, port, NULL, "bob"), 0);
	struct action act;
	action_run(&act, srv, 0, "alice", "for alice only");
	pthread_join(act.th, NULL);
	ck_assert_int_eq(atomic_load(&act.rc), 0);
	ck_assert_int_eq(atomic_load(&act.rc2), 0);
	ck_assert_int_eq(tcpchat_server_broadcast(srv, "marker", 6), 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "for alice only");
	ck_assert_str_eq(m.sender, "");
	ck_assert_uint_gt(m.id, 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "marker");
	ck_assert_int_eq(tu_peer_expect(&b, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "marker");
	/* argument checks */
	ck_assert_int_eq(tcpchat_server_send_to(srv, NULL, "x", 1),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_send_to(srv, "alice", "", 0),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_send_to(srv, "", "x", 1),
	                 TCPCHAT_EINVAL);
	tu_peer_close(&a);
	tu_peer_close(&b);
	tu_server_stop(srv);
}
END_TEST

START_TEST(threads_kick)
{
	struct srec r;
	srec_init(&r);
	int port;
	tcpchat_server *srv = srv_new(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, b;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&a, port, NULL, "alice"), 0);
	ck_assert_int_eq(tu_peer_join(&b, port, NULL, "bob"), 0);
	struct action act;
	action_run(&act, srv, 1, "alice", "go away");
	pthread_join(act.th, NULL);
	ck_assert_int_eq(atomic_load(&act.rc), 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_EKICKED);
	ck_assert_str_eq(m.body, "go away");
	ck_assert_int_eq(tu_peer_wait_closed(&a, TU_TIMEOUT), 1);
	ck_assert_int_eq(tu_peer_expect(&b, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "alice");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_KICKED);
	ck_assert_str_eq(m.body, "go away");
	int reason, error;
	ck_assert(wait_ge(&r.n_leave, 1));
	ck_assert(srec_leave(&r, "alice", &reason, &error));
	ck_assert_int_eq(reason, TCPCHAT_REASON_KICKED);
	ck_assert_int_eq(error, TCPCHAT_EKICKED);
	/* kicking nobody is queued and only logged */
	ck_assert_int_eq(tcpchat_server_kick(srv, "ghost", NULL), 0);
	struct log_wait lw = {&r, "no user called ghost"};
	ck_assert(tu_wait_until(cond_log, &lw, TU_TIMEOUT));
	ck_assert_int_eq(tcpchat_server_kick(srv, NULL, NULL), TCPCHAT_EINVAL);
	/* a default reason */
	ck_assert_int_eq(tcpchat_server_kick(srv, "bob", NULL), 0);
	ck_assert_int_eq(tu_peer_expect(&b, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_EKICKED);
	ck_assert_str_eq(m.body, "kicked");
	ck_assert_int_eq(tu_peer_wait_closed(&b, TU_TIMEOUT), 1);
	tu_peer_close(&a);
	tu_peer_close(&b);
	tcpchat_server_stop(srv);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	tcpchat_server_destroy(srv);
	srec_fini(&r);
}
END_TEST

START_TEST(threads_stop_while_broadcasting)
{
	enum { T = 3, N = 3000 };
	int port;
	tcpchat_server *srv = srv_new(NULL, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "reader"), 0);
	atomic_int sent;
	atomic_init(&sent, 0);
	struct bcast b[T];
	for (int i = 0; i < T; i++)
		bcast_start(&b[i], srv, NULL, i, N, &sent);
	struct action stopper;
	memset(&stopper, 0, sizeof stopper);
	stopper.srv = srv;
	stopper.kind = 2;
	stopper.wait_for = &sent;
	stopper.wait_min = 300;
	ck_assert_int_eq(
	        pthread_create(&stopper.th, NULL, action_main, &stopper), 0);
	/* Read until closed: texts in per-thread order, then the ERROR. */
	int next[T] = {0}, texts = 0, got_shutdown = 0;
	int64_t deadline = tu_now_ms() + 2 * TU_TIMEOUT;
	for (;;) {
		ck_assert_msg(tu_now_ms() < deadline, "never closed");
		int rc = tu_peer_recv(&p, &m, TU_TIMEOUT);
		ck_assert_int_ne(rc, 0);
		if (rc < 0)
			break;
		if (m.type == TCPCHAT_MSG_TEXT) {
			ck_assert(!got_shutdown);
			int i, k;
			ck_assert_int_eq(sscanf(m.body, "t%d %d", &i, &k), 2);
			ck_assert(i >= 0 && i < T);
			ck_assert_int_ge(k, next[i]);
			next[i] = k + 1;
			texts++;
		} else if (m.type == TCPCHAT_MSG_ERROR) {
			ck_assert_int_eq(-(int)m.code, TCPCHAT_ESHUTDOWN);
			got_shutdown = 1;
		}
	}
	ck_assert(got_shutdown);
	ck_assert_int_gt(texts, 0);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	pthread_join(stopper.th, NULL);
	ck_assert_int_eq(atomic_load(&stopper.rc), 0);
	for (int i = 0; i < T; i++) {
		pthread_join(b[i].th, NULL);
		ck_assert_int_eq(atomic_load(&b[i].failed), 0);
	}
	tu_peer_close(&p);
	tcpchat_server_destroy(srv);
}
END_TEST

/* Broadcasts queued before stop() reach the users before the shutdown
 * ERROR; a stop does not overtake them. */
#define LAST_WORDS 100

struct last_words {
	tcpchat_server *srv;
	atomic_int failed;
};

static void *last_words_main(void *arg)
{
	struct last_words *w = arg;
	char text[16];
	for (int k = 0; k < LAST_WORDS; k++) {
		snprintf(text, sizeof text, "t0 %d", k);
		if (tcpchat_server_broadcast(w->srv, text, strlen(text)))
			atomic_fetch_add(&w->failed, 1);
	}
	if (tcpchat_server_stop(w->srv))
		atomic_fetch_add(&w->failed, 1);
	return NULL;
}

START_TEST(threads_broadcast_then_stop)
{
	for (int round = 0; round < 10; round++) {
		int port;
		tcpchat_server *srv = srv_new(NULL, &port);
		ck_assert_int_eq(tcpchat_server_start(srv), 0);
		struct tu_peer p;
		ck_assert_int_eq(tu_peer_join(&p, port, NULL, "reader"), 0);
		struct last_words w = {.srv = srv};
		pthread_t th;
		ck_assert_int_eq(pthread_create(&th, NULL, last_words_main, &w),
		                 0);
		read_numbered(&p, 't', 1, LAST_WORDS, "", 0);
		expect_shutdown(&p);
		pthread_join(th, NULL);
		ck_assert_int_eq(atomic_load(&w.failed), 0);
		ck_assert_int_eq(tcpchat_server_join(srv), 0);
		tcpchat_server_destroy(srv);
	}
}
END_TEST

START_TEST(threads_client_send)
{
	enum { T = 4, N = 100 };
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&p, port, NULL, "reader"), 0);
	struct crec r;
	crec_init(&r);
	tcpchat_client *cli = cli_joined(&r, port, "multi", &p);
	struct bcast b[T];
	for (int i = 0; i < T; i++)
		bcast_start(&b[i], NULL, cli, i, N, NULL);
	for (int i = 0; i < T; i++)
		pthread_join(b[i].th, NULL);
	for (int i = 0; i < T; i++)
		ck_assert_int_eq(atomic_load(&b[i].failed), 0);
	ck_assert_int_eq(tcpchat_client_stop(cli), 0);
	read_numbered(&p, 'c', T, T * N, "multi", 0);
	ck_assert_int_eq(tu_peer_recv(&p, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_LEAVE);
	ck_assert_str_eq(m.sender, "multi");
	ck_assert_int_eq(tcpchat_client_join(cli), 0);
	tcpchat_client_destroy(cli);
	tu_peer_close(&p);
	tu_server_stop(srv);
	crec_fini(&r);
}
END_TEST

/* ---- 5. handlers ----------------------------------------------------------- */

START_TEST(handler_connect_filter)
{
	struct srec r;
	srec_init(&r);
	int port;
	tcpchat_server *srv = srv_new(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	atomic_store(&r.refuse_connect, 1);
	struct tu_peer a;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_connect(&a, port, NULL, 0), 0);
	/* closed, and not a byte was sent */
	ck_assert_int_eq(tu_peer_recv(&a, &m, TU_TIMEOUT), -1);
	ck_assert_uint_eq(a.in.len, 0);
	tu_peer_close(&a);
	ck_assert_int_eq(atomic_load(&r.n_connect), 1);
	ck_assert_int_eq(atomic_load(&r.n_connect_ok), 1);
	atomic_store(&r.refuse_connect, 0);
	ck_assert_int_eq(tu_peer_join(&a, port, NULL, "alice"), 0);
	ck_assert_int_eq(atomic_load(&r.n_connect), 2);
	ck_assert_int_eq(atomic_load(&r.n_join), 1);
	tu_peer_close(&a);
	tcpchat_server_stop(srv);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	tcpchat_server_destroy(srv);
	srec_fini(&r);
}
END_TEST

/* Sends a HELLO for name and returns the first message back. */
static void hello_and_recv(struct tu_peer *p, int port, const char *name,
                           struct tu_msg *m)
{
	ck_assert_int_eq(tu_peer_connect(p, port, NULL, 0), 0);
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
	h.code = TCPCHAT_PROTOCOL_VERSION;
	h.sender.ptr = name;
	h.sender.len = strlen(name);
	ck_assert_int_eq(tu_peer_send_msg(p, &h), 0);
	ck_assert_int_eq(tu_peer_recv(p, m, TU_TIMEOUT), 1);
}

START_TEST(handler_join_refused)
{
	struct srec r;
	srec_init(&r);
	r.refuse_name = "mallory";
	r.refuse_reason = "mallory is banned here";
	r.refuse_name2 = "eve";
	int port;
	tcpchat_server *srv = srv_new(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, x, b;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&a, port, NULL, "alice"), 0);

	hello_and_recv(&x, port, "mallory", &m);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_ERROR);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_EREFUSED);
	ck_assert_str_eq(m.body, "mallory is banned here");
	ck_assert_int_eq(tu_peer_wait_closed(&x, TU_TIMEOUT), 1);
	tu_peer_close(&x);

	/* refused with no reason: a default text */
	hello_and_recv(&x, port, "eve", &m);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_ERROR);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_EREFUSED);
	ck_assert_uint_gt(m.body_len, 0);
	ck_assert_int_eq(tu_peer_wait_closed(&x, TU_TIMEOUT), 1);
	tu_peer_close(&x);

	/* never joined: DISCONNECT events, no LEAVE, no JOIN notice */
	ck_assert(wait_ge(&r.n_disconnect, 2));
	pthread_mutex_lock(&r.mu);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(r.disc[i].error, TCPCHAT_EREFUSED);
	pthread_mutex_unlock(&r.mu);
	ck_assert_int_eq(atomic_load(&r.n_leave), 0);
	ck_assert_int_eq(tu_peer_join(&b, port, NULL, "bob"), 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_JOIN, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "bob");
	/* the refused name was not taken */
	ck_assert_int_eq(atomic_load(&r.n_join), 2);
	tu_peer_close(&a);
	tu_peer_close(&b);
	tcpchat_server_stop(srv);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	tcpchat_server_destroy(srv);
	srec_fini(&r);
}
END_TEST

START_TEST(handler_message_veto)
{
	struct srec r;
	srec_init(&r);
	r.veto_prefix = "bad";
	r.veto_reason = "watch your language";
	int port;
	tcpchat_server *srv = srv_new(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, b;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&a, port, NULL, "alice"), 0);
	ck_assert_int_eq(tu_peer_join(&b, port, NULL, "bob"), 0);
	ck_assert_int_eq(tu_peer_send_text(&a, "bad word"), 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_EREFUSED);
	ck_assert_str_eq(m.body, "watch your language");
	/* alice is still connected and heard; bob never got the bad one */
	ck_assert_int_eq(tu_peer_send_text(&a, "good word"), 0);
	ck_assert_int_eq(tu_peer_expect(&b, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "alice");
	ck_assert_str_eq(m.body, "good word");
	ck_assert_int_eq(tu_peer_send_text(&b, "reply"), 0);
	ck_assert_int_eq(tu_peer_expect(&a, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, "reply");
	ck_assert_int_eq(atomic_load(&r.n_message), 3);
	ck_assert_int_eq(atomic_load(&r.n_message_ok), 3);
	ck_assert_int_eq(atomic_load(&r.n_leave), 0);
	tu_peer_close(&a);
	tu_peer_close(&b);
	tcpchat_server_stop(srv);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	tcpchat_server_destroy(srv);
	srec_fini(&r);
}
END_TEST

START_TEST(handler_leave_reasons)
{
	struct srec r;
	srec_init(&r);
	int port;
	tcpchat_server *srv = srv_new(&r, &port);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer q, c, k, s;
	ck_assert_int_eq(tu_peer_join(&q, port, NULL, "quitter"), 0);
	ck_assert_int_eq(tu_peer_join(&c, port, NULL, "closer"), 0);
	ck_assert_int_eq(tu_peer_join(&k, port, NULL, "kicked"), 0);
	ck_assert_int_eq(tu_peer_join(&s, port, NULL, "stayer"), 0);
	tcpchat_msg leave = {.type = TCPCHAT_MSG_LEAVE};
	ck_assert_int_eq(tu_peer_send_msg(&q, &leave), 0);
	ck_assert(wait_ge(&r.n_leave, 1));
	/* read what is pending first, so that close() sends a FIN, not a
	 * reset */
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_expect(&c, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.sender, "quitter");
	tu_peer_close(&c);
	ck_assert(wait_ge(&r.n_leave, 2));
	ck_assert_int_eq(tcpchat_server_kick(srv, "kicked", "out"), 0);
	ck_assert(wait_ge(&r.n_leave, 3));
	tcpchat_server_stop(srv);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	ck_assert_int_eq(atomic_load(&r.n_leave), 4);
	static const struct {
		const char *name;
		int reason, error;
	} want[] = {
	        {"quitter", TCPCHAT_REASON_QUIT, 0},
	        {"closer", TCPCHAT_REASON_CLOSED, 0},
	        {"kicked", TCPCHAT_REASON_KICKED, TCPCHAT_EKICKED},
	        {"stayer", TCPCHAT_REASON_SHUTDOWN, TCPCHAT_ESHUTDOWN},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		int reason, error;
		ck_assert_msg(srec_leave(&r, want[i].name, &reason, &error),
		              "no LEAVE for %s", want[i].name);
		ck_assert_msg(
		        reason == want[i].reason && error == want[i].error,
		        "%s: reason %d error %d", want[i].name, reason, error);
	}
	pthread_mutex_lock(&r.mu);
	for (int i = 0; i < r.nleave; i++)
		ck_assert(r.leave[i].has_text);
	pthread_mutex_unlock(&r.mu);
	ck_assert_int_eq(atomic_load(&r.n_disconnect), 0);
	tu_peer_close(&q);
	tu_peer_close(&k);
	tu_peer_close(&s);
	tcpchat_server_destroy(srv);
	srec_fini(&r);
}
END_TEST

/* A frame of the binary codec with an unknown version. */
static const char garbage[28] = {0, 0, 0, 24, 9, 3};

static void log_scenario(struct srec *r, int level)
{
	int port;
	tcpchat_server *srv = srv_new(r, &port);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_LOG_LEVEL, level),
	        0);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_MAX_CLIENTS, 1), 0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, full;
	ck_assert_int_eq(tu_peer_join(&a, port, NULL, "alice"), 0);
	/* the server is full: a warning */
	ck_assert_int_eq(tu_peer_connect(&full, port, NULL, 0), 0);
	ck_assert_int_eq(tu_peer_wait_closed(&full, TU_TIMEOUT), 1);
	tu_peer_close(&full);
	ck_assert_int_eq(tcpchat_server_kick(srv, "ghost", NULL), 0);
	ck_assert_int_eq(tu_peer_send_raw(&a, garbage, sizeof garbage), 0);
	ck_assert_int_eq(tu_peer_wait_closed(&a, TU_TIMEOUT), 1);
	tu_peer_close(&a);
	tcpchat_server_stop(srv);
	ck_assert_int_eq(tcpchat_server_join(srv), 0);
	tcpchat_server_destroy(srv);
}

START_TEST(handler_log_events)
{
	struct srec r;
	srec_init(&r);
	log_scenario(&r, TCPCHAT_LOG_DEBUG);
	ck_assert_int_eq(srec_log_level(&r, "server running"),
	                 TCPCHAT_LOG_INFO);
	ck_assert_int_eq(srec_log_level(&r, "no user called ghost"),
	                 TCPCHAT_LOG_INFO);
	ck_assert_int_eq(srec_log_level(&r, "server full"), TCPCHAT_LOG_WARN);
	/* a client's bad frame is its own mistake, not the server's */
	ck_assert_int_eq(srec_log_level(&r, "protocol error"),
	                 TCPCHAT_LOG_INFO);
	ck_assert_int_eq(srec_log_level(&r, "shutting down"), TCPCHAT_LOG_INFO);
	ck_assert_int_eq(srec_log_level(&r, "server stopped"),
	                 TCPCHAT_LOG_INFO);
	ck_assert_int_ge(r.log_levels[TCPCHAT_LOG_WARN], 1);
	ck_assert_int_eq(r.log_levels[7], 0);
	ck_assert_int_eq(r.log_empty, 0);
	srec_fini(&r);

	/* Only WARN and above at LOG_LEVEL WARN. */
	srec_init(&r);
	log_scenario(&r, TCPCHAT_LOG_WARN);
	ck_assert_int_ge(r.log_levels[TCPCHAT_LOG_WARN], 1);
	ck_assert_int_eq(r.log_levels[TCPCHAT_LOG_INFO], 0);
	ck_assert_int_eq(r.log_levels[TCPCHAT_LOG_DEBUG], 0);
	ck_assert_int_eq(r.log_levels[7], 0);
	srec_fini(&r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("modes");
	TCase *tc = tcase_create("server_modes");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, server_blocking_run);
	tcase_add_test(tc, server_stop_before_run);
	tcase_add_test(tc, server_own_thread);
	tcase_add_test(tc, server_host_driven);
	tcase_add_test(tc, server_calls_during_callback);
	suite_add_tcase(s, tc);

	tc = tcase_create("client_modes");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, client_blocking_run);
	tcase_add_test(tc, client_own_thread);
	tcase_add_test(tc, client_host_driven);
	tcase_add_test(tc, client_recursion_refused);
	tcase_add_test(tc, client_calls_during_callback);
	suite_add_tcase(s, tc);

	tc = tcase_create("client_edges");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, client_name_in_use);
	tcase_add_test(tc, client_connect_refused);
	tcase_add_test(tc, client_server_shutdown);
	tcase_add_test(tc, client_kicked);
	tcase_add_test(tc, client_send_before_handshake);
	tcase_add_test(tc, client_send_then_stop);
	tcase_add_test(tc, client_bad_arguments);
	tcase_add_test(tc, client_invalid_text);
	tcase_add_test(tc, client_destroy_while_running);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, threads_broadcast);
	tcase_add_test(tc, threads_send_to);
	tcase_add_test(tc, threads_kick);
	tcase_add_test(tc, threads_stop_while_broadcasting);
	tcase_add_test(tc, threads_broadcast_then_stop);
	tcase_add_test(tc, threads_client_send);
	suite_add_tcase(s, tc);

	tc = tcase_create("handlers");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, handler_connect_filter);
	tcase_add_test(tc, handler_join_refused);
	tcase_add_test(tc, handler_message_veto);
	tcase_add_test(tc, handler_leave_reasons);
	tcase_add_test(tc, handler_log_events);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
