/* Helpers for the protocol-2 integration suites (test_rooms.c,
 * test_private.c, test_proto1.c): logging in as protocol 2 on each codec,
 * waiting for messages and errors, room requests, markers that tell what
 * a peer received up to a point, line and JSON Lines peers, and server
 * setup.  Every helper asserts with Check, so it may only be called from
 * a test. */
#ifndef ROOMUTIL_H
#define ROOMUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <tcpchat/tcpchat.h>

#include "testutil.h"

/* ---- logging in ---------------------------------------------------------- */

/* Logs in a protocol-2 peer (capabilities TU_CAPS2) on the binary or the
 * JSON codec. */
void ru_login_bin(struct tu_peer *p, int port, const char *name);
void ru_login_json(struct tu_peer *p, int port, const char *name);
/* Logs in a peer of the line codec (which implies version 2) and reads
 * its welcome line. */
void ru_login_line(struct tu_peer *p, int port, const char *name);

/* ---- receiving ----------------------------------------------------------- */

/* 1 if want is NULL (anything) or equal to have. */
int ru_str_is(const char *have, const char *want);

/* Receives until a message of type from sender in room arrives (NULL:
 * any; "" means empty). */
void ru_want(struct tu_peer *p, uint32_t type, const char *sender,
             const char *room, struct tu_msg *m);
/* Receives until an ERROR arrives; it must be code (or alt, when alt is
 * not 0) and must not close the connection.  The ERROR is stored in *m
 * when m is not NULL. */
void ru_want_error(struct tu_peer *p, uint32_t code, struct tu_msg *m);
void ru_want_error_or(struct tu_peer *p, uint32_t code, uint32_t alt,
                      struct tu_msg *m);

/* ---- requests ------------------------------------------------------------ */

void ru_send_join(struct tu_peer *p, const char *room);
/* Joins room and waits for the confirmation; returns its member count. */
uint32_t ru_join(struct tu_peer *p, const char *name, const char *room);
/* Parts room (LEAVE with room, code PART) and waits for the
 * confirmation. */
void ru_part(struct tu_peer *p, const char *name, const char *room,
             const char *reason);
void ru_send_room(struct tu_peer *p, const char *room, const char *text);
void ru_send_topic(struct tu_peer *p, const char *room, const char *text);
/* A round trip: WHO, and its answer.  Proves the connection is still
 * open and that everything sent before it has been handled. */
void ru_still_here(struct tu_peer *p);

/* ---- markers ------------------------------------------------------------- */

/* A server notice to every user: it reaches each one after whatever the
 * server queued for them before the notice was asked for. */
void ru_mark(tcpchat_server *srv, const char *marker);

enum { RU_SEEN_MAX = 64 };
/* What the last ru_upto() received before the marker (the first
 * RU_SEEN_MAX messages). */
extern struct tu_msg ru_seen[RU_SEEN_MAX];

/* Receives what p gets up to the notice marker, kept in ru_seen[];
 * returns how many messages came before it. */
int ru_upto(struct tu_peer *p, const char *marker);
/* Messages of type from sender in room among the first n of ru_seen[]
 * (NULL: any). */
int ru_count_seen(int n, uint32_t type, const char *sender, const char *room);

/* ---- line and JSON Lines peers ------------------------------------------- */

/* Lines of a line peer up to the notice marker ("*** marker"): how many
 * of them start with prefix ("": every line; NULL: none is counted). */
int ru_lines_upto(struct tu_peer *p, const char *marker, const char *prefix);
/* The next line of a line peer, which must be want_line. */
void ru_next_line(struct tu_peer *p, const char *want_line);
/* The next line of a line peer, which must start with prefix. */
void ru_next_line_prefix(struct tu_peer *p, const char *prefix);

/* The value of a number key in a JSON line. */
long long ru_json_num(const char *line, const char *key);
/* The next line of a JSON peer must be want_tpl, where "@ID" and "@TS"
 * stand for the id and the time the line carries. */
void ru_json_line(struct tu_peer *p, const char *want_tpl);

/* ---- servers ------------------------------------------------------------- */

void ru_server_option(tcpchat_server *srv, int opt, long long v);
/* A binary server, not started. */
tcpchat_server *ru_server_new(int *port);
/* A server, not started, with the given epoch and a binary listener, and
 * a JSON Lines one when json_port is not NULL. */
tcpchat_server *ru_server_epoch(int *port, int *json_port, long long epoch);
void ru_server_go(tcpchat_server *srv);
/* Waits until the server counts that many users and rooms (UINT64_MAX:
 * any).  1 if it did. */
int ru_wait_stats(tcpchat_server *srv, uint64_t users, uint64_t rooms);

/* Closes the n peers, in order, then stops srv. */
void ru_finish(tcpchat_server *srv, struct tu_peer *const *peers, int n);
#define RU_FINISH(srv, ...)                                                    \
	ru_finish((srv), (struct tu_peer *const[]){__VA_ARGS__},               \
	          (int)(sizeof((struct tu_peer *const[]){__VA_ARGS__}) /       \
	                sizeof(struct tu_peer *)))

/* Copies s into dst, cut to cap - 1 bytes, NUL-terminated. */
void ru_copy_view(char *dst, size_t cap, tcpchat_str s);

#endif
