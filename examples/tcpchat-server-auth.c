/* tcpchat-server - logins checked against a users file.
 *
 * The loop thread only looks the name up: a name the file does not list
 * joins at once when anonymous users are welcome; every other login is
 * deferred and queued for the checking thread, which runs crypt_r()
 * (tens of milliseconds for yescrypt) and answers with
 * tcpchat_server_accept() or tcpchat_server_refuse().  A wrong password,
 * a listed name without one and (without anonymous users) a name not
 * listed get the same answer after the same work: an unknown name is
 * checked against a dummy hash.  An address that failed too often is
 * refused for a while, longer each time.
 * SPDX-License-Identifier: MIT */
#include "tcpchat-server-auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TCPCHAT_HAVE_CRYPT

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define LOGIN_FAILED "login failed: wrong name or password"
#define QUEUE_MAX 256      /* logins waiting for the checking thread */
#define FAILS_FREE 5       /* failures an address may have unpunished */
#define BLOCK_FIRST_S 5    /* the first wait after that, doubled each time */
#define BLOCK_MAX_S 300    /* the longest wait */
#define FAILS_FORGET_S 900 /* failures older than this are forgotten */
#define FAIL_ADDRS 4096    /* addresses remembered */
#define HASH_MAX 255

struct user {
	char name[TCPCHAT_NAME_MAX + 1];
	char hash[HASH_MAX + 1];
	unsigned line;
};

struct table {
	struct user *users; /* sorted by name */
	size_t n;
};

struct job {
	struct job *next;
	uint64_t conn_id;
	char name[TCPCHAT_NAME_MAX + 1];
	char addr[INET6_ADDRSTRLEN]; /* the host, failures are counted by */
	char peer[INET6_ADDRSTRLEN + 16];
	char *cred;
	size_t cred_len;
};

struct fail {
	char addr[INET6_ADDRSTRLEN];
	unsigned count;
	time_t last, until;
};

struct auth {
	char *file;
	int anonymous;
	char dummy[HASH_MAX + 1]; /* what an unknown name is checked against */
	tcpchat_server *srv;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cv;
	struct table table;
	struct job *head, *tail;
	size_t queued;
	int stop, started;
	pthread_t thread;
	struct fail fails[FAIL_ADDRS];
	size_t nfails;
	uint64_t *reg; /* connections logged in with a password */
	size_t nreg, capreg;
};

int auth_available(void)
{
	return 1;
}

/* Overwrites n bytes at p in a way the compiler keeps. */
static void wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

/* Compares two NUL-terminated strings in a time that depends on their
 * lengths only. */
static int same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t n = la > lb ? la : lb;
	unsigned char d = la != lb;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)((i < la ? a[i] : 0) ^ (i < lb ? b[i] : 0));
	return d == 0;
}

static time_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* ---- the users file ---------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct user *)a)->name,
	              ((const struct user *)b)->name);
}

static const struct user *table_find(const struct table *t, const char *name)
{
	struct user key;
	snprintf(key.name, sizeof key.name, "%s", name);
	return t->n ? bsearch(&key, t->users, t->n, sizeof key, by_name) : NULL;
}

static int hash_ok(const char *h)
{
	if (strncmp(h, "$y$", 3) != 0 && strncmp(h, "$2b$", 4) != 0)
		return 0;
	for (const char *p = h; *p; p++)
		if (!strchr("./$0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		            "abcdefghijklmnopqrstuvwxyz",
		            *p))
			return 0;
	return 1;
}

/* One line, without its newline: 0 (a user added, or nothing on it) or
 * -1 with the reason in err. */
static int parse_line(struct table *t, char *s, const char *file, unsigned line,
                      char *err, size_t n)
{
	size_t len = strlen(s);
	while (len && strchr(" \t\r", s[len - 1]))
		s[--len] = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s || *s == '#')
		return 0;
	char *colon = strchr(s, ':');
	if (!colon) {
		snprintf(err, n, "%s:%u: expected name:hash", file, line);
		return -1;
	}
	*colon = '\0';
	const char *hash = colon + 1;
	if (tcpchat_name_check(s, strlen(s)) != 0) {
		snprintf(err, n, "%s:%u: invalid user name", file, line);
		return -1;
	}
	if (strlen(hash) > HASH_MAX || !hash_ok(hash)) {
		snprintf(err, n,
		         "%s:%u: not a yescrypt ($y$) or bcrypt ($2b$) hash "
		         "(make one with --hash-password)",
		         file, line);
		return -1;
	}
	struct user *u = realloc(t->users, (t->n + 1) * sizeof *u);
	if (!u) {
		snprintf(err, n, "%s:%u: out of memory", file, line);
		return -1;
	}
	t->users = u;
	u = &t->users[t->n++];
	snprintf(u->name, sizeof u->name, "%s", s);
	snprintf(u->hash, sizeof u->hash, "%s", hash);
	u->line = line;
	return 0;
}

static void table_free(struct table *t)
{
	if (t->users)
		wipe(t->users, t->n * sizeof *t->users);
	free(t->users);
	t->users = NULL;
	t->n = 0;
}

static int table_load(struct table *t, const char *file, char *err, size_t n)
{
	memset(t, 0, sizeof *t);
	FILE *f = fopen(file, "r");
	if (!f) {
		snprintf(err, n, "%s: %s", file, strerror(errno));
		return -1;
	}
	char *buf = NULL;
	size_t cap = 0;
	unsigned line = 0;
	int rc = 0;
	while (rc == 0 && getline(&buf, &cap, f) >= 0) {
		line++;
		buf[strcspn(buf, "\n")] = '\0';
		rc = parse_line(t, buf, file, line, err, n);
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, n, "%s: %s", file, strerror(errno));
		rc = -1;
	}
	free(buf);
	fclose(f);
	if (rc == 0 && t->n) {
		qsort(t->users, t->n, sizeof *t->users, by_name);
		for (size_t i = 1; i < t->n && rc == 0; i++) {
			if (strcmp(t->users[i - 1].name, t->users[i].name))
				continue;
			unsigned a = t->users[i - 1].line, b = t->users[i].line;
			snprintf(err, n, "%s:%u: user '%s' listed again", file,
			         a > b ? a : b, t->users[i].name);
			rc = -1;
		}
	}
	if (rc)
		table_free(t);
	return rc;
}

/* ---- failures per address ---------------------------------------------- */

/* The record of addr (a new one when create; the oldest is reused when
 * all are taken), or NULL.  Under a->mu. */
static struct fail *fail_find(struct auth *a, const char *addr, int create,
                              time_t now)
{
	size_t oldest = 0;
	for (size_t i = 0; i < a->nfails; i++) {
		struct fail *f = &a->fails[i];
		if (strcmp(f->addr, addr) == 0) {
			if (now - f->last > FAILS_FORGET_S && now >= f->until)
				f->count = 0;
			return f;
		}
		if (f->last < a->fails[oldest].last)
			oldest = i;
	}
	if (!create)
		return NULL;
	struct fail *f = a->nfails < FAIL_ADDRS ? &a->fails[a->nfails++]
	                                        : &a->fails[oldest];
	memset(f, 0, sizeof *f);
	snprintf(f->addr, sizeof f->addr, "%s", addr);
	return f;
}

/* Seconds addr must still wait, or 0.  Under a->mu. */
static long blocked_for(struct auth *a, const char *addr, time_t now)
{
	struct fail *f = fail_find(a, addr, 0, now);
	return f && f->until > now ? (long)(f->until - now) : 0;
}

/* Under a->mu. */
static void fail_note(struct auth *a, const char *addr, time_t now)
{
	struct fail *f = fail_find(a, addr, 1, now);
	f->count++;
	f->last = now;
	if (f->count >= FAILS_FREE) {
		unsigned k = f->count - FAILS_FREE;
		long wait = k >= 6 ? BLOCK_MAX_S : (long)BLOCK_FIRST_S << k;
		f->until = now + (wait > BLOCK_MAX_S ? BLOCK_MAX_S : wait);
	}
}

/* ---- the checking thread ------------------------------------------------ */

static void job_free(struct job *j)
{
	if (j->cred) {
		wipe(j->cred, j->cred_len);
		free(j->cred);
	}
	free(j);
}

/* Remembers a login with a password (nothing without memory: the user
 * is then simply not registered for the rules). */
static void note_registered(struct auth *a, uint64_t conn_id)
{
	pthread_mutex_lock(&a->mu);
	if (a->nreg == a->capreg) {
		size_t cap = a->capreg ? a->capreg * 2 : 16;
		uint64_t *p = realloc(a->reg, cap * sizeof *p);
		if (p) {
			a->reg = p;
			a->capreg = cap;
		}
	}
	if (a->nreg < a->capreg)
		a->reg[a->nreg++] = conn_id;
	pthread_mutex_unlock(&a->mu);
}

int auth_registered(struct auth *a, uint64_t conn_id)
{
	int found = 0;
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->nreg && !found; i++)
		found = a->reg[i] == conn_id;
	pthread_mutex_unlock(&a->mu);
	return found;
}

void auth_forget(struct auth *a, uint64_t conn_id)
{
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->nreg; i++) {
		if (a->reg[i] == conn_id) {
			a->reg[i] = a->reg[--a->nreg];
			break;
		}
	}
	pthread_mutex_unlock(&a->mu);
}

static void check(struct auth *a, struct job *j, struct crypt_data *cd)
{
	char hash[HASH_MAX + 1];
	time_t now = now_s();
	pthread_mutex_lock(&a->mu);
	long wait = blocked_for(a, j->addr, now);
	const struct user *u = table_find(&a->table, j->name);
	int listed = u != NULL;
	snprintf(hash, sizeof hash, "%s", u ? u->hash : a->dummy);
	pthread_mutex_unlock(&a->mu);
	if (wait) {
		char why[96];
		snprintf(why, sizeof why,
		         "too many failed logins, retry in %ld s", wait);
		log_at(TCPCHAT_LOG_INFO,
		       "conn %llu: login of '%s' from %s refused: too many "
		       "failed logins",
		       (unsigned long long)j->conn_id, j->name, j->peer);
		tcpchat_server_refuse(a->srv, j->conn_id, why);
		return;
	}
	if (!listed && a->anonymous) { /* dropped from the file meanwhile */
		tcpchat_server_accept(a->srv, j->conn_id);
		return;
	}
	/* The same work whatever the name: crypt_r() runs every time. */
	const char *out = crypt_r(j->cred ? j->cred : "", hash, cd);
	int ok = out && out[0] != '*' && same(out, hash) && listed &&
	         j->cred_len > 0;
	wipe(cd, sizeof *cd);
	if (ok) {
		log_at(TCPCHAT_LOG_INFO, "conn %llu: '%s' logged in from %s",
		       (unsigned long long)j->conn_id, j->name, j->peer);
		note_registered(a, j->conn_id);
		tcpchat_server_accept(a->srv, j->conn_id);
		return;
	}
	pthread_mutex_lock(&a->mu);
	fail_note(a, j->addr, now);
	pthread_mutex_unlock(&a->mu);
	log_at(TCPCHAT_LOG_INFO, "conn %llu: failed login of '%s' from %s (%s)",
	       (unsigned long long)j->conn_id, j->name, j->peer,
	       !listed           ? "unknown name"
	       : j->cred_len > 0 ? "wrong password"
	                         : "no password");
	tcpchat_server_refuse(a->srv, j->conn_id, LOGIN_FAILED);
}

static void *checker_main(void *arg)
{
	struct auth *a = arg;
	struct crypt_data *cd = calloc(1, sizeof *cd);
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->stop && !a->head)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop)
			break;
		struct job *j = a->head;
		a->head = j->next;
		if (!a->head)
			a->tail = NULL;
		a->queued--;
		pthread_mutex_unlock(&a->mu);
		if (cd)
			check(a, j, cd);
		else
			tcpchat_server_refuse(a->srv, j->conn_id,
			                      "server out of memory");
		job_free(j);
		pthread_mutex_lock(&a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	free(cd);
	return NULL;
}

/* ---- the program's side ------------------------------------------------- */

/* The host of a peer address, without its port. */
static void host_of(const struct sockaddr *sa, char *buf, size_t n)
{
	snprintf(buf, n, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET,
		          &((const struct sockaddr_in *)(const void *)sa)
		                   ->sin_addr,
		          buf, (socklen_t)n);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		          &((const struct sockaddr_in6 *)(const void *)sa)
		                   ->sin6_addr,
		          buf, (socklen_t)n);
}

int auth_on_join(struct auth *a, tcpchat_server_event *ev)
{
	char name[TCPCHAT_NAME_MAX + 1];
	snprintf(name, sizeof name, "%.*s", (int)ev->name.len, ev->name.ptr);
	pthread_mutex_lock(&a->mu);
	int listed = table_find(&a->table, name) != NULL;
	size_t queued = a->queued;
	pthread_mutex_unlock(&a->mu);
	if (!listed && a->anonymous)
		return TCPCHAT_ACCEPT;
	struct job *j = queued < QUEUE_MAX ? calloc(1, sizeof *j) : NULL;
	if (j && ev->credential.len) {
		j->cred = malloc(ev->credential.len + 1);
		if (j->cred) {
			memcpy(j->cred, ev->credential.ptr, ev->credential.len);
			j->cred[ev->credential.len] = '\0';
			j->cred_len = ev->credential.len;
		} else {
			free(j);
			j = NULL;
		}
	}
	if (!j) {
		ev->refuse_reason = "server busy, retry later";
		return TCPCHAT_REFUSE;
	}
	j->conn_id = ev->conn_id;
	memcpy(j->name, name, sizeof name);
	host_of(ev->peer, j->addr, sizeof j->addr);
	peer_str(ev->peer, j->peer, sizeof j->peer);
	pthread_mutex_lock(&a->mu);
	if (a->tail)
		a->tail->next = j;
	else
		a->head = j;
	a->tail = j;
	a->queued++;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	return TCPCHAT_DEFER;
}

/* A fresh yescrypt hash of password, in out. */
static int make_hash(const char *password, char *out, size_t n)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof *cd);
	if (!cd || !crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt)) {
		free(cd);
		return -1;
	}
	const char *h = crypt_r(password, salt, cd);
	int rc = h && h[0] != '*' && strlen(h) < n ? 0 : -1;
	if (rc == 0)
		snprintf(out, n, "%s", h);
	wipe(cd, sizeof *cd);
	free(cd);
	return rc;
}

struct auth *auth_new(const char *file, int anonymous, char *err, size_t n)
{
	struct auth *a = calloc(1, sizeof *a);
	if (!a || !(a->file = strdup(file))) {
		free(a);
		snprintf(err, n, "out of memory");
		return NULL;
	}
	a->anonymous = anonymous;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if (table_load(&a->table, file, err, n) != 0) {
		auth_free(a);
		return NULL;
	}
	if (make_hash("no user has this password", a->dummy, sizeof a->dummy) !=
	    0) {
		snprintf(err, n, "crypt: cannot make a yescrypt hash");
		auth_free(a);
		return NULL;
	}
	return a;
}

int auth_start(struct auth *a, tcpchat_server *srv)
{
	a->srv = srv;
	int rc = pthread_create(&a->thread, NULL, checker_main, a);
	a->started = rc == 0;
	return rc;
}

int auth_reload(struct auth *a)
{
	char err[512];
	struct table t;
	if (table_load(&t, a->file, err, sizeof err) != 0) {
		log_at(TCPCHAT_LOG_ERROR, "users file not reloaded: %s", err);
		return -1;
	}
	pthread_mutex_lock(&a->mu);
	struct table old = a->table;
	a->table = t;
	pthread_mutex_unlock(&a->mu);
	table_free(&old);
	log_at(TCPCHAT_LOG_INFO, "users file %s reloaded: %zu user(s)", a->file,
	       t.n);
	return 0;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stop = 1;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	while (a->head) {
		struct job *j = a->head;
		a->head = j->next;
		job_free(j);
	}
	table_free(&a->table);
	free(a->reg);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a->file);
	free(a);
}

int auth_hash_password(void)
{
	char *line = NULL;
	size_t cap = 0;
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		fputs("Password: ", stderr);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	ssize_t len = getline(&line, &cap, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (len > 0)
		line[strcspn(line, "\r\n")] = '\0';
	int rc = 1;
	char hash[HASH_MAX + 1];
	if (len <= 0 || !line[0])
		fprintf(stderr, "tcpchat-server: no password given\n");
	else if (!tcpchat_utf8_valid(line, strlen(line)) ||
	         strlen(line) > TCPCHAT_CREDENTIAL_MAX)
		fprintf(stderr,
		        "tcpchat-server: a password is at most %d "
		        "bytes of UTF-8\n",
		        TCPCHAT_CREDENTIAL_MAX);
	else if (make_hash(line, hash, sizeof hash) != 0)
		fprintf(stderr, "tcpchat-server: crypt: cannot make a "
		                "yescrypt hash\n");
	else
		rc = printf("%s\n", hash) < 0;
	if (line) {
		wipe(line, cap);
		free(line);
	}
	return rc;
}

#else /* no libcrypt */

int auth_available(void)
{
	return 0;
}

int auth_hash_password(void)
{
	fprintf(stderr, "tcpchat-server: --hash-password: " AUTH_NO_CRYPT "\n");
	return 2;
}

struct auth *auth_new(const char *file, int anonymous, char *err, size_t n)
{
	(void)file;
	(void)anonymous;
	snprintf(err, n, AUTH_NO_CRYPT);
	return NULL;
}

int auth_start(struct auth *a, tcpchat_server *srv)
{
	(void)a;
	(void)srv;
	return ENOSYS;
}

int auth_on_join(struct auth *a, tcpchat_server_event *ev)
{
	(void)a;
	(void)ev;
	return TCPCHAT_REFUSE;
}

int auth_reload(struct auth *a)
{
	(void)a;
	return -1;
}

int auth_registered(struct auth *a, uint64_t conn_id)
{
	(void)a;
	(void)conn_id;
	return 0;
}

void auth_forget(struct auth *a, uint64_t conn_id)
{
	(void)a;
	(void)conn_id;
}

void auth_free(struct auth *a)
{
	(void)a;
}

#endif
