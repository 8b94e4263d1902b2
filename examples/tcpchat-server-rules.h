/* tcpchat-server - room authorization from a rules file (--rules):
 *
 *     # a comment (also after the words of a line)
 *     room #announce      a section per room; "room *" applies to every
 *                         room without a section of its own
 *     join *              who may join: names, * (everyone), @registered
 *                         (users who logged in with a password)
 *     speak alice bob     who may speak (anything but * makes the room
 *                         moderated)
 *     op alice            the operators: may kick, ban and unban, set
 *                         the topic, and always join and speak
 *     topic ops           who may set the topic: ops or * (default *)
 *
 * A section without a join or speak line lets everyone join or speak.
 * A room no section covers lets everyone do everything but kick.  A '#'
 * that begins a word starts a comment, except the room of a room line.
 * SPDX-License-Identifier: MIT */
#ifndef TCPCHAT_SERVER_RULES_H
#define TCPCHAT_SERVER_RULES_H

#include <stddef.h>

#include <tcpchat/tcpchat.h>

/* What a user asks to do in a room. */
enum rules_act { RULES_JOIN, RULES_SPEAK, RULES_TOPIC, RULES_KICK };

struct rules;

/* Parses the rules file text buf[0..len) (any bytes), named file in the
 * errors.  Returns the table (free it with rules_free()), or NULL with a
 * sentence in err[0..n) ("rules.conf:3: unknown keyword 'jion'").  A pure
 * function of its input: any thread. */
struct rules *rules_parse(const char *buf, size_t len, const char *file,
                          char *err, size_t n);

/* Reads and parses the file (at most 1 MiB).  As rules_parse(). */
struct rules *rules_load(const char *file, char *err, size_t n);

/* 1 when the user name[0..nlen) (registered: logged in with a password)
 * may do act in room[0..rlen) by the table r, else 0.  Any thread, as
 * long as r is not freed meanwhile. */
int rules_allow(const struct rules *r, const char *room, size_t rlen,
                const char *name, size_t nlen, int registered, int act);

/* Frees a table.  Accepts NULL. */
void rules_free(struct rules *r);

/* The rules in force in tcpchat-server: a table swapped whole on
 * SIGHUP. */
struct rules_live;

/* Loads file; NULL with the error in err (as rules_parse()). */
struct rules_live *rules_live_new(const char *file, char *err, size_t n);

/* SIGHUP: reads the file again into a new table and puts it in force
 * only if all of it is valid; else the old one stays and err says why.
 * Returns 0 or -1.  Any thread. */
int rules_live_reload(struct rules_live *lv, char *err, size_t n);

/* rules_allow() with the table in force.  Any thread. */
int rules_live_allow(struct rules_live *lv, const char *room, size_t rlen,
                     const char *name, size_t nlen, int registered, int act);

/* The handler's answer to a ROOM_JOIN, MESSAGE (room texts only: private
 * messages are not moderated), TOPIC or ROOM_KICK event ev from the user
 * ev->name (registered: logged in with a password), by the rules in
 * force, or with lv NULL (no --rules) everything but kicks: sets
 * ev->allow and returns TCPCHAT_ACCEPT, or sets ev->refuse_reason (a
 * static buffer) and returns TCPCHAT_REFUSE.  The server's loop thread
 * only. */
int rules_live_verdict(struct rules_live *lv, tcpchat_server_event *ev,
                       int registered);

/* Frees everything.  Accepts NULL. */
void rules_live_free(struct rules_live *lv);

#endif
