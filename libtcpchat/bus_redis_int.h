/* libtcpchat - the Redis bus, shared between its sources: bus_redis.c
 * (the requests and their replies), bus_redis_sub.c (followed rooms and
 * the pub/sub messages) and bus_redis_link.c (new(), the two
 * connections, liveness, losses and reconnects).  Loop thread only.  Not installed. */
#ifndef TCPCHAT_BUS_REDIS_INT_H
#define TCPCHAT_BUS_REDIS_INT_H

#include <hiredis/async.h>

#include "bus.h"
#include "internal.h"
#include "redis_loop.h"

/* Records kept per room in its stream (MAXLEN ~). */
#define BUS_REDIS_HIST 10000
/* Liveness: a ping every PING_MS, lost when none is back in DEAD_MS. */
#define BUS_REDIS_PING_MS 1000
#define BUS_REDIS_DEAD_MS 3000
/* Reconnect delays: from MIN doubling to MAX, each +-20%. */
#define BUS_REDIS_RETRY_MIN 100
#define BUS_REDIS_RETRY_MAX 5000

/* The Lua scripts, loaded by SHA1 (SCRIPT LOAD), sent whole (EVAL) when
 * the server answers NOSCRIPT. */
enum { SCRIPT_POST, SCRIPT_FETCH, SCRIPT_CLAIM, SCRIPT_RELEASE, NSCRIPTS };
extern const char *const bus_redis__scripts[NSCRIPTS];

/* What a request waits for. */
enum req_kind {
	REQ_POST,    /* answered with posted() */
	REQ_FETCH,   /* fetched() */
	REQ_CLAIM,   /* claimed() */
	REQ_PUBLISH, /* broadcast, send, release: no answer event */
	REQ_PING,    /* liveness of cmd (and of sub, through the message) */
	REQ_HELLO,   /* the first reply of a new cmd connection */
	REQ_EPOCH,   /* SET NX of the epoch after a reconnect */
	REQ_SCRIPT,  /* SCRIPT LOAD after a reconnect */
};

struct bus_redis;
struct broom;

/* One command on the cmd connection.  While hiredis holds it (sent), its
 * callback frees it; `answered` says the event was given already (by a
 * loss).  A fetch may wait in its room's list before it is sent. */
struct req {
	struct bus_redis *b;
	enum req_kind kind;
	void *token;
	int sent;                /* hiredis holds it */
	int answered;            /* its event was given (or it needs none) */
	int user;                /* post, fetch or claim: in the pending list */
	struct req *prev, *next; /* pending list, in request order */
	struct req *wnext;       /* a room's waiting fetches */
	uint64_t ping;           /* REQ_PING: its number */
	/* The command, kept to send it again with EVAL after NOSCRIPT. */
	int script; /* SCRIPT_*, or -1 */
	int argc;
	const char *argv[10];
	size_t argvlen[10];
	char *buf; /* owns the bytes argv points into */
};

/* A followed room. */
enum { SUB_NONE, SUB_PENDING, SUB_OK };
struct broom {
	struct broom *next; /* hash chain */
	char name[64];
	size_t len;
	int state;                 /* SUB_* on the current sub connection */
	struct req *wait, **wtail; /* fetches waiting for SUB_OK */
};

/* The state of the link to Redis. */
enum { LINK_UP, LINK_DOWN, LINK_CONNECTING };

struct bus_redis {
	struct bus base;
	int destroyed;
	/* where Redis is: numeric address, for reconnects without DNS */
	char host[64];
	int port;
	char url[160];
	char sha[NSCRIPTS][41];
	redisAsyncContext *cmd, *sub;
	struct redis_loop_graves graves;
	int link;           /* LINK_* */
	int hello_ok;       /* LINK_CONNECTING: cmd answered */
	int subs_wanted;    /* LINK_CONNECTING: confirmations awaited */
	int epoch_sent;     /* LINK_CONNECTING: SET NX sent */
	int64_t link_since; /* when the current connection attempt began */
	int64_t down_since;
	int retry_ms;
	struct loop_timer tick, retry;
	/* liveness: the last ping sent, when, and the oldest unanswered */
	uint64_t ping_n;
	int64_t ping_at, cmd_wait, sub_wait;
	/* requests waiting for an answer event, oldest first */
	struct req *pend_head, *pend_tail;
	/* followed rooms */
	struct broom **rooms;
	size_t nrooms, nbuckets;
	uint64_t hkey[2];
	int64_t bad_log_at; /* rate limit of the malformed warning */
	uint64_t rng;       /* xorshift state of the retry jitter */
	char ping_chan[BUS_NODE_MAX + 16];
	char node_chan[BUS_NODE_MAX + 16];
};

/* 1 for a room name as bus.h takes it: '#' and 1..63 bytes. */
static inline int room_name_ok(const char *room, size_t rlen)
{
	return room && rlen >= 2 && rlen <= 64 && room[0] == '#';
}

/* bus_redis.c: */
/* Counts a malformed message in st.bad; warns at most once a second. */
void bus_redis__bad(struct bus_redis *b, const char *what);
/* p[0..n) as a decimal number of 1..20 digits that fits: 0 with *out,
 * else -1. */
int bus_redis__parse_u64(const char *p, size_t n, uint64_t *out);
/* Sends the fetches that waited for r's confirmation (in order); one
 * that cannot be sent is answered with TCPCHAT_EBUS. */
void bus_redis__room_flush(struct bus_redis *b, struct broom *r);
/* Formats and gives a log line to ev.log. */
void bus_redis__log(struct bus_redis *b, int level, const char *fmt, ...)
        TC_PRINTF(3, 4);
/* (bus_redis_sub.c) Sends on sub the SUBSCRIBE of every channel this bus listens to (all,
 * own node, ping, every followed room), each room SUB_PENDING; returns
 * how many confirmations to wait for, or -1 when sub refused. */
int bus_redis__subscribe_all(struct bus_redis *b);
/* Gives TCPCHAT_EBUS to every pending request, in request order, and
 * frees the fetches waiting for their rooms. */
void bus_redis__fail_pending(struct bus_redis *b);
/* Sends a request made by the link (ping, hello, epoch, script load) on
 * cmd: 0, or -1 (not sent, freed). */
int bus_redis__send_internal(struct bus_redis *b, enum req_kind kind,
                             uint64_t ping, int argc, const char **argv,
                             const size_t *argvlen);
/* (bus_redis_sub.c) Frees every room. */
void bus_redis__free_rooms(struct bus_redis *b);
/* (bus_redis_sub.c) The message callback of sub (privdata: the
 * bus). */
void bus_redis__on_sub(redisAsyncContext *ac, void *r, void *priv);
/* The reply callback of cmd (privdata: a struct req). */
void bus_redis__on_reply(redisAsyncContext *ac, void *r, void *priv);

/* bus_redis_sub.c: */
/* The room named room[0..rlen) when followed, else NULL. */
struct broom *bus_redis__room_find(struct bus_redis *b, const char *room,
                                   size_t rlen);
/* The follow and unfollow of bus_ops (see bus.h). */
int bus_redis__follow(struct bus *bb, const char *room, size_t rlen);
void bus_redis__unfollow(struct bus *bb, const char *room, size_t rlen);

/* bus_redis_link.c: */
/* The connection is lost (why in words): down() once, pending requests
 * failed, both contexts freed, a reconnect scheduled.  Any callback may
 * call it; a context that hiredis is freeing must be set to NULL in b
 * first. */
void bus_redis__lose(struct bus_redis *b, const char *why);
/* A sub confirmation or the hello reply came in while connecting: when
 * all are in, re-checks the epoch and then says up(). */
void bus_redis__progress(struct bus_redis *b);
/* The epoch check after a reconnect is answered. */
void bus_redis__epoch_done(struct bus_redis *b);
/* The answer to ping n came on cmd (on_cmd 1) or on sub. */
void bus_redis__pong(struct bus_redis *b, uint64_t n, int on_cmd);
/* Frees both contexts (destroy). */
void bus_redis__close(struct bus_redis *b);

extern const struct bus_ops bus_redis__ops;

#endif
