/* libtcpchat - the bus: what crosses between the servers that form one
 * chat through an engine (Redis, NATS).  Not installed.
 *
 * The bus carries records, opaque to it (the server's cluster layer
 * writes them as binary-codec frames), over four kinds of path:
 *
 *   rooms      post() gives a record the room's next sequence number,
 *              atomically in the engine (one order for the whole
 *              cluster), keeps it in the room's history there and hands
 *              it, with its number, to every server that follows the
 *              room, this one included: room() events.  fetch() reads a
 *              room's history back.
 *   broadcast  to every server (presence, heartbeats): note() events,
 *              this server's own included.
 *   direct     to one server, by node id (private messages, answers).
 *   names      claim() takes a user name for this server, atomically
 *              cluster-wide; release() gives it back.
 *
 * Without a bus (srv->bus NULL) the server is alone and none of this
 * runs: its fan-out path has no extra cost.
 *
 * Threads: every function here is called on the loop thread, and every
 * event is called on the loop thread (an engine client with threads of
 * its own hands its events over through a wakeup of the bus's own,
 * watched on the loop: loop__post() is the server's).  No function
 * blocks the loop, except bus_*__new(), which connects before the loop
 * runs.
 *
 * Losses: when the engine connection is lost the bus says down(), fails
 * what is pending with TCPCHAT_EBUS, refuses new requests with
 * TCPCHAT_EBUS, and reconnects by itself with backoff (from 100 ms,
 * doubling to 5 s, with jitter); when it is back it follows again every
 * room it followed and says up().  Records published meanwhile by others
 * may come as room() events after up() (NATS's ordered consumers resume
 * where they were) or not (Redis): the server fetches them, and drops
 * what it has seen by seq. */
#ifndef TCPCHAT_BUS_H
#define TCPCHAT_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

/* A node id: the node's name, ':', and 16 hex digits drawn at start, so
 * that a server restarted under the same name is a new node. */
#define BUS_NAME_MAX 32
#define BUS_NODE_MAX (BUS_NAME_MAX + 17)

/* Bytes of one record at most (a chat message and its envelope). */
#define BUS_REC_MAX (256 * 1024)

struct bus;

/* One record of a room's history (fetched()).  data points into the
 * bus's memory, valid during the callback only. */
struct bus_rec {
	uint64_t seq;
	const uint8_t *data;
	size_t len;
};

/* What the bus tells the server, on the loop thread.  Every request that
 * was accepted (returned 0) gets exactly one answer, unless the bus is
 * destroyed first; an answer may come from inside a later call on the
 * bus (never from inside the call that made the request). */
struct bus_events {
	void *data;
	/* The engine is reachable again after down(); every followed room
	 * is followed again. */
	void (*up)(void *data);
	/* The engine is lost: why in words.  Pending requests are answered
	 * with TCPCHAT_EBUS right after this. */
	void (*down)(void *data, const char *why);
	/* A record of a followed room with its seq: for each room in
	 * increasing seq order (gaps are possible after a loss). */
	void (*room)(void *data, const char *room, size_t rlen, uint64_t seq,
	             const uint8_t *rec, size_t len);
	/* A broadcast (from any node, this one too) or a direct record
	 * sent to this node. */
	void (*note)(void *data, const uint8_t *rec, size_t len);
	/* Answers post(): err 0 with the record's seq, or an error. */
	void (*posted)(void *data, void *token, int err, uint64_t seq);
	/* Answers fetch(): err 0 with recs[0..n) in increasing seq order
	 * and last, the room's last seq (0 for a room never posted to), or
	 * an error. */
	void (*fetched)(void *data, void *token, int err,
	                const struct bus_rec *recs, size_t n, uint64_t last);
	/* Answers claim(): 0 (the name is this node's now), or
	 * TCPCHAT_ENAMEINUSE with holder[0..hlen), the node id holding it,
	 * or another error. */
	void (*claimed)(void *data, void *token, int err, const char *holder,
	                size_t hlen);
	/* A line for the server's log (TCPCHAT_LOG_*). */
	void (*log)(void *data, int level, const char *text);
};

/* Counters, read on the loop thread. */
struct bus_stats {
	uint64_t sent,
	        sent_bytes; /* messages and payload bytes to the engine */
	uint64_t recv, recv_bytes; /* and from it */
	uint64_t losses;           /* times the connection was lost */
	uint64_t bad;              /* malformed messages dropped */
};

struct bus_ops {
	const char *name; /* "redis", "nats" */
	/* Posts rec[0..len) to room[0..rlen) (a checked room name).  floor:
	 * the highest seq of the room this server knows; the number given
	 * is above it even if the engine lost its counter. */
	int (*post)(struct bus *b, const char *room, size_t rlen,
	            uint64_t floor, const void *rec, size_t len, void *token);
	/* Starts or stops receiving room()s of a room.  Following twice is
	 * following once. */
	int (*follow)(struct bus *b, const char *room, size_t rlen);
	void (*unfollow)(struct bus *b, const char *room, size_t rlen);
	/* Reads the records of a room with seq > after: the newest max of
	 * them when there are more.  A fetch made after follow() of the
	 * same room misses no record that the room() events miss: what is
	 * posted after the follow took effect comes as room(), what was
	 * there before is in the fetch (the bus waits, when it must, until
	 * the engine has confirmed the follow). */
	int (*fetch)(struct bus *b, const char *room, size_t rlen,
	             uint64_t after, uint32_t max, void *token);
	/* To every node (this one too) and to one node. */
	int (*broadcast)(struct bus *b, const void *rec, size_t len);
	int (*send)(struct bus *b, const char *node, size_t nlen,
	            const void *rec, size_t len);
	/* Claims name[0..nlen) for this node: taken when nobody holds it,
	 * when this node holds it, or when stale (a node id, or NULL)
	 * holds it: the caller knows that node is gone. */
	int (*claim)(struct bus *b, const char *name, size_t nlen,
	             const char *stale, size_t slen, void *token);
	/* Gives name[0..nlen) back if this node holds it (no answer). */
	void (*release)(struct bus *b, const char *name, size_t nlen);
	/* After each loop__poll(), outside callbacks: frees what callbacks
	 * could not. */
	void (*reap)(struct bus *b);
	/* Disconnects and frees the bus; no event is called after it. */
	void (*destroy)(struct bus *b);
};

/* The part every bus shares; an implementation embeds it first. */
struct bus {
	const struct bus_ops *ops;
	struct loop *loop;
	struct bus_events ev;
	uint64_t epoch;              /* the cluster's, never 0 (see new) */
	char node[BUS_NODE_MAX + 1]; /* this node's id */
	size_t node_len;
	int up; /* 1 while the engine is reachable */
	struct bus_stats st;
};

/* Connects to the engine at url (redis://HOST:PORT, nats://HOST:PORT),
 * waiting at most timeout_ms, as node id `node` (a checked id); reads
 * the cluster's epoch there, or sets it to `epoch` when there is none
 * yet.  Before the loop runs; the events go to *ev (copied).  Returns 0
 * with *out, or an error with words in err[0..errlen):
 *   TCPCHAT_EADDR     url is not one this bus takes;
 *   TCPCHAT_EBUS      the engine cannot be reached or refused;
 *   TCPCHAT_ENOTSUP   this build has no such bus;
 *   TCPCHAT_ENOMEM. */
typedef int (*bus_new_fn)(struct bus **out, struct loop *loop, const char *url,
                          const char *node, uint64_t epoch, int timeout_ms,
                          const struct bus_events *ev, char *err,
                          size_t errlen);
int bus_redis__new(struct bus **out, struct loop *loop, const char *url,
                   const char *node, uint64_t epoch, int timeout_ms,
                   const struct bus_events *ev, char *err, size_t errlen);
int bus_nats__new(struct bus **out, struct loop *loop, const char *url,
                  const char *node, uint64_t epoch, int timeout_ms,
                  const struct bus_events *ev, char *err, size_t errlen);

#endif
