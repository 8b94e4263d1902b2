/* libtcpchat - the NATS bus, inside: what bus_nats.c (the loop side, the
 * connection and its callbacks) and bus_nats_work.c (the worker thread
 * that makes the blocking JetStream calls) share.  Not installed.
 *
 * Threads: three kinds touch a struct bus_nats.
 *   the loop thread   the bus_ops, the wakeup callback that drains the
 *                     event FIFO and calls the events;
 *   the worker        one thread of the bus; takes requests from the
 *                     request FIFO in order and carries them out;
 *   nats.c's threads  message and connection callbacks; they only copy
 *                     data into events and push them on the event FIFO.
 * Each field says who may touch it. */
#ifndef TCPCHAT_BUS_NATS_INT_H
#define TCPCHAT_BUS_NATS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "bus.h"

/* The stream of every room's records and its history per room. */
#define BUS_NATS_STREAM "TCPCHAT"
#define BUS_NATS_HIST 10000
#define BUS_NATS_LOG_PREFIX "tcpchat.log."
/* The stream republishes each message it stored on the same subject
 * under this prefix: the live copies, which servers follow with a plain
 * subscription per room (the stream is read only to catch up). */
#define BUS_NATS_LIVE_PREFIX "tcpchat.live."
#define BUS_NATS_ALL "tcpchat.all"
#define BUS_NATS_NODE_PREFIX "tcpchat.node."
/* The longest subject (and its NUL): the longest prefix + 2 hex digits
 * per byte of a room name ('#' + 63 bytes at most; a longer one is
 * refused), longer than a node's subject. */
#define BUS_NATS_ROOM_MAX 64
#define BUS_NATS_SUBJ_MAX (sizeof BUS_NATS_LIVE_PREFIX + 2 * BUS_NATS_ROOM_MAX)
_Static_assert(BUS_NATS_SUBJ_MAX >=
                       sizeof BUS_NATS_NODE_PREFIX + 2 * BUS_NODE_MAX,
               "a node's subject fits");
/* Tries of a post that loses the race for the room's next number. */
#define BUS_NATS_TRIES 100
/* A round of posts: at most this many, and no more payload bytes once
 * past this (a record is up to BUS_REC_MAX), so that one room's message
 * stays below the engine's 1 MiB limit. */
#define BUS_NATS_ROUND_POSTS 1024
#define BUS_NATS_ROUND_BYTES (512 * 1024)
/* The most records one message may carry (more is hostile). */
#define BUS_NATS_BATCH_MAX 4096
/* How long a round waits for the PubAcks of its messages. */
#define BUS_NATS_ACK_MS 5000

enum bn_kind {
	BN_POST,
	BN_FETCH,
	BN_CLAIM,
	BN_RELEASE,
	BN_FOLLOW,
	BN_UNFOLLOW,
	BN_RESUB /* after a reconnect: follow every room again, then up() */
};

enum bn_ev_kind {
	BE_DOWN,
	BE_ROOM,
	BE_NOTE,
	BE_DONE,
	BE_GARBAGE,
	BE_BASE /* a followed room's last seq when its consumer began */
};

/* An event for the loop thread: copied data behind it (or, for BE_DONE,
 * the request it is part of). */
struct bn_ev {
	struct bn_ev *next;
	int kind;
	uint64_t seq;
	struct bn_req *req; /* BE_DONE */
	char *room;         /* BE_ROOM, BE_BASE */
	size_t rlen;
	uint8_t *data; /* BE_ROOM, BE_NOTE; the text of BE_DOWN/BE_GARBAGE */
	size_t len;
	/* BE_ROOM: the first record of a message counts the message (1)
	 * and its payload bytes (mbytes) for the stats; the others 0. */
	unsigned nmsg;
	size_t mbytes;
};

/* A request for the worker.  The loop fills the input part and never
 * touches it again until the request comes back in a BE_DONE event; the
 * worker fills the answer part.  One allocation with room, data and
 * stale behind it. */
struct bn_req {
	struct bn_ev done;            /* how it goes back: BE_DONE */
	struct bn_req *next;          /* in the request FIFO (under wmu) */
	struct bn_req *oprev, *onext; /* loop: the requests not answered */
	int kind;
	int answered; /* loop: answered already (failed by a loss) */
	unsigned gen; /* the loss count when it was made */
	void *token;
	/* input */
	char *room;
	size_t rlen;
	const uint8_t *data; /* record (post) */
	size_t len;
	char *stale; /* claim: NULL or the stale holder */
	size_t slen;
	uint64_t floor, after;
	uint32_t max;
	/* answer */
	int err;
	uint64_t seq, last;
	struct bus_rec *recs; /* fetch: malloc'd, each data malloc'd */
	size_t n;
	unsigned bmsgs; /* post: JetStream messages sent for its batch */
	size_t bbytes;  /* and their payload bytes (on one post of it) */
	char holder[BUS_NODE_MAX + 1];
	size_t hlen;
	char why[160]; /* a line for the log when err is EBUS */
};

struct bn_group; /* bus_nats_work.c: a room's posts in a round */

/* What the worker knows of a room: the last message on its subject (any
 * message, for Nats-Expected-Last-Subject-Sequence), the last valid
 * record (stream seq and room seq) and the subscription when followed. */
struct bn_room {
	struct bn_room *next; /* hash chain */
	uint64_t hash;
	int known;         /* last_* were learned */
	uint64_t last_any; /* stream seq of the last message of the room */
	uint64_t last_rec; /* stream seq of the last valid record */
	uint64_t last_seq; /* its room seq */
	int followed;
	natsSubscription *sub;
	struct bn_group *grp; /* its group in the round being posted */
	size_t rlen;
	char room[]; /* not NUL-terminated */
};

/* A room the loop follows, and the last seq its room() events gave: an
 * event at or below it (a consumer reset by nats.c after a reconnect
 * that starts again before it) is not given twice. */
struct bn_followed {
	struct bn_followed *next; /* hash chain */
	uint64_t hash, last;
	size_t rlen;
	char room[];
};

struct bus_nats {
	struct bus pub; /* first: the shared part */

	/* set up by new(), read-only afterwards (any thread) */
	natsConnection *nc;
	jsCtx *js;
	kvStore *names;
	int wake_rfd, wake_wfd;
	uint64_t hkey[2];
	char node_subj[BUS_NATS_SUBJ_MAX];

	/* any thread */
	atomic_int down;     /* 1 between a loss and the resubscription */
	atomic_uint gen;     /* losses the loop has seen (down events) */
	atomic_uint losses;  /* losses nats.c has reported */
	atomic_int live_cbs; /* subscriptions whose completion is not seen */
	atomic_int closing;  /* destroy() started: no more events */

	/* the event FIFO */
	pthread_mutex_t emu;
	struct bn_ev *ehead, *etail;
	atomic_int wake_pending;

	/* the request FIFO and the worker */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	struct bn_req *whead, *wtail;
	int wstop;
	pthread_t worker;
	int worker_started;

	/* destroy() waits for the closed callback and the subscriptions */
	pthread_mutex_t cmu;
	pthread_cond_t ccv;
	int closed;

	/* worker only: the rooms */
	struct bn_room **rooms;
	size_t nrooms, rcap;
	/* worker only: the PubAcks of the posts come to ack_prefix.R.G
	 * (round R, its group G) through ack_sub, made at the first post */
	natsSubscription *ack_sub;
	char ack_prefix[80];
	uint64_t round;

	/* loop only */
	struct loop_watcher wake_w;
	struct bn_req *ohead; /* requests not answered */
	struct bn_followed **fol;
	size_t nfol, fcap;
	int in_dispatch, dead;
	int64_t garbage_logged_ms;
	uint64_t garbage; /* hostile messages seen (loop) */
	natsSubscription *all_sub, *node_sub;
};

/* bus_nats.c: pushes ev on the event FIFO and wakes the loop.  Any
 * thread.  Takes ev; after destroy() started it frees it instead. */
void bus_nats__push(struct bus_nats *b, struct bn_ev *ev);
/* bus_nats.c: a new event (one malloc) with len bytes for data and rlen
 * for room behind it, NUL-terminated; NULL when out of memory.  Any
 * thread; the caller owns it until it hands it to bus_nats__push(). */
struct bn_ev *bus_nats__ev(int kind, size_t len, size_t rlen);
/* bus_nats_open.c: the message callback of room subscriptions (nats.c's
 * threads; closure is the bus). */
void bus_nats__on_room_msg(natsConnection *nc, natsSubscription *sub,
                           natsMsg *msg, void *closure);
/* bus_nats.c: counts a subscription's completion: nats.c calls it once
 * no callback of the subscription runs any more (its threads; closure
 * is the bus). */
void bus_nats__on_sub_done(void *closure);

/* bus_nats_work.c: the worker thread's body (arg is the bus), started by
 * new(): runs the requests of the FIFO in order, each answered with its
 * own BE_DONE event, until wstop.  Returns NULL. */
void *bus_nats__worker(void *arg);
/* bus_nats_work.c: the worker's room room[0..rlen), made when create
 * and not known yet; NULL when not there or out of memory.  Worker
 * thread; the bus owns it. */
struct bn_room *bus_nats__room_get(struct bus_nats *b, const char *room,
                                   size_t rlen, int create);
/* bus_nats_work.c: learns the room's last message and last record
 * (subject subj) from the stream into e.  NATS_OK or nats.c's error.
 * Worker thread. */
natsStatus bus_nats__refresh(struct bus_nats *b, struct bn_room *e,
                             const char *subj);
/* bus_nats_post.c: posts rq[0..n), in the order they were made, as one
 * round: one message per room, all sent before the PubAcks are awaited.
 * Answers each in its err and seq (and counts the messages sent in
 * bmsgs/bbytes of a post of each); the requests stay the caller's.
 * Worker thread. */
void bus_nats__post_round(struct bus_nats *b, struct bn_req **rq, size_t n);
/* bus_nats_work.c: frees the worker's rooms, unsubscribing the followed
 * ones, and the PubAcks' subscription.  After the worker has stopped. */
void bus_nats__rooms_free(struct bus_nats *b);
/* bus_nats_work.c: the subject of room[0..rlen) into out (cap bytes):
 * prefix (BUS_NATS_LOG_PREFIX: the stream's, BUS_NATS_LIVE_PREFIX: the
 * live copies') and the lowercase hex of the bytes.  0, or -1 when it
 * does not fit. */
int bus_nats__room_subject(char *out, size_t cap, const char *prefix,
                           const char *room, size_t rlen);
/* bus_nats_work.c: lowercase hex of p[0..n) into out (2n+1 bytes). */
void bus_nats__hex(char *out, const void *p, size_t n);
/* A room's record message, checked: the room seq of its first record,
 * its count n of records (seqs first..first+n-1), the stream seq of the
 * room's previous record message, and its payload (owned by the
 * message).  A message with a Tcpchat-Count header holds n records, each
 * after its length (u32 big-endian); one without (the first format) is
 * one record, the whole payload. */
struct bn_batch {
	uint64_t first, prev;
	uint32_t n;
	int framed; /* 1 with Tcpchat-Count: records after their lengths */
	const uint8_t *p;
	size_t len;
	size_t off; /* bus_nats__batch_next(): where the next record is */
};
/* bus_nats_open.c: whether msg is a valid record message: 1 with bt
 * filled (ready for bus_nats__batch_next()), else 0: missing or bad
 * headers, n of 0 or over BUS_NATS_BATCH_MAX, seqs past 2^62, a record
 * empty, over BUS_REC_MAX or past the end, lengths that do not add up to
 * the payload.  Any thread; bt points into msg. */
int bus_nats__batch(natsMsg *msg, struct bn_batch *bt);
/* bus_nats_open.c: the next record of a checked batch into *rec and
 * *len (pointers into the message): 1, or 0 after the last.  The
 * caller's thread. */
int bus_nats__batch_next(struct bn_batch *bt, const uint8_t **rec, size_t *len);
/* bus_nats_open.c: a decimal number of 1-20 digits that fits 64 bits,
 * nothing else, into *out: 0, or -1.  Any thread. */
int bus_nats__parse_u64(const char *s, uint64_t *out);
/* bus_nats_open.c: r->err := TCPCHAT_EBUS and r->why := what and
 * nats.c's words for s.  The thread that owns r. */
void bus_nats__fail(struct bn_req *r, const char *what, natsStatus s);
/* bus_nats_work.c: frees a request and what its answer holds (NULL is
 * fine).  The thread that owns it: the loop once its BE_DONE event
 * came, teardown for those never run. */
void bus_nats__req_free(struct bn_req *r);
/* bus_nats.c: the operations, for new(). */
extern const struct bus_ops bus_nats__ops;
/* bus_nats.c: nats.c's connection callbacks (its threads; closure is
 * the bus) and the core subscriptions' message callback. */
void bus_nats__on_disconnected(natsConnection *nc, void *closure);
void bus_nats__on_reconnected(natsConnection *nc, void *closure);
void bus_nats__on_closed(natsConnection *nc, void *closure);
/* Messages dropped for a slow consumer: a loss, then a resubscription. */
void bus_nats__on_error(natsConnection *nc, natsSubscription *sub,
                        natsStatus err, void *closure);
void bus_nats__on_note(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                       void *closure);
/* bus_nats.c: the wakeup's watcher callback (loop thread): drains the
 * event FIFO and calls the events in order. */
void bus_nats__on_wake(struct loop_watcher *w, unsigned events);
/* bus_nats.c: stops the worker and the connection and frees everything
 * but the struct (loop thread, or new() failing). */
void bus_nats__teardown(struct bus_nats *b);
/* bus_nats.c: the number of hostile messages counted so far (loop
 * thread): for tests. */
uint64_t bus_nats__garbage(struct bus *b);

#endif
