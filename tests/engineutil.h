/* Real Redis and NATS servers for the Check suites: redis-server and
 * nats-server -js started with posix_spawn on a free loopback port, their
 * files in a temporary directory of their own, ready (answering a probe
 * over a socket) when the start returns, stopped by PID.  A start that
 * fails says why in err (the command line and the end of the server's
 * output): a suite that needs an engine fails with that message, it never
 * skips.
 *
 * The programs are found on PATH and in /usr/sbin and /usr/local/sbin
 * (Debian puts nats-server in /usr/sbin); the environment variables
 * TCPCHAT_REDIS_SERVER and TCPCHAT_NATS_SERVER name others.
 *
 * None of these functions is thread-safe for one engine: call them from
 * the test's thread.  Every wait is bounded by EU_DEADLINE_MS. */
#ifndef ENGINEUTIL_H
#define ENGINEUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* The bound of every wait: for a start to answer, for a stop to end. */
#define EU_DEADLINE_MS 10000

enum eu_kind { EU_REDIS, EU_NATS };

/* One engine.  Zero it before the first start; set exe before it to run
 * another program than the one found (a test of a failing start). */
struct eu_engine {
	enum eu_kind kind;
	char exe[256];   /* the program run; found by the start when empty */
	int jetstream;   /* NATS: -js with its store in dir (eu_nats_start) */
	pid_t pid;       /* 0 when not running */
	int port;        /* on 127.0.0.1; kept by kill and restart */
	char host[16];   /* "127.0.0.1" */
	char url[64];    /* redis://127.0.0.1:PORT or nats://127.0.0.1:PORT */
	char dir[256];   /* the temporary directory; "" once stopped */
	char log[300];   /* dir/server.log: stdout and stderr of the server */
	long log_start;  /* the size of the log when the last start began */
	int exit_status; /* of the last stop or kill: see eu_engine_stop() */
};

/* Makes the directory under which every engine gets its own (in $TMPDIR,
 * else /tmp), removed with all it holds when the calling process exits.
 * Call it from main() before the tests run: then a test that fails in a
 * forked child (which ends with _exit(), after Check has killed its
 * process group and so its servers) leaves nothing behind either.  A
 * start calls it when main() did not.  0, or -1 with a message in
 * err[0..n). */
int eu_init(char *err, size_t n);

/* Starts redis-server without persistence (--save '' --appendonly no)
 * on a free port of 127.0.0.1 and waits until it answers PING with
 * +PONG.  0, or -1 with a message in err[0..n) (the engine is then not
 * running and its directory removed). */
int eu_redis_start(struct eu_engine *e, char *err, size_t n);

/* Starts nats-server -js (JetStream storing under the engine's directory)
 * on a free port of 127.0.0.1 and waits until a connection gets its INFO
 * line, one that says JetStream is on.  0 or -1 as eu_redis_start(). */
int eu_nats_start(struct eu_engine *e, char *err, size_t n);

/* Stops the server (SIGTERM; SIGKILL when it has not exited within
 * EU_DEADLINE_MS) if it runs, and removes its directory.  Returns the
 * exit status (redis-server exits 0 after a clean shutdown, nats-server
 * 1), 128 + the signal number when a signal ended it, or -1 when it was
 * not running.  The engine may be started again afterwards. */
int eu_engine_stop(struct eu_engine *e);

/* Kills the server with SIGKILL, as in an outage, and reaps it; its port
 * and directory are kept for eu_engine_restart().  0, or -1 when it was
 * not running. */
int eu_engine_kill(struct eu_engine *e);

/* Stops the server if it runs (SIGTERM as eu_engine_stop(), but the
 * directory is kept) and starts it again on the same port and directory;
 * ready when it returns.  0 or -1 with a message in err[0..n). */
int eu_engine_restart(struct eu_engine *e, char *err, size_t n);

/* ---- raw protocol helpers ---------------------------------------------
 * For probes and tests speaking RESP or the NATS protocol directly. */

/* A blocking TCP connection to the engine's port within timeout_ms, or
 * -1 (errno set). */
int eu_connect(const struct eu_engine *e, int timeout_ms);

/* Writes all of len bytes within timeout_ms.  0 or -1. */
int eu_send(int fd, const void *data, size_t len, int timeout_ms);

/* Reads into buf (NUL-terminated, at most cap - 1 bytes) until it holds
 * want, for at most timeout_ms.  The number of bytes read when want
 * arrived, or -1 on timeout, close, error or a full buffer (what was read
 * is in buf all the same). */
long eu_recv_until(int fd, char *buf, size_t cap, const char *want,
                   int timeout_ms);

#endif
