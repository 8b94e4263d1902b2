/* tcpchat-client - what the program's parts share.
 * SPDX-License-Identifier: MIT
 *
 * Threads: the library's loop thread runs view_on_event() (view.c); the
 * main thread reads the user's input (input.c, and with a terminal the
 * line editor of term.h).  With a terminal, the loop thread hands its
 * lines to the main thread (view_flush()), which alone writes to the
 * screen; without one, both write lines under G.out. */
#ifndef TCPCHAT_CLIENT_APP_H
#define TCPCHAT_CLIENT_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include <tcpchat/tcpchat.h>

#define PROG "tcpchat-client"
#define ROOMS_MAX 16 /* --room options */

struct app {
	/* set by main() before the connection starts, then read-only */
	int tty, color, listen_only, quiet;
	long long count; /* exit after this many TEXT messages; 0: never */
	int history;     /* --history: texts to show after a join; 0: none */
	int reconnect;   /* reconnect after a lost connection */
	const char *rooms[ROOMS_MAX]; /* --room, in order */
	int nrooms;
	const char *to;     /* --to: script lines go to this user */
	const char *server; /* --server, as given */
	char name[TCPCHAT_NAME_MAX + 1];
	char *password; /* --password-file or $TCPCHAT_PASSWORD; NULL: none */
	int tls;        /* --tls or any --tls-* option */
	tcpchat_tls_config tls_cfg;
	tcpchat_client *cli;
	int wake[2]; /* terminal: the loop thread wakes the main thread */

	pthread_mutex_t out; /* the screen (no terminal), the line queue */
	char default_room[TCPCHAT_ROOM_MAX + 1]; /* from the WELCOME; out */
	char bye[512]; /* why the connection ended, for stderr; out */
	atomic_llong received;
	atomic_int done, connected, ever_connected, result;
	atomic_int silent_who; /* WHO answers to keep off the screen */
};

extern struct app G;

/* ---- view.c: what the user sees -------------------------------------- */

/* The library's event handler: formats each event as a line. */
int view_on_event(tcpchat_client *cli, const tcpchat_client_event *ev,
                  void *ud);

/* Shows one line: "=== " and the text (a status line). */
void view_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Shows one line: "-!- " and the text (something went wrong). */
void view_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Shows what the user said in room (NULL: the current room). */
void view_own(const char *room, const char *text, size_t n);

/* Terminal: prints the lines the loop thread queued, above the input
 * line.  Main thread only. */
void view_flush(void);

/* Frees what view_flush() did not print. */
void view_discard(void);

/* ---- input.c: what the user typed ------------------------------------- */

/* Handles one line typed or read from stdin.  Returns 1 to quit. */
int input_line(const char *s, size_t n);

/* ---- seq.c: where each room stands ----------------------------------- */

/* Loop thread: takes the client's position of room as the last seen. */
void seq_mark(tcpchat_client *cli, tcpchat_str room);

/* Loop thread: room is at seq (of epoch; 0: the current one), e.g. after
 * our own text's ACK or a resume. */
void seq_set(tcpchat_str room, uint64_t epoch, uint64_t seq);

/* Loop thread: a live text of room numbered seq arrived.  Returns how
 * many texts were skipped since the last one seen (0: none). */
uint64_t seq_text(tcpchat_str room, uint64_t epoch, uint64_t seq);

/* Loop thread: we are out of room. */
void seq_forget(tcpchat_str room);

/* With --history: show the history of room once its join is confirmed.
 * Thread-safe. */
void seq_want_history(const char *room);

/* 1 when room's history was wanted (and no longer is), else 0.
 * Thread-safe. */
int seq_take_history(tcpchat_str room);

/* ---- words.c: names and rooms seen, for completion --------------------- */

enum { WORD_NAME, WORD_ROOM };

/* Notes (or forgets) a user or room name.  Thread-safe. */
void words_add(int kind, const char *s, size_t n);
void words_del(int kind, const char *s, size_t n);

/* Notes each space-separated name of a WHO answer.  Thread-safe. */
void words_add_list(const char *s, size_t n);

/* What Tab completes in line[0..cursor): the word before the cursor is
 * a command ("/jo" at the start of the line), a room ("#de") or a user
 * name.  Fills *c with the sorted candidates; returns their number.
 * Free with complete_free(). */
struct completion {
	size_t start;  /* where the word begins in line */
	size_t common; /* bytes that every candidate shares */
	char **cand;
	size_t n;
};
size_t complete_word(const char *line, size_t cursor, struct completion *c);
void complete_free(struct completion *c);

/* What to insert at the cursor for c: the shared part beyond what is
 * typed, plus a space when there is exactly one candidate.  Returns a
 * string to free, or NULL when there is nothing to insert. */
char *complete_insert(const struct completion *c, size_t typed);

/* Writes the candidates as one line ("a b c"), cut to fit size. */
void complete_list(const struct completion *c, char *buf, size_t size);

#endif
