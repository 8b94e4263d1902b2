/* libtcpchat - the server's internal types and the functions its files
 * share.  Not installed.
 *
 * Files, by concern:
 *   lifecycle.c  new/destroy, options, handler, run modes, the iteration
 *   listen.c     listeners, accept, EMFILE survival, refusals
 *   session.c    a connection's life: create, timers, close, free
 *   protocol.c   what each incoming message means (handshake, text, who,
 *                ping, leave, unknown types) and deferred decisions
 *   fanout.c     encoding once per codec, delivery, the slow-consumer
 *                policy, the end-of-iteration flush
 *   directory.c  users by name (seeded hash) and connections by id
 *   commands.c   the thread-safe actions, carried out on the loop
 *   stats.c      counters: plain on the loop, published once per
 *                iteration for stats_get()
 *   shutdown.c   graceful stop */
#ifndef TCPCHAT_SERVER_INT_H
#define TCPCHAT_SERVER_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "conn.h"
#include "internal.h"
#include "loop.h"
#include "net.h"
#include "runner.h"

#define MAX_CODECS 16
#define MAX_LISTENERS 16

enum sstate {
	S_HANDSHAKE, /* waiting for HELLO */
	S_JOINING,   /* HELLO seen, the application's answer is pending */
	S_JOINED,
	S_DRAINING, /* shutting down: flushing its last frames */
	S_DEAD
};

struct dlist {
	struct dlist *prev, *next;
};

#define CONTAINER(ptr, type, member)                                           \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void dl_init(struct dlist *h)
{
	h->prev = h->next = h;
}
static inline int dl_empty(const struct dlist *h)
{
	return h->next == h;
}
static inline void dl_del(struct dlist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}
static inline void dl_push(struct dlist *h, struct dlist *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

struct listener {
	struct loop_watcher w;
	tcpchat_server *srv;
	int fd;
	int codec_slot;
	const tcpchat_codec *codec;
	union net_addr addr;
	socklen_t addr_len;
};

/* A message held while the application decides on it. */
struct held_msg {
	tcpchat_msg m;
	char body[]; /* m.body points here */
};

struct sconn {
	struct conn c; /* first */
	tcpchat_server *srv;
	uint64_t id;
	struct dlist member; /* srv->pending, then srv->members */
	struct loop_timer timer;
	struct sconn *hnext; /* name hash chain */
	struct sconn *inext; /* id hash chain */
	struct sconn *fnext; /* flush list or dead list */
	struct sconn *cnext; /* srv->close_head, when doomed */
	int64_t since_ms;    /* accepted at */
	int64_t last_ms;     /* last input */
	uint64_t dropped, dropped_told;
	uint64_t peer_caps;    /* what its HELLO announced */
	struct held_msg *held; /* a deferred MESSAGE */
	int close_err;         /* why it is doomed */
	uint8_t state, in_flush, codec_slot, name_len, doomed, pinged;
	uint8_t paused; /* input waits for a decision */
	uint8_t named;  /* in the name directory */
	char name[TCPCHAT_NAME_MAX + 1];
	union net_addr peer;
	socklen_t peer_len;
};

/* Counters: plain on the loop thread, published with relaxed atomics
 * once per iteration. */
struct stat_set {
	uint64_t clients, users, accepted, in, out, bytes_in, bytes_out,
	        dropped, proto, refused;
};
typedef _Atomic uint64_t counter;
struct stat_pub {
	counter clients, users, accepted, in, out, bytes_in, bytes_out, dropped,
	        proto, refused;
};

struct tcpchat_server {
	struct loop loop;
	struct conn_shared sh;
	struct runner run;
	/* options */
	long long max_clients, max_frame, queue_frames, queue_bytes, policy;
	long long hs_timeout, idle_timeout, shutdown_timeout, log_level;
	long long backlog, trim_heap, batch_us;
	atomic_llong max_frame_pub; /* for the thread-safe calls */
	tcpchat_server_handler handler;
	void *userdata;
	/* listeners and codecs */
	struct listener *listeners[MAX_LISTENERS];
	int nlisteners;
	const tcpchat_codec *codecs[MAX_CODECS];
	int ncodecs;
	/* connections */
	struct dlist members, pending; /* joined users; not joined yet */
	struct sconn **buckets;        /* names */
	size_t nbuckets, nnamed;
	uint64_t hash_key[2];
	struct sconn **ids; /* connections by id */
	size_t nids_cap;
	struct sconn *flush_head, *dead_head;
	struct sconn *close_head; /* closes put off until fan-outs end */
	int fanning, reaping;
	uint64_t nconns, nusers;
	uint64_t next_conn_id, next_msg_id;
	int64_t wall_ms;
	int reserve_fd;
	struct loop_timer accept_timer; /* listening again after EMFILE */
	struct loop_timer trim_timer;
	struct loop_timer stop_timer;
	size_t freed_bytes;
	int inputs; /* connections that had input this round */
	/* output coalescing under load (lifecycle.c) */
	int64_t gap_us, flush_us, last_in_us;
	uint64_t in_seen;
	int busy;
	/* run state */
	int running, stopping, abort_stop;
	atomic_int stop_req;
	struct stat_set st;
	struct stat_pub pub;
};

/* lifecycle.c */
void srv__log(tcpchat_server *srv, int level, const char *fmt, ...)
        TC_PRINTF(3, 4);
int srv__emit(tcpchat_server *srv, tcpchat_server_event *ev);
void srv__conn_event(struct sconn *sc, tcpchat_server_event *ev, int type);
void srv__note_freed(tcpchat_server *srv, size_t bytes);

/* listen.c */
int srv__open_listeners(tcpchat_server *srv);
void srv__close_listeners(tcpchat_server *srv);
int srv__add_listener(tcpchat_server *srv, const char *addr,
                      const tcpchat_codec *codec);
int srv__listener_port(const tcpchat_server *srv, int index);
void srv__free_listeners(tcpchat_server *srv);
int srv__spare_fd(void);
void srv__on_accept_timer(struct loop_timer *t);

/* session.c */
struct sconn *srv__session_new(tcpchat_server *srv, struct listener *l, int fd,
                               const union net_addr *peer, socklen_t plen);
int srv__session_start(tcpchat_server *srv, struct sconn *sc);
void srv__touch(tcpchat_server *srv, struct sconn *sc);
void srv__arm_idle(tcpchat_server *srv, struct sconn *sc);
void srv__close(struct sconn *sc, int reason, int error, const char *why);
void srv__fail(struct sconn *sc, int reason, int err, const char *why);
void srv__free(tcpchat_server *srv, struct sconn *sc);
void srv__set_events(tcpchat_server *srv, struct sconn *sc, unsigned ev);
void srv__pause(tcpchat_server *srv, struct sconn *sc);
void srv__resume(tcpchat_server *srv, struct sconn *sc);

/* protocol.c */
int srv__on_msg(void *ctx, tcpchat_msg *m);
void srv__on_readable(tcpchat_server *srv, struct sconn *sc);
void srv__decide(tcpchat_server *srv, struct sconn *sc, int accept,
                 const char *reason);
tcpchat_msg srv__error_msg(const tcpchat_server *srv, const struct sconn *sc,
                           int err, const char *why, int closing);
void srv__send_error(tcpchat_server *srv, struct sconn *sc, int err,
                     const char *why, int closing);

/* fanout.c */
struct frame *srv__encode(tcpchat_server *srv, const tcpchat_codec *codec,
                          const tcpchat_msg *m);
void srv__want_flush(tcpchat_server *srv, struct sconn *sc);
void srv__deliver(tcpchat_server *srv, struct sconn *sc, struct frame *f);
void srv__send_one(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m);
void srv__fanout(tcpchat_server *srv, const tcpchat_msg *m,
                 const struct sconn *except);
void srv__do_flush(tcpchat_server *srv, struct sconn *sc);
void srv__flush_all(tcpchat_server *srv);

/* directory.c */
void srv__dir_init(tcpchat_server *srv);
void srv__dir_fini(tcpchat_server *srv);
struct sconn *srv__name_find(tcpchat_server *srv, const char *p, size_t n);
int srv__name_insert(tcpchat_server *srv, struct sconn *sc);
void srv__name_remove(tcpchat_server *srv, struct sconn *sc);
struct sconn *srv__id_find(tcpchat_server *srv, uint64_t id);
int srv__id_insert(tcpchat_server *srv, struct sconn *sc);
void srv__id_remove(tcpchat_server *srv, struct sconn *sc);

/* commands.c */
void srv__run_commands(tcpchat_server *srv);
void srv__free_commands(tcpchat_server *srv);

/* stats.c */
void srv__stats_publish(tcpchat_server *srv);

/* shutdown.c */
void srv__begin_shutdown(tcpchat_server *srv);
void srv__finish_shutdown(tcpchat_server *srv);
void srv__on_stop_timer(struct loop_timer *t);

#endif
