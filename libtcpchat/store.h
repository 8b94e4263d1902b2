/* libtcpchat - the store: a room's durable history and state (internal).
 *
 * One interface, several implementations: in memory (store_mem.c, libc
 * only, history lost when the process ends) and SQLite (store_sqlite.c,
 * the `sqlite` build feature), plus a fault-injecting wrapper for tests
 * (store_faulty.c).
 *
 * Threads: every function is synchronous and may block (a SQLite commit
 * waits for the disk).  The caller runs them on a thread of its own,
 * NEVER on a loop thread.  A store object is used by one thread at a time:
 * it has no lock of its own, so two threads that share one must serialize
 * their calls.  Callbacks (store__read, store__rooms) run on the calling
 * thread, inside the call, and must not call the same store.
 *
 * Strings are tcpchat_str views.  The views a store hands to a callback
 * are valid only until that callback returns; the views a caller passes in
 * are copied before the call returns.
 *
 * Sequence numbers: a room's messages are appended with strictly
 * increasing seqs (1 <= seq <= INT64_MAX).  A seq that is not greater than
 * every seq appended before for that room (stored or already trimmed) is
 * refused with TCPCHAT_EINVAL, and the whole batch with it.  History stays
 * contiguous: trimming only ever drops a room's oldest messages.
 *
 * Errors: 0 (or a count) on success, a negative TCPCHAT_E* code on
 * failure.  store__errmsg() says what went wrong in words. */
#ifndef TCPCHAT_STORE_H
#define TCPCHAT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* A room message.  Views valid for the call. */
struct store_msg {
	tcpchat_str room;  /* "#name" */
	uint64_t seq;      /* the room's sequence number, from 1 */
	uint64_t id;       /* the server-wide message id */
	int64_t timestamp; /* ms since the Unix epoch */
	tcpchat_str sender, body;
	tcpchat_str ref; /* the sender's reference (empty: none), so that a
	                    resend after a restart is known */
	uint32_t flags;
};

/* A room's durable state. */
struct store_room {
	tcpchat_str room;
	uint64_t last_seq; /* the last seq ever given (never reused, even when
	                      its message was trimmed) */
	tcpchat_str topic, topic_by; /* empty: no topic */
	int64_t topic_ts;
};

struct store;

typedef int (*store_msg_fn)(const struct store_msg *m, void *ud);
typedef int (*store_room_fn)(const struct store_room *r, void *ud);

/* The operations of an implementation; see the store__ functions below. */
struct store_ops {
	uint64_t (*epoch)(struct store *s);
	int (*append)(struct store *s, const struct store_msg *m, size_t n,
	              const struct store_room *rooms, size_t nrooms);
	long (*read)(struct store *s, tcpchat_str room, uint64_t after,
	             uint64_t before, size_t limit, int backward,
	             store_msg_fn fn, void *ud);
	int (*oldest)(struct store *s, tcpchat_str room, uint64_t *seq);
	int (*trim)(struct store *s, tcpchat_str room, uint64_t keep,
	            int64_t older_than_ms);
	int (*rooms)(struct store *s, store_room_fn fn, void *ud);
	const char *(*errmsg)(struct store *s);
	void (*close)(struct store *s);
};

/* Every implementation's object starts with this. */
struct store {
	const struct store_ops *ops;
};

/* ---- Opening ----------------------------------------------------------- */

/* Opens an empty in-memory store into *out.  Each room keeps at most
 * max_msgs_per_room messages (0: no bound): appending beyond drops the
 * room's oldest, so its oldest seq moves up.  Each open has a new random
 * epoch.  Returns 0, TCPCHAT_EINVAL (out NULL) or TCPCHAT_ENOMEM.  Free
 * with store__close(). */
int store__mem_open(struct store **out, size_t max_msgs_per_room);

/* store__sqlite_open() flags. */
#define STORE_CREATE 0x1 /* create the file when it is missing */
#define STORE_FSYNC                                                            \
	0x2 /* synchronous=FULL: a commit survives a power
                            loss.  Without it synchronous=NORMAL: a commit
                            survives a crash of the process (kill -9) but
                            the last ones may be lost on a power loss. */

/* Opens the SQLite store at path (WAL mode) into *out.  The file is held
 * with an exclusive lock until store__close(): a second open of the same
 * file, by this process or another, fails after a 200 ms busy wait, so two
 * servers never share one file (and no other program can read it while it
 * is open).  A new file gets the current schema and a random epoch, kept
 * in it for good.
 *
 * On failure, err (when not NULL) receives a NUL-terminated sentence of at
 * most errlen bytes, such as "cannot open /x/y.db: unable to open
 * database file", and the return value is:
 *   TCPCHAT_ENOTFOUND  the file is missing and STORE_CREATE was not given;
 *   TCPCHAT_ESYS       it cannot be opened or written (permissions, a path
 *                      through a regular file, a disk error);
 *   TCPCHAT_ESTATE     another store holds it (locked);
 *   TCPCHAT_EPROTO     it is not a database, is corrupt, or is a SQLite
 *                      database that is not a tcpchat store;
 *   TCPCHAT_EVERSION   its schema is newer than this library's;
 *   TCPCHAT_ENOTSUP    the library was built without SQLite ("built
 *                      without SQLite");
 *   TCPCHAT_EINVAL / TCPCHAT_ENOMEM.
 * *out is set only on success.  Free with store__close(). */
int store__sqlite_open(struct store **out, const char *path, int flags,
                       char *err, size_t errlen);

/* For tests: wraps inner (which it then owns and closes) in a store that
 * passes every call through until a fault set by store__faulty_set()
 * fires.  Returns 0, TCPCHAT_EINVAL or TCPCHAT_ENOMEM (inner is then
 * closed). */
int store__faulty(struct store **out, struct store *inner);

/* Which operation store__faulty_set() makes fail. */
enum store_fault_op {
	STORE_FAULT_APPEND,
	STORE_FAULT_READ, /* after delivering half of what it read */
	STORE_FAULT_OLDEST,
	STORE_FAULT_TRIM,
	STORE_FAULT_ROOMS,
	STORE_FAULT_NOPS
};

/* On a store from store__faulty(): the call of op after the next `after`
 * ones fails with TCPCHAT_ESYS, and so does every later one; after < 0
 * clears the fault.  A failing append or trim changes nothing in the
 * inner store; a failing read delivers half of the messages the inner read
 * delivers first (the caller must cope with a read cut short). */
void store__faulty_set(struct store *s, enum store_fault_op op, int after);

/* ---- Operations (dispatch to the implementation) ----------------------- */

/* The id of this store's history, never 0: random per open for the memory
 * store (its history dies with it), created once and kept in the file for
 * SQLite.  A client that sees the epoch change knows seqs restarted. */
static inline uint64_t store__epoch(struct store *s)
{
	return s->ops->epoch(s);
}

/* Appends n messages and the states of nrooms rooms in one transaction:
 * all of it or none of it.  A room is created by its first message or
 * state.  A room's last_seq becomes the greatest of what it was, the
 * given last_seq and the seqs of its appended messages; its topic, topic_by
 * and topic_ts are replaced by a given state.  Returns 0; TCPCHAT_EINVAL
 * for a bad argument (empty room name, seq 0 or above INT64_MAX, a seq not
 * greater than the room's previous ones), nothing being written; or the
 * error of the store (TCPCHAT_ESYS, TCPCHAT_ENOMEM), nothing being
 * written. */
static inline int store__append(struct store *s, const struct store_msg *m,
                                size_t n, const struct store_room *rooms,
                                size_t nrooms)
{
	return s->ops->append(s, m, n, rooms, nrooms);
}

/* Calls fn for room's messages with after < seq < before (before 0: no
 * upper bound), at most limit of them (0: no limit), oldest first.  With
 * backward, the LAST limit messages of that range, still delivered oldest
 * first: after 0, before 0, backward gives "the latest limit", before S
 * backward gives "the limit before S".  fn returns 0 to go on; a non-zero
 * value stops the read, and store__read returns it.  Returns the number
 * of messages delivered (0 for an unknown room), or a negative error. */
static inline long store__read(struct store *s, tcpchat_str room,
                               uint64_t after, uint64_t before, size_t limit,
                               int backward, store_msg_fn fn, void *ud)
{
	return s->ops->read(s, room, after, before, limit, backward, fn, ud);
}

/* The oldest seq still kept for room, in *seq: the seq of its oldest
 * message, or last_seq + 1 when none is kept (everything before *seq is
 * gone).  Returns 0, TCPCHAT_ENOTFOUND for a room the store does not know,
 * or an error. */
static inline int store__oldest(struct store *s, tcpchat_str room,
                                uint64_t *seq)
{
	return s->ops->oldest(s, room, seq);
}

/* Drops room's oldest messages: beyond the newest keep (0: no count
 * limit), and, from the oldest on, those with a timestamp before
 * older_than_ms (0: no age limit; the first message at or after it stops
 * the drop, so history stays contiguous).  last_seq is unchanged.
 * Returns 0 (also for an unknown room) or an error, nothing being
 * dropped. */
static inline int store__trim(struct store *s, tcpchat_str room, uint64_t keep,
                              int64_t older_than_ms)
{
	return s->ops->trim(s, room, keep, older_than_ms);
}

/* Calls fn with every room's state (for loading at start), in no
 * particular order.  fn returns 0 to go on; a non-zero value stops, and
 * store__rooms returns it.  Returns 0 or an error. */
static inline int store__rooms(struct store *s, store_room_fn fn, void *ud)
{
	return s->ops->rooms(s, fn, ud);
}

/* What went wrong with the last call on this store, in words ("" when
 * it did not fail, or for a bad argument it was given).  Valid until the
 * next call on the store. */
static inline const char *store__errmsg(struct store *s)
{
	return s->ops->errmsg(s);
}

/* Closes the store and frees everything (NULL: nothing). */
static inline void store__close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

/* A random epoch, never 0 (store_mem.c). */
uint64_t store__new_epoch(void);
#endif
