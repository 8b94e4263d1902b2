/* Real Redis and NATS servers for the Check suites (engineutil.h). */
#define _XOPEN_SOURCE 700 /* nftw() */

#include "engineutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

extern char **environ;

#define EU_HOST "127.0.0.1"
#define EU_ATTEMPTS 3 /* new ports tried when a first start fails */
#define EU_RETRY_MS 20
#define EU_PROBE_MS 1000
#define EU_MAX_ARGS 24

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(long long end)
{
	long long left = end - now_ms();

	return left < 0 ? 0 : (int)left;
}

/* ---- raw sockets ------------------------------------------------------ */

int eu_connect(const struct eu_engine *e, int timeout_ms)
{
	struct sockaddr_in sa;
	struct pollfd pfd;
	int fd, flags, soerr = 0;
	socklen_t len = sizeof(soerr);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)e->port);
	inet_pton(AF_INET, EU_HOST, &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, timeout_ms) != 1) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
			goto fail;
		if (soerr != 0) {
			errno = soerr;
			goto fail;
		}
	}
	fcntl(fd, F_SETFL, flags);
	return fd;
fail:
	soerr = errno;
	close(fd);
	errno = soerr;
	return -1;
}

int eu_send(int fd, const void *data, size_t len, int timeout_ms)
{
	const char *p = data;
	long long end = now_ms() + timeout_ms;
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};

	while (len > 0) {
		ssize_t w;

		if (poll(&pfd, 1, left_ms(end)) != 1)
			return -1;
		w = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int has(const char *buf, size_t len, const char *want)
{
	size_t wl = strlen(want), i;

	for (i = 0; wl <= len && i <= len - wl; i++)
		if (memcmp(buf + i, want, wl) == 0)
			return 1;
	return 0;
}

long eu_recv_until(int fd, char *buf, size_t cap, const char *want,
                   int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t len = 0;

	if (cap == 0)
		return -1;
	buf[0] = '\0';
	while (!has(buf, len, want)) {
		ssize_t r;

		if (len + 1 >= cap || poll(&pfd, 1, left_ms(end)) != 1)
			return -1;
		r = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (r < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			continue;
		if (r <= 0)
			return -1;
		len += (size_t)r;
		buf[len] = '\0';
	}
	return (long)len;
}

/* ---- processes and files ---------------------------------------------- */

/* The path of the program name into out: $env_var, else the first
 * executable one on PATH, /usr/sbin or /usr/local/sbin.  0 or -1. */
static int find_program(const char *name, const char *env_var, char *out,
                        size_t cap)
{
	const char *set = getenv(env_var), *path = getenv("PATH");
	char dirs[4096];
	char *dir, *save = NULL;

	if (set != NULL && set[0] != '\0') {
		snprintf(out, cap, "%s", set);
		return 0;
	}
	snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin",
	         path != NULL ? path : "/usr/bin:/bin");
	for (dir = strtok_r(dirs, ":", &save); dir != NULL;
	     dir = strtok_r(NULL, ":", &save)) {
		if ((size_t)snprintf(out, cap, "%s/%s", dir, name) < cap &&
		    access(out, X_OK) == 0)
			return 0;
	}
	out[0] = '\0';
	return -1;
}

/* A loopback port that was free a moment ago, or -1. */
static int free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	inet_pton(AF_INET, EU_HOST, &sa.sin_addr);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* An exit status as eu_engine_stop() returns it. */
static int status_of(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* Reaps pid within timeout_ms: its status_of(), or -2 when it still
 * runs. */
static int reap(pid_t pid, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return status_of(st);
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ms() >= end)
			return -2;
		poll(NULL, 0, left_ms(end) < 10 ? left_ms(end) : 10);
	}
}

static void live_note(const struct eu_engine *e, int forget);

/* SIGTERM (or SIGKILL when hard), then SIGKILL after the deadline; the
 * status of the process.  The directory is left alone. */
static int end_process(struct eu_engine *e, int hard)
{
	int status;

	if (e->pid <= 0)
		return -1;
	kill(e->pid, hard ? SIGKILL : SIGTERM);
	status = reap(e->pid, EU_DEADLINE_MS);
	if (status == -2) {
		kill(e->pid, SIGKILL);
		status = reap(e->pid, EU_DEADLINE_MS);
	}
	e->pid = 0;
	e->exit_status = status;
	live_note(e, 0);
	return status;
}

/* ---- what runs --------------------------------------------------------
 * The servers started and not stopped, by directory, so that a test that
 * ends on a failed assertion (exit() in a forked test, a longjmp out of
 * the test in CK_FORK=no) leaves no server behind: at exit they are
 * killed and their directories removed.  Copies, not pointers: the
 * engine itself may have been on the stack of the failed test. */

#define EU_LIVE_MAX 16

static struct {
	pid_t pid;
	char dir[sizeof(((struct eu_engine *)0)->dir)];
} live[EU_LIVE_MAX];

static void live_cleanup(void)
{
	int i;

	for (i = 0; i < EU_LIVE_MAX; i++) {
		if (live[i].dir[0] == '\0')
			continue;
		if (live[i].pid > 0) {
			kill(live[i].pid, SIGKILL);
			reap(live[i].pid, EU_DEADLINE_MS);
		}
		rm_tree(live[i].dir);
		live[i].dir[0] = '\0';
	}
}

/* Records e's directory and process (pid 0: none now); forget: drops
 * it. */
static void live_note(const struct eu_engine *e, int forget)
{
	static int registered;
	int i, slot = -1;

	if (!registered)
		registered = atexit(live_cleanup) == 0;
	for (i = 0; i < EU_LIVE_MAX; i++) {
		if (strcmp(live[i].dir, e->dir) == 0 && e->dir[0] != '\0') {
			slot = i;
			break;
		}
		if (slot < 0 && live[i].dir[0] == '\0')
			slot = i;
	}
	if (slot < 0)
		return;
	if (forget) {
		if (strcmp(live[slot].dir, e->dir) == 0)
			live[slot].dir[0] = '\0';
		return;
	}
	live[slot].pid = e->pid;
	snprintf(live[slot].dir, sizeof(live[slot].dir), "%s", e->dir);
}

/* The directory of every engine's directory, and the process that made
 * it and removes it at its exit (not a forked test that inherited the
 * handler). */
static char base[200];
static pid_t base_owner;

static void base_cleanup(void)
{
	if (base[0] != '\0' && getpid() == base_owner) {
		rm_tree(base);
		base[0] = '\0';
	}
}

int eu_init(char *err, size_t n)
{
	const char *tmp = getenv("TMPDIR");

	if (base[0] != '\0')
		return 0;
	snprintf(base, sizeof(base), "%s/tcpchat-engines-XXXXXX",
	         tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(base) == NULL) {
		snprintf(err, n, "cannot make a directory %s: %s", base,
		         strerror(errno));
		base[0] = '\0';
		return -1;
	}
	base_owner = getpid();
	if (atexit(base_cleanup) != 0) {
		snprintf(err, n, "atexit failed");
		rm_tree(base);
		base[0] = '\0';
		return -1;
	}
	return 0;
}

/* ---- starting --------------------------------------------------------- */

/* The command line of e into argv (NULL-terminated); port holds the
 * port's digits. */
static void build_argv(const struct eu_engine *e, const char **argv, char *port,
                       size_t port_cap)
{
	int i = 0;

	snprintf(port, port_cap, "%d", e->port);
	argv[i++] = e->exe;
	if (e->kind == EU_REDIS) {
		static const char *const rest[] = {
		        "--save",           "",   "--appendonly", "no",
		        "--daemonize",      "no", "--logfile",    "",
		        "--protected-mode", "no"};
		size_t k;

		argv[i++] = "--port";
		argv[i++] = port;
		argv[i++] = "--bind";
		argv[i++] = EU_HOST;
		argv[i++] = "--dir";
		argv[i++] = e->dir;
		for (k = 0; k < sizeof(rest) / sizeof(rest[0]); k++)
			argv[i++] = rest[k];
	} else {
		argv[i++] = "-a";
		argv[i++] = EU_HOST;
		argv[i++] = "-p";
		argv[i++] = port;
		if (e->jetstream) {
			argv[i++] = "-js";
			argv[i++] = "-sd";
			argv[i++] = e->dir;
		}
	}
	argv[i] = NULL;
}

/* argv as a shell would read it (empty words as ''). */
static void join_argv(const char *const *argv, char *out, size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (; *argv != NULL && len < cap; argv++) {
		int w = snprintf(out + len, cap - len, "%s%s",
		                 len > 0 ? " " : "",
		                 (*argv)[0] != '\0' ? *argv : "''");

		if (w < 0)
			break;
		len += (size_t)w;
	}
}

/* err = "<program> <what>", the command line and the last lines of what
 * the server wrote since its start. */
static void fail_msg(const struct eu_engine *e, const char *what, char *err,
                     size_t n)
{
	const char *argv[EU_MAX_ARGS];
	char port[16], cmd[1024], tail[1536];
	size_t got = 0;
	FILE *f;

	build_argv(e, argv, port, sizeof(port));
	join_argv(argv, cmd, sizeof(cmd));
	tail[0] = '\0';
	f = fopen(e->log, "rb");
	if (f != NULL) {
		long start = e->log_start, end;

		if (fseek(f, 0, SEEK_END) == 0 && (end = ftell(f)) > start) {
			if (end - start > (long)sizeof(tail) - 1)
				start = end - ((long)sizeof(tail) - 1);
			if (fseek(f, start, SEEK_SET) == 0)
				got = fread(tail, 1, sizeof(tail) - 1, f);
		}
		tail[got] = '\0';
		fclose(f);
	}
	snprintf(err, n, "%s %s\ncommand: %s\noutput (last bytes):\n%s", e->exe,
	         what, cmd, got > 0 ? tail : "(none)");
}

static int spawn(struct eu_engine *e, char *err, size_t n)
{
	const char *argv[EU_MAX_ARGS];
	char port[16], what[128];
	posix_spawn_file_actions_t fa;
	struct stat st;
	int rc;

	snprintf(e->url, sizeof(e->url), "%s://%s:%d",
	         e->kind == EU_REDIS ? "redis" : "nats", EU_HOST, e->port);
	e->log_start = stat(e->log, &st) == 0 ? (long)st.st_size : 0;
	build_argv(e, argv, port, sizeof(port));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, e->log,
	                                 O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	rc = posix_spawn(&e->pid, e->exe, &fa, NULL, (char *const *)argv,
	                 environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		e->pid = 0;
	live_note(e, 0);
	if (rc != 0) {
		snprintf(what, sizeof(what), "cannot be run: %s", strerror(rc));
		fail_msg(e, what, err, n);
		return -1;
	}
	return 0;
}

/* 1 when the server answers as ready on a new connection, else 0. */
static int probe(const struct eu_engine *e)
{
	char buf[4096];
	int fd = eu_connect(e, EU_PROBE_MS), ok = 0;

	if (fd < 0)
		return 0;
	if (e->kind == EU_REDIS) {
		/* -LOADING while a dataset loads: not ready yet. */
		ok = eu_send(fd, "PING\r\n", 6, EU_PROBE_MS) == 0 &&
		     eu_recv_until(fd, buf, sizeof(buf), "\r\n", EU_PROBE_MS) >
		             0 &&
		     strcmp(buf, "+PONG\r\n") == 0;
	} else {
		ok = eu_recv_until(fd, buf, sizeof(buf), "\r\n", EU_PROBE_MS) >
		             0 &&
		     strncmp(buf, "INFO {", 6) == 0 &&
		     (!e->jetstream || strstr(buf, "\"jetstream\":true"));
	}
	close(fd);
	return ok;
}

/* Spawns the server on e->port and waits until it answers.  0, or -1
 * with the process gone and a message in err. */
static int run(struct eu_engine *e, char *err, size_t n)
{
	long long end;
	char what[128];

	if (spawn(e, err, n) != 0)
		return -1;
	end = now_ms() + EU_DEADLINE_MS;
	for (;;) {
		int st = reap(e->pid, 0);

		if (st != -2) {
			e->pid = 0;
			live_note(e, 0);
			snprintf(what, sizeof(what),
			         "exited with status %d before answering", st);
			break;
		}
		if (probe(e))
			return 0;
		if (now_ms() >= end) {
			end_process(e, 1);
			snprintf(what, sizeof(what),
			         "did not answer on %s within %d ms", e->url,
			         EU_DEADLINE_MS);
			break;
		}
		poll(NULL, 0, EU_RETRY_MS);
	}
	fail_msg(e, what, err, n);
	return -1;
}

static int start(struct eu_engine *e, enum eu_kind kind, char *err, size_t n)
{
	static const char *const names[] = {"redis-server", "nats-server"};
	static const char *const vars[] = {"TCPCHAT_REDIS_SERVER",
	                                   "TCPCHAT_NATS_SERVER"};
	int attempt;

	if (e->pid > 0) {
		snprintf(err, n, "%s already runs (pid %ld)", e->exe,
		         (long)e->pid);
		return -1;
	}
	e->kind = kind;
	if (e->exe[0] == '\0' &&
	    find_program(names[kind], vars[kind], e->exe, sizeof(e->exe))) {
		snprintf(err, n,
		         "%s not found on PATH or in /usr/sbin (Debian: "
		         "apt-get install %s; or set %s)",
		         names[kind], names[kind], vars[kind]);
		return -1;
	}
	snprintf(e->host, sizeof(e->host), "%s", EU_HOST);
	if (base[0] == '\0' && eu_init(err, n) != 0)
		return -1;
	snprintf(e->dir, sizeof(e->dir), "%s/%s-XXXXXX", base, names[kind]);
	if (mkdtemp(e->dir) == NULL) {
		snprintf(err, n, "cannot make a directory %s: %s", e->dir,
		         strerror(errno));
		e->dir[0] = '\0';
		return -1;
	}
	snprintf(e->log, sizeof(e->log), "%s/server.log", e->dir);
	for (attempt = 0; attempt < EU_ATTEMPTS; attempt++) {
		/* Another process may take a free port before the server:
		 * then a new port. */
		e->port = free_port();
		if (e->port < 0) {
			snprintf(err, n, "no free loopback port: %s",
			         strerror(errno));
			break;
		}
		if (run(e, err, n) == 0)
			return 0;
	}
	live_note(e, 1);
	rm_tree(e->dir);
	e->dir[0] = '\0';
	return -1;
}

int eu_redis_start(struct eu_engine *e, char *err, size_t n)
{
	return start(e, EU_REDIS, err, n);
}

int eu_nats_start(struct eu_engine *e, char *err, size_t n)
{
	e->jetstream = 1;
	return start(e, EU_NATS, err, n);
}

/* ---- stopping --------------------------------------------------------- */

int eu_engine_stop(struct eu_engine *e)
{
	int status = end_process(e, 0);

	if (e->dir[0] != '\0') {
		live_note(e, 1);
		rm_tree(e->dir);
	}
	e->dir[0] = '\0';
	return status;
}

int eu_engine_kill(struct eu_engine *e)
{
	return end_process(e, 1) == -1 ? -1 : 0;
}

int eu_engine_restart(struct eu_engine *e, char *err, size_t n)
{
	if (e->dir[0] == '\0') {
		snprintf(err, n, "%s was stopped: start it anew",
		         e->exe[0] != '\0' ? e->exe : "the engine");
		return -1;
	}
	end_process(e, 0);
	return run(e, err, n);
}
