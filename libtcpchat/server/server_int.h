/* libtcpchat - the server's internal types and the functions its files
 * share.  Not installed.
 *
 * Files, by concern:
 *   lifecycle.c  new/destroy, options, handler, run modes, the iteration
 *   listen.c     listeners, accept, EMFILE survival, refusals
 *   session.c    a connection's life: create, timers, close, free
 *   protocol.c   what each incoming message means (handshake, text, who,
 *                ping, leave, unknown types) and deferred decisions
 *   fanout.c     encoding once per codec and protocol version, delivery
 *                to a room, to everyone or to one, the slow-consumer
 *                policy, the end-of-iteration flush
 *   directory.c  users by name (seeded hash) and connections by id
 *   peers.c      per-address limits at accept (seeded hash of addresses)
 *   rooms.c      rooms by name (seeded hash), membership, topics, limits,
 *                and the loop-thread room queries
 *   membership.c joining and parting rooms (asked, deferred, forced),
 *                topics, and what the members are told
 *   presence.c   WHO, the room list, and the LEAVE of a user who goes
 *   private.c    private messages
 *   people.c     for people on a codec like line: the greeting, the
 *                answers to /help and to commands it does not know
 *   bans.c       rooms' ban lists, KICK requests from operators, and
 *                the ban API
 *   commands.c   the thread-safe actions, carried out on the loop
 *   ratelimit.c  each user's message and byte rate limits
 *   stats.c      counters: plain on the loop, published once per
 *                iteration for stats_get()
 *   shutdown.c   graceful stop */
#ifndef TCPCHAT_SERVER_INT_H
#define TCPCHAT_SERVER_INT_H

#include <pthread.h>
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
	int tls;       /* connections speak TLS (srv->tls) */
	int greet_bad; /* the codec refused the greeting */
	const tcpchat_codec *codec;
	struct frame *greet; /* encoded once, for every new connection */
	union net_addr addr;
	socklen_t addr_len;
};

/* A message held while the application decides on it (a TEXT or a
 * JOIN request), with copies of its strings. */
struct held_msg {
	tcpchat_msg m;
	char data[]; /* body, room and target point here */
};

struct room;

/* One user in one room: in the room's member list (join order) and in
 * the user's own list of rooms. */
struct member {
	struct dlist link;    /* room->members */
	struct member *unext; /* the user's next room */
	struct room *room;
	struct sconn *sc;
};

struct room {
	struct dlist link;    /* srv->rooms, creation order */
	struct room *hnext;   /* name hash chain */
	struct dlist members; /* struct member, join order */
	uint64_t nmembers;
	char *topic;      /* malloc'd, NULL when none */
	int64_t topic_ts; /* when it was set */
	uint16_t topic_len;
	uint8_t topic_by_len;
	char topic_by[TCPCHAT_NAME_MAX + 1]; /* who set it */
	uint64_t last_seq; /* the last sequence number given (roomlog.c) */
	/* its history (history.c): a ring of hcap (a power of two) */
	struct hist_msg **hist;
	uint32_t hcap, hhead, hcount;
	uint32_t pending; /* texts waiting for their commit (durable.c) */
	struct ban *bans; /* names banned from it, oldest first (bans.c) */
	uint32_t nbans;
	size_t hbytes;
	uint8_t name_len;
	uint8_t permanent; /* the default room stays when empty */
	/* in a cluster (cluster*.c): the users of other servers in it, and
	 * how it follows the bus */
	uint8_t cl_state;
	uint32_t nrmembers;
	struct dlist rmembers;      /* struct rmember */
	struct cl_stash *cl_stash;  /* records that came while catching up */
	struct cl_wait *cl_waiting; /* joins waiting for it to catch up */
	char name[TCPCHAT_ROOM_MAX + 1];
};

struct sconn {
	struct conn c; /* first */
	tcpchat_server *srv;
	uint64_t id;
	struct dlist member; /* srv->pending, then srv->members */
	struct loop_timer timer;
	struct sconn *hnext;   /* name hash chain */
	struct sconn *inext;   /* id hash chain */
	struct sconn *fnext;   /* flush list or dead list */
	struct sconn *cnext;   /* srv->close_head, when doomed */
	int64_t since_ms;      /* accepted at */
	int64_t last_ms;       /* last input */
	uint64_t dropped;      /* by the slow-consumer policy, in all */
	struct held_msg *held; /* a deferred MESSAGE or room JOIN */
	struct member home;    /* membership of the default room */
	struct member *rooms;  /* the user's rooms, newest first */
	struct room *cur;      /* where TEXT without room or target goes */
	uint32_t mark; /* fan-out generation that reached it (presence.c) */
	uint32_t drops_new; /* drops not reported yet (DROP event, log) */
	/* what it did, for the log line of its close */
	uint32_t in_msgs, out_frames;
	uint64_t in_bytes, out_bytes;
	/* rate limits (ratelimit.c): what each bucket owes, in us of
	 * refill, as of last_ms; when the current burst began, in ms since
	 * since_ms (| 1; 0: none) */
	uint32_t rate_dm, rate_db, rate_over;
	uint16_t nrooms;
	uint8_t peer_caps; /* what its HELLO announced (the known bits) */
	uint8_t state, in_flush, codec_slot, name_len, pinged;
	uint8_t doomed;      /* -error when it is to be closed (fanout.c) */
	uint8_t proto;       /* protocol version: 1 or 2 */
	unsigned paused : 1; /* input waits for a decision */
	unsigned named : 1;  /* in the name directory */
	unsigned addr_counted : 1; /* counted against its address (peers.c) */
	unsigned addr_hs : 1;      /* ... and in its handshake there */
	unsigned
	        cl_wait : 1; /* input waits for the cluster (a claim, a room) */
	unsigned claimed : 1; /* its name is claimed cluster-wide */
	char name[TCPCHAT_NAME_MAX + 1];
	union net_addr peer; /* IPv4 or IPv6: its length follows */
};
/* An idle connection's memory is mostly this struct: keep it small.  (Its
 * last 16 bytes pay for the counters above, which the DEBUG log line of a
 * close reports, 16 more for the rate limits' three words, and 8 for
 * the bytes a TLS transport holds.) */
_Static_assert(sizeof(struct sconn) <= 480, "struct sconn grew");

/* Counters: plain on the loop thread, published with relaxed atomics
 * once per iteration. */
struct stat_set {
	uint64_t clients, users, accepted, in, out, bytes_in, bytes_out,
	        dropped, proto, refused, rooms, privates, saved, unsaved,
	        refused_addr, limited, tls_failed;
	/* a cluster's (srv__cluster_count) */
	uint64_t cl_up, cl_servers, cl_users, bus_sent, bus_sent_bytes,
	        bus_recv, bus_recv_bytes, bus_losses, bus_held, bus_refused,
	        bus_gaps, bus_bad;
};
typedef _Atomic uint64_t counter;
struct stat_pub {
	counter clients, users, accepted, in, out, bytes_in, bytes_out, dropped,
	        proto, refused, rooms, privates, saved, unsaved, refused_addr,
	        limited, tls_failed;
	counter cl_up, cl_servers, cl_users, bus_sent, bus_sent_bytes, bus_recv,
	        bus_recv_bytes, bus_losses, bus_held, bus_refused, bus_gaps,
	        bus_bad;
};

struct tcpchat_server {
	struct loop loop;
	struct conn_shared sh;
	/* TLS listeners' configuration (tls.c), replaced from any thread */
	pthread_mutex_t tls_lock;
	struct tls_ctx *tls;
	struct runner run;
	/* options */
	long long max_clients, max_frame, queue_frames, queue_bytes, policy;
	long long hs_timeout, idle_timeout, shutdown_timeout, log_level;
	long long backlog, trim_heap, batch_us;
	long long user_rooms, max_rooms, announce_max;
	long long epoch; /* of the rooms' sequence numbers (roomlog.c) */
	long long history_msgs, history_bytes; /* per room (history.c) */
	long long ack_window, ack_max;         /* acks.c */
	long long retain_msgs, retain_age;     /* in the store (durable.c) */
	/* per-address limits (peers.c) */
	long long addr_conns, addr_rate, addr_burst, addr_handshakes;
	struct peer **pbuckets;
	size_t npbuckets, npeers;
	struct dlist
	        peers_idle;    /* entries without a connection, oldest first */
	int64_t peers_warn_ms; /* the last "too many addresses" line */
	long long rate_msgs, rate_burst, rate_bytes, rate_bytes_burst;
	long long rate_kick; /* s (ratelimit.c) */
	size_t hist_bytes;   /* in every room's history */
	/* acknowledgments remembered (acks.c) */
	struct ack_rec **abuckets;
	size_t nabuckets;
	uint64_t nacks;
	struct dlist acks_age;
	struct durable *durable;    /* the store and its writer, or NULL */
	struct cluster *cl;         /* the other servers and the bus, or NULL */
	atomic_llong max_frame_pub; /* for the thread-safe calls */
	tcpchat_server_handler handler;
	void *userdata;
	char *greeting; /* tcpchat_server_set_greeting(); NULL: the default */
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
	/* rooms */
	struct dlist rooms;     /* creation order */
	struct room **rbuckets; /* by name */
	size_t nrbuckets, nrooms;
	struct room *lobby; /* the default room, or NULL */
	uint32_t mark;      /* fan-out generation (presence.c) */
	struct sconn *flush_head, *dead_head;
	struct sconn *close_head; /* closes put off until fan-outs end */
	/* the connection being read, and what the read took so far */
	const struct sconn *reading;
	const struct conn_read_result *read_res;
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
	int ran; /* the loop has run (a store can no longer be opened) */
	atomic_int stop_req;
	struct stat_set st;
	struct stat_pub pub;
};

/* lifecycle.c */
/* Logs a line (a LOG event) when level is at most LOG_LEVEL; nothing is
 * formatted otherwise.  Never on a per-message path. */
void srv__log(tcpchat_server *srv, int level, const char *fmt, ...)
        TC_PRINTF(3, 4);
/* 1 when srv__log() at level would log: for the callers that must work
 * to make its arguments. */
static inline int srv__logs(const tcpchat_server *srv, int level)
{
	return level <= srv->log_level && srv->handler;
}
/* "conn 7" or "conn 7 (alice)" for the log lines of a connection. */
const char *srv__who(const struct sconn *sc, char *buf, size_t cap);
#define SRV_WHO_MAX (32 + TCPCHAT_NAME_MAX)
int srv__emit(tcpchat_server *srv, tcpchat_server_event *ev);
void srv__conn_event(struct sconn *sc, tcpchat_server_event *ev, int type);
void srv__note_freed(tcpchat_server *srv, size_t bytes);

/* listen.c */
int srv__open_listeners(tcpchat_server *srv);
void srv__close_listeners(tcpchat_server *srv);
int srv__add_listener(tcpchat_server *srv, const char *addr,
                      const tcpchat_codec *codec, int tls);
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
/* 1 when why, the text of a close for reason, says more than the
 * reason's own word: the others see it in the LEAVE, the log in the
 * close line. */
int srv__why_says_more(int reason, const char *why);
/* Closes sc after its transport failed with rc (TCPCHAT_ESYS: errno): a
 * reset peer is CLOSED, a TCP timeout (keepalive, unacknowledged output)
 * TIMEOUT, anything else ERROR. */
void srv__lost(struct sconn *sc, int rc);
/* TCP keepalive on sc's socket for a codec with TCPCHAT_CODEC_NO_PING
 * (its peers are never closed for silence), from IDLE_TIMEOUT.  at_accept:
 * nothing is done when IDLE_TIMEOUT is 0. */
void srv__keepalive(tcpchat_server *srv, struct sconn *sc, int at_accept);
void srv__free(tcpchat_server *srv, struct sconn *sc);
void srv__set_events(tcpchat_server *srv, struct sconn *sc, unsigned ev);
void srv__pause(tcpchat_server *srv, struct sconn *sc);
void srv__resume(tcpchat_server *srv, struct sconn *sc);

/* protocol.c */
int srv__on_msg(void *ctx, tcpchat_msg *m);
void srv__on_readable(tcpchat_server *srv, struct sconn *sc);
/* sc sent a frame its codec refused (rc: TCPCHAT_EPROTO or
 * TCPCHAT_EMSGSIZE, error: the codec's words): counted, logged, closed. */
void srv__bad_frame(tcpchat_server *srv, struct sconn *sc, int rc,
                    const char *error);
void srv__decide(tcpchat_server *srv, struct sconn *sc, int accept,
                 const char *reason);
tcpchat_msg srv__error_msg(const tcpchat_server *srv, const struct sconn *sc,
                           int err, const char *why, int closing);
void srv__send_error(tcpchat_server *srv, struct sconn *sc, int err,
                     const char *why, int closing);
/* A non-fatal ERROR answering the request req: to a protocol-2 peer it
 * names the room or the user that req named. */
void srv__req_error(tcpchat_server *srv, struct sconn *sc,
                    const tcpchat_msg *req, int err, const char *why);
int srv__hold(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m);

/* fanout.c */
struct frame *srv__encode(tcpchat_server *srv, const tcpchat_codec *codec,
                          const tcpchat_msg *m);
void srv__want_flush(tcpchat_server *srv, struct sconn *sc);
void srv__deliver(tcpchat_server *srv, struct sconn *sc, struct frame *f);
void srv__send_one(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m);
/* Queues the encoded ACK f outside the queue limits, as srv__send_one. */
void srv__deliver_control(tcpchat_server *srv, struct sconn *sc,
                          struct frame *f);
void srv__fanout(tcpchat_server *srv, const tcpchat_msg *m,
                 const struct sconn *except);
void srv__fanout_room(tcpchat_server *srv, struct room *r, const tcpchat_msg *m,
                      const struct sconn *except);
void srv__fanout_rooms_of(tcpchat_server *srv, struct sconn *sc,
                          const tcpchat_msg *m);
/* Once to every member of the rooms rooms[0..n), as srv__fanout_rooms_of
 * (no announce check: the caller chose the rooms). */
void srv__fanout_room_list(tcpchat_server *srv, struct room *const *rooms,
                           size_t n, const tcpchat_msg *m);
void srv__send_to(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m);
void srv__do_flush(tcpchat_server *srv, struct sconn *sc);
void srv__flush_all(tcpchat_server *srv);

/* protocol.c: the end of a login (the name is taken, the application
 * accepted), and its refusal. */
void srv__complete_join(tcpchat_server *srv, struct sconn *sc);
void srv__refuse_join(tcpchat_server *srv, struct sconn *sc, int err,
                      const tcpchat_str *name, const char *why);

/* directory.c */
void srv__dir_init(tcpchat_server *srv);
void srv__dir_fini(tcpchat_server *srv);
struct sconn *srv__name_find(tcpchat_server *srv, const char *p, size_t n);
int srv__name_insert(tcpchat_server *srv, struct sconn *sc);
void srv__name_remove(tcpchat_server *srv, struct sconn *sc);
struct sconn *srv__id_find(tcpchat_server *srv, uint64_t id);
int srv__id_insert(tcpchat_server *srv, struct sconn *sc);
void srv__id_remove(tcpchat_server *srv, struct sconn *sc);

/* peers.c */
struct peer;
void srv__peers_init(tcpchat_server *srv);
void srv__peers_fini(tcpchat_server *srv);
/* 1 when any per-address limit is on. */
int srv__peers_on(const tcpchat_server *srv);
/* Decides on a new connection from a: NULL to take it (*counted is then
 * 1 when it counts against its address, which srv__peer_gone undoes), or
 * the words of the limit that refuses it (counted in refused_addr and
 * logged at most once a second per address). */
const char *srv__peer_admit(tcpchat_server *srv, const union net_addr *a,
                            int *counted);
/* A counted connection from a finished its handshake. */
void srv__peer_handshake_done(tcpchat_server *srv, const union net_addr *a);
/* A counted connection from a is gone; in_hs: during its handshake. */
void srv__peer_gone(tcpchat_server *srv, const union net_addr *a, int in_hs);

/* rooms.c */
int srv__rooms_init(tcpchat_server *srv);
void srv__rooms_fini(tcpchat_server *srv);
struct room *srv__room_find(tcpchat_server *srv, const char *p, size_t n);
int srv__room_get(tcpchat_server *srv, const char *p, size_t n,
                  struct room **out);
struct member *srv__member_of(const struct sconn *sc, const struct room *r);
int srv__member_add(tcpchat_server *srv, struct sconn *sc, struct room *r);
void srv__member_remove(tcpchat_server *srv, struct member *mb);
void srv__members_clear(tcpchat_server *srv, struct sconn *sc);
void srv__room_gc(tcpchat_server *srv, struct room *r);
int srv__room_set_topic(struct room *r, const tcpchat_msg *t);
int srv__room_limit(tcpchat_server *srv, const struct sconn *sc, const char *p,
                    size_t n, const char **why);
void srv__room_stamp(const tcpchat_server *srv, const struct room *r,
                     tcpchat_msg *m);

/* roomlog.c */
/* Draws a new epoch at random. */
void srv__roomlog_epoch(tcpchat_server *srv);
/* Posts the stamped TEXT m (no ref) to room r from `from` (NULL: the
 * server): numbered, kept in the history, fanned out to the members but
 * `from`, and acknowledged to `from` when ref is not empty - at once, or
 * once committed when there is a store. */
void srv__room_post(tcpchat_server *srv, struct room *r, tcpchat_msg *m,
                    struct sconn *from, tcpchat_str ref);
/* Keeps the numbered text m in r's history and fans it out. */
void srv__room_publish(tcpchat_server *srv, struct room *r,
                       const tcpchat_msg *m, const struct sconn *except);
/* Gives m (a JOIN, the WELCOME) the room's last sequence number and the
 * epoch: where a member's view of the room starts. */
void srv__room_mark(const tcpchat_server *srv, const struct room *r,
                    tcpchat_msg *m);

/* history.c */
void srv__hist_add(tcpchat_server *srv, struct room *r, const tcpchat_msg *m);
void srv__hist_clear(tcpchat_server *srv, struct room *r);
/* The oldest seq r's history keeps (its last seq + 1 when none). */
uint64_t srv__hist_oldest(const struct room *r);
/* Sends sc r's texts after req->seq (req: a JOIN or HELLO with AFTER, its
 * epoch) and the HISTORY end: a resume. */
void srv__hist_resume(tcpchat_server *srv, struct sconn *sc, struct room *r,
                      const tcpchat_msg *req);
void srv__on_history(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m);

/* acks.c */
struct ack_rec;
/* 1 when ref is a valid reference: 1..64 bytes of UTF-8 text. */
int srv__ref_ok(const tcpchat_str *ref);
struct ack_rec *srv__ack_find(tcpchat_server *srv, const struct sconn *sc,
                              const tcpchat_str *ref);
struct ack_rec *srv__ack_new(tcpchat_server *srv, const struct sconn *sc,
                             const tcpchat_msg *m, int pending);
struct ack_rec *srv__ack_remember(tcpchat_server *srv, const char *name,
                                  size_t nlen, const tcpchat_msg *m,
                                  int pending);
void srv__ack_send(tcpchat_server *srv, struct sconn *sc,
                   const struct ack_rec *a, const tcpchat_msg *m);
void srv__ack_again(tcpchat_server *srv, struct sconn *sc,
                    const struct ack_rec *a);
void srv__ack_commit(tcpchat_server *srv, struct ack_rec *a,
                     const tcpchat_msg *m);
void srv__ack_forget(tcpchat_server *srv, struct ack_rec *a);
void srv__acks_expire(tcpchat_server *srv);
void srv__acks_fini(tcpchat_server *srv);

/* durable.c: the store, written off the loop thread */
struct durable;
void srv__durable_post(tcpchat_server *srv, struct room *r, tcpchat_msg *m,
                       struct sconn *from, tcpchat_str ref);
/* Waits for what is on its way to the disk, stops the writer and closes
 * the store (nothing without one). */
void srv__durable_close(tcpchat_server *srv);
/* A topic change, to be saved with the next batch. */
void srv__durable_topic(tcpchat_server *srv, struct room *r);
/* End of an iteration: the next batch to the writer, if it is free. */
void srv__durable_kick(tcpchat_server *srv);
/* Wake callback: settles a batch the writer is done with. */
void srv__durable_reap(tcpchat_server *srv);
/* Shutdown: commits and settles everything accepted so far. */
void srv__durable_drain(tcpchat_server *srv);
struct store;
int srv__durable_start(tcpchat_server *srv, struct store *s);
/* Uses the open store s (which it then owns, also on failure): loads its
 * rooms, numbers and recent history and starts the writer.  Before the
 * loop first runs.  Returns 0 or an error, with words in err. */
int srv__durable_open(tcpchat_server *srv, struct store *s, char *err,
                      size_t errlen);

/* membership.c */
int srv__on_join(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m);
int srv__on_part(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m);
int srv__on_topic(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m);
enum { JOIN_ASKED, JOIN_FORCED, JOIN_LOGIN };
/* resume: a JOIN with AFTER (its seq and epoch), or NULL. */
int srv__join_room(tcpchat_server *srv, struct sconn *sc, const char *room,
                   size_t len, int how, const tcpchat_msg *resume);
void srv__part_room(tcpchat_server *srv, struct member *mb, int reason,
                    const char *why, size_t why_len);
void srv__send_topic(tcpchat_server *srv, struct sconn *sc,
                     const struct room *r);

/* bans.c */
/* 1 when name[0..len) is banned from r. */
int srv__banned(const struct room *r, const char *name, size_t len);
/* Bans name[0..len) (a checked name) from r.  Returns 0 (also when it
 * is banned already), TCPCHAT_ELIMIT or TCPCHAT_ENOMEM. */
int srv__ban_add(struct room *r, const char *name, size_t len);
/* Lifts the ban of name[0..len) from r: 1 when there was one, else 0.
 * The room may go (srv__room_gc). */
int srv__ban_remove(tcpchat_server *srv, struct room *r, const char *name,
                    size_t len);
/* Frees r's ban list (the room goes). */
void srv__bans_free(struct room *r);
/* KICK from a member. */
int srv__on_kick(tcpchat_server *srv, struct sconn *sc, tcpchat_msg *m);
/* The application's answer to a deferred KICK h (its copy). */
void srv__kick_decided(tcpchat_server *srv, struct sconn *sc,
                       const tcpchat_msg *h, int accept, const char *reason);
/* The thread-safe ban commands, on the loop: bans name from room (made
 * if needed) and takes them out of it with reason[0..len), or (unban)
 * lifts the ban. */
void srv__ban_command(tcpchat_server *srv, int unban, const char *room,
                      const char *name, const char *reason, size_t len);
/* A JOIN of r by sc that a ban refuses: 1 after the ERROR, else 0. */
int srv__join_banned(tcpchat_server *srv, struct sconn *sc,
                     const struct room *r, const tcpchat_msg *req);

/* presence.c */
void srv__on_who(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m);
void srv__on_rooms(tcpchat_server *srv, struct sconn *sc);
void srv__announce_leave(tcpchat_server *srv, struct sconn *sc, int reason,
                         const char *why);

/* people.c */
/* Sends the greeting of a codec with TCPCHAT_CODEC_GREET to a new
 * connection. */
void srv__greet(tcpchat_server *srv, struct listener *l, struct sconn *sc);
/* Answers a TCPCHAT_MSG_UNKNOWN of the line codec (a "/WORD" line):
 * /help, or an ERROR that says what is wrong.  Returns 1 when it did,
 * 0 when m is not one (the caller answers as for any unknown type). */
int srv__people_answer(tcpchat_server *srv, struct sconn *sc,
                       const tcpchat_msg *m);

/* private.c */
int srv__private_target(tcpchat_server *srv, struct sconn *sc,
                        const tcpchat_msg *m, struct sconn **out);
void srv__private_deliver(tcpchat_server *srv, struct sconn *from,
                          struct sconn *to, const tcpchat_msg *m);

/* cluster*.c: a server in a cluster (srv->cl), all on the loop thread.
 * None of these is called without a cluster. */
struct bus;
struct bus_events;
/* tcpchat_server_join_cluster() with the bus that make() makes (NULL:
 * url names no bus this library knows). */
int srv__cluster_join(
        tcpchat_server *srv,
        int (*make)(struct bus **out, struct loop *loop, const char *url,
                    const char *node, uint64_t epoch, int timeout_ms,
                    const struct bus_events *ev, char *err, size_t errlen),
        const char *url, const char *node, char *err, size_t errlen);
void srv__cluster_fini(tcpchat_server *srv);
/* Copies the cluster's counters into srv->st. */
void srv__cluster_count(tcpchat_server *srv);
/* After each poll, outside callbacks. */
void srv__cluster_reap(tcpchat_server *srv);
/* 1 when a user of another server has the name p[0..n). */
int srv__cluster_name_taken(tcpchat_server *srv, const char *p, size_t n);
/* Claims sc's name cluster-wide: 0 when sc waits for the answer (input
 * paused; the login then completes or is refused), or an error (the
 * caller refuses the login). */
int srv__cluster_claim(tcpchat_server *srv, struct sconn *sc);
/* Presence, told to the other servers. */
void srv__cluster_online(tcpchat_server *srv, struct sconn *sc);
void srv__cluster_offline(tcpchat_server *srv, struct sconn *sc, int joined,
                          int reason, const char *why);
void srv__cluster_joined(tcpchat_server *srv, struct sconn *sc,
                         const struct room *r);
void srv__cluster_parted(tcpchat_server *srv, struct sconn *sc,
                         const struct room *r, int reason, const char *why,
                         size_t len);
void srv__cluster_topic(tcpchat_server *srv, const struct room *r);
/* A join of room[0..len) that must wait for the room to catch up with
 * the bus: 1 when sc waits (input paused; srv__join_room is called again
 * with how and resume when it may go on), 0 when the join goes on now. */
int srv__cluster_join_wait(tcpchat_server *srv, struct sconn *sc,
                           const char *room, size_t len, int how,
                           const tcpchat_msg *resume);
/* r has no members here any more: it is no longer followed. */
void srv__cluster_room_empty(tcpchat_server *srv, struct room *r);
/* A stamped room text, on its way through the bus (srv__room_post). */
void srv__cluster_post(tcpchat_server *srv, struct room *r, tcpchat_msg *m,
                       struct sconn *from, tcpchat_str ref);
/* A stamped private message to a user of another server (m->target):
 * sent, with its echo to from; or an error (TCPCHAT_ENOTFOUND,
 * TCPCHAT_EBUS, TCPCHAT_ENOMEM) for the caller to report. */
int srv__cluster_private(tcpchat_server *srv, struct sconn *from,
                         const tcpchat_msg *m);
/* The users of the other servers; their names (of room r, or all)
 * added with add() until it fails (-1 then). */
uint64_t srv__cluster_users(const tcpchat_server *srv);
int srv__cluster_names(tcpchat_server *srv, const struct room *r,
                       int (*add)(tcpchat_buf *names, const char *p, size_t n),
                       tcpchat_buf *names);

/* tls.c */
void srv__tls_init(tcpchat_server *srv);
void srv__tls_fini(tcpchat_server *srv);
/* Makes t a TLS transport over fd with the current configuration.
 * Returns 0, or an error (fd is then not taken). */
int srv__tls_transport(tcpchat_server *srv, struct transport *t, int fd);
/* Logs and closes sc after its TLS failed (TCPCHAT_ETLS). */
void srv__tls_failed(struct sconn *sc);

/* commands.c */
void srv__run_commands(tcpchat_server *srv);
void srv__free_commands(tcpchat_server *srv);

/* ratelimit.c */
/* Charges m, a message of fb frame bytes from the joined user sc, to its
 * buckets; call before srv__touch().  Returns 0 when m may be carried
 * out, or 1 when it is refused: sc is told once per burst, and closed
 * when the burst lasted RATE_KICK (check sc->state).  Loop thread. */
int srv__rate_charge(tcpchat_server *srv, struct sconn *sc,
                     const tcpchat_msg *m, size_t fb);

/* stats.c */
void srv__stats_publish(tcpchat_server *srv);

/* shutdown.c */
void srv__begin_shutdown(tcpchat_server *srv);
void srv__finish_shutdown(tcpchat_server *srv);
void srv__on_stop_timer(struct loop_timer *t);

#endif
