/* tcpchat-server - logins checked against a users file (--users): lines
 * "name:hash" with yescrypt or bcrypt hashes, checked with crypt_r() on
 * a thread of their own so that the chat never waits for one.
 * SPDX-License-Identifier: MIT */
#ifndef TCPCHAT_SERVER_AUTH_H
#define TCPCHAT_SERVER_AUTH_H

#include <stddef.h>
#include <sys/socket.h>

#include <tcpchat/tcpchat.h>

/* From tcpchat-server.c: a log line at a level (enum tcpchat_log_level),
 * printed when --log-level lets it through (any thread), and an address
 * in words ("1.2.3.4:5" or "[::1]:5"). */
void log_at(int level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
const char *peer_str(const struct sockaddr *sa, char *buf, size_t n);

/* What a program built without libcrypt says about --users and
 * --hash-password (and exits with status 2). */
#define AUTH_NO_CRYPT "built without libcrypt"

/* The greeting of the line listeners with --users (the first line a
 * person at nc sees): how to log in, with --anonymous no or yes. */
#define AUTH_GREETING "tcpchat: log in with NAME PASSWORD"
#define AUTH_GREETING_ANONYMOUS                                                \
	"tcpchat: log in with NAME PASSWORD, or type a name (1-32 bytes, no "  \
	"spaces) to join without one"

struct auth;

/* 1 when this program was built with libcrypt, else 0. */
int auth_available(void);

/* --hash-password: reads a password from stdin (without echo when it is
 * a terminal) and prints its yescrypt hash, a line for a users file.
 * Returns the exit status: 0, 1 (no password, or an error, said on
 * stderr) or 2 without libcrypt. */
int auth_hash_password(void);

/* Reads the users file; anonymous: whether names it does not list may
 * join (without a password).  Returns the checker, or NULL with the
 * reason in err ("FILE:LINE: why", or AUTH_NO_CRYPT).  Main thread. */
struct auth *auth_new(const char *file, int anonymous, char *err, size_t n);

/* Starts the thread that checks passwords and answers deferred JOINs on
 * srv.  Returns 0 or an errno value.  Main thread, once. */
int auth_start(struct auth *a, tcpchat_server *srv);

/* The JOIN event's verdict: TCPCHAT_ACCEPT for a name the file does not
 * list when anonymous users are welcome, else TCPCHAT_DEFER (the thread
 * answers later) or a refusal with ev->refuse_reason set (too many
 * logins waiting).  The credential is copied, never logged.  Loop
 * thread. */
int auth_on_join(struct auth *a, tcpchat_server_event *ev);

/* SIGHUP: reads the users file again.  On an error the old table stays
 * and the error is logged.  Returns 0 or -1.  Main thread. */
int auth_reload(struct auth *a);

/* Stops the thread (logins still waiting get no answer: the server is
 * stopped first) and frees everything, wiping the passwords still
 * queued.  Accepts NULL.  Main thread, after tcpchat_server_join(). */
void auth_free(struct auth *a);

#endif
