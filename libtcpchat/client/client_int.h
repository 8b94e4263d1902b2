/* libtcpchat - the client's internal types.  Not installed.
 *   lifecycle.c  new/destroy, options, handler, run modes, thread-safe
 *                calls (send, who, stop), posting commands to the loop
 *   session.c    connect (every address in turn), handshake, receive,
 *                heartbeat, goodbye, the end of a connection
 *   rooms.c      protocol 2: the room calls (join, part, send to a room
 *                or a user, room list, topic), the client's view of the
 *                rooms it is in
 *   acks.c       texts with a ref: sending, the texts not yet
 *                acknowledged, ACK events
 *   history.c    room positions (epoch, last seq delivered), de-dup,
 *                history requests, resume on join
 *   reconnect.c  the reconnect policy: backoff, rejoin, resend */
#ifndef TCPCHAT_CLIENT_INT_H
#define TCPCHAT_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "conn.h"
#include "internal.h"
#include "loop.h"
#include "net.h"
#include "runner.h"

enum cstate {
	C_IDLE,
	C_CONNECTING,
	C_HANDSHAKE,
	C_CONNECTED,
	C_CLOSING,
	C_WAITING, /* connection lost: waiting to reconnect */
	C_DONE
};

/* What the loop must know of a posted command besides its frame. */
enum ccmd_kind {
	CC_PLAIN, /* any protocol */
	CC_V2,    /* protocol 2 only: not sent to a protocol-1 server */
	CC_JOIN,  /* protocol 2 JOIN of room: a join request */
	CC_HIST,  /* a HISTORY request: CAP_HISTORY only */
	CC_RESUME /* JOIN room AFTER seq (epoch): CAP_HISTORY only */
};

/* A frame posted by a thread-safe call, encoded on the caller's thread. */
struct ccmd {
	struct loop_cmd node; /* first */
	struct frame *f;
	int kind; /* enum ccmd_kind */
	int v2;   /* a text that needs protocol 2 (room or target) */
	/* CC_JOIN, CC_RESUME; a text's room */
	char room[TCPCHAT_ROOM_MAX + 1];
	char target[TCPCHAT_NAME_MAX + 1]; /* a text's addressee */
	/* a text with a ref; ref_auto: made by the library for a text sent
	 * without one (reconnect on), which needs no CAP_HISTORY */
	char ref[TCPCHAT_REF_MAX + 1];
	int ref_auto;
	uint64_t epoch, seq; /* CC_RESUME */
};

/* A text sent with a ref and not yet acknowledged (loop thread). */
struct cunacked {
	struct cunacked *next;
	struct frame *f; /* the TEXT as encoded, ref included */
	char ref[TCPCHAT_REF_MAX + 1];
	char room[TCPCHAT_ROOM_MAX + 1];
	char target[TCPCHAT_NAME_MAX + 1];
};

/* Where the client is in one room's history (loop thread). */
struct cpos {
	char room[TCPCHAT_ROOM_MAX + 1];
	uint64_t epoch, seq; /* the position, of that epoch: the last seq
	                        delivered or marked */
	uint64_t seen;       /* the last seq delivered as a text: what is
	                        not above it is a duplicate */
	int resuming;        /* a resume was asked: until its HISTORY end,
	                        marks do not move seq */
};

struct cpos_list {
	struct cpos *v;
	size_t n, cap;
};

/* A list of room names (loop thread). */
struct croom_list {
	char (*v)[TCPCHAT_ROOM_MAX + 1];
	size_t n, cap;
};

struct tcpchat_client {
	struct loop loop;
	struct conn_shared sh;
	struct conn c;
	struct runner run;
	struct loop_timer timer;
	long long connect_timeout, max_frame, queue_frames, queue_bytes;
	long long ping_interval, log_level, stop_timeout;
	long long reconnect, reconnect_min, reconnect_max, reconnect_tries;
	tcpchat_client_handler handler;
	void *userdata;
	const tcpchat_codec *codec;
	char name[TCPCHAT_NAME_MAX + 1];
	size_t name_len;
	char *credential; /* sent in HELLO's body; NULL: none */
	size_t credential_len;
	struct net_addrs addrs;
	int addr_next;       /* the address to try after the current one */
	struct tls_ctx *tls; /* NULL: plain TCP (tls.c) */
	char tls_host[256];  /* the host connected to, checked by TLS */
	int tls_fatal;       /* the last TLS failure was a certificate's */
	int state;
	int stop_seen, shut_wr;
	int last_error;     /* the server's closing ERROR, as a library code */
	uint32_t last_wire; /* and as it came */
	char last_reason[256];
	int result;
	int64_t deadline, last_rx_ms;
	int ping_sent;
	atomic_int stop_req, abort_req, alive, connected;
	/* the WELCOME's figures, for send() on other threads */
	atomic_ullong srv_caps, srv_max_frame, srv_queue_frames,
	        srv_queue_bytes;
	atomic_int have_info;
	/* copies of the options that the thread-safe calls read */
	atomic_llong max_frame_pub, queue_frames_pub, queue_bytes_pub;
	/* what send() has posted and the loop not yet taken, and what is
	 * queued on the connection: the queue limits cover both */
	atomic_size_t cmd_frames, cmd_bytes, q_frames, q_bytes;
	/* protocol 2: the WELCOME's protocol version (0 before it) */
	atomic_uint srv_protocol;
	/* the rooms the client is in, in the order it entered them, and
	 * the rooms of join requests not yet confirmed (loop thread) */
	struct croom_list joined, pending;
	/* guards default_room and current_room, which the thread-safe
	 * calls read; the loop thread writes them */
	pthread_mutex_t room_mu;
	char default_room[TCPCHAT_ROOM_MAX + 1];
	char current_room[TCPCHAT_ROOM_MAX + 1];
	/* refs: a random prefix per client and a counter (any thread) */
	char ref_prefix[17];
	atomic_ullong ref_count;
	atomic_int reconnect_pub;
	/* texts sent with a ref, not yet acknowledged, oldest first */
	struct cunacked *unacked, **unacked_tail;
	size_t unacked_n, unacked_bytes;
	/* the rooms' positions, kept across a reconnect */
	struct cpos_list pos;
	uint64_t srv_epoch; /* the connection's epoch, from its marks */
	/* reconnecting: from the loss of a connection until a WELCOME or
	 * giving up; what to rejoin then */
	int reconnecting;
	uint32_t attempt;
	int had_history;  /* the lost server announced CAP_HISTORY */
	int hello_resume; /* our HELLO asked for the default room's history */
	struct croom_list rejoin, rejoin_pending;
	char rejoin_current[TCPCHAT_ROOM_MAX + 1];
	uint64_t rng;
};

/* lifecycle.c */
void cli__emit(tcpchat_client *cli, tcpchat_client_event *ev);
void cli__log(tcpchat_client *cli, int level, const char *fmt, ...)
        TC_PRINTF(3, 4);
void cli__take_commands(tcpchat_client *cli);
/* Encodes m on the caller's thread and posts it to the loop (any
 * thread).  kind is an enum ccmd_kind; room the room of a CC_JOIN.
 * Returns 0, TCPCHAT_ECLOSED, TCPCHAT_ENOTSUP (not CC_PLAIN, and the
 * server said protocol 1), TCPCHAT_EMSGSIZE, TCPCHAT_EQUEUEFULL,
 * TCPCHAT_ENOMEM or the codec's error. */
int cli__post(tcpchat_client *cli, const tcpchat_msg *m, int kind,
              const char *room);

int cli__post_cmd(tcpchat_client *cli, const tcpchat_msg *m,
                  const struct ccmd *meta);
/* Posts a TEXT to room, to target or (both NULL) to the current room,
 * checked by the caller except for text.  With ref NULL and want_ack 0,
 * a ref is made only when RECONNECT is on; want_ack 1 always has one
 * (ref, or a made one).  The ref used goes to ref_out when not NULL.
 * Any thread. */
int cli__post_text(tcpchat_client *cli, const char *room, const char *target,
                   const char *text, size_t len, const char *ref, char *ref_out,
                   int want_ack);
/* A ccmd's kind needs CAP_HISTORY (its text has a ref it was given). */
int cli__cmd_needs_history(const struct ccmd *c);

/* session.c */
int cli__connect(tcpchat_client *cli, const char *addr, const char *name);
/* Starts a connection to the resolved addresses (from the first) and
 * queues the HELLO.  0, or an error code (nothing to connect to). */
int cli__dial(tcpchat_client *cli);
void cli__drop_connection(tcpchat_client *cli);
int cli__push_msg(tcpchat_client *cli, const tcpchat_msg *m);
void cli__finish(tcpchat_client *cli, int err, int reason, const char *why);
void cli__begin_close(tcpchat_client *cli);
void cli__flush(tcpchat_client *cli);
void cli__arm_timer(tcpchat_client *cli);
void cli__publish_queue(tcpchat_client *cli);
int cli__push_frame(tcpchat_client *cli, struct frame *f);
void cli__on_timer(struct loop_timer *t);

/* tls.c (loop thread) */
void cli__tls_free(tcpchat_client *cli);
/* Makes the transport of a new connection over fd: TLS when set.
 * Returns 0, or an error (fd is then not taken). */
int cli__transport(tcpchat_client *cli, int fd);
/* Ends the connection after its TLS failed (TCPCHAT_ETLS). */
void cli__tls_failed(tcpchat_client *cli);

/* rooms.c (loop thread) */
/* Forgets the view (no rooms, no current room); keep_default: 1 keeps
 * the default room of the last WELCOME. */
void cli__rooms_reset(tcpchat_client *cli, int keep_default);
/* The WELCOME: its protocol version and the default room the client is
 * now in. */
void cli__rooms_welcome(tcpchat_client *cli, const tcpchat_msg *m);
/* A join request for room is being sent. */
void cli__rooms_requested(tcpchat_client *cli, const char *room);
/* Updates the view from a received message, before the handler sees
 * it. */
void cli__rooms_on_msg(tcpchat_client *cli, const tcpchat_msg *m);
void cli__rooms_free(tcpchat_client *cli);
int cli__room_fits(tcpchat_str r);
int cli__is_self(const tcpchat_client *cli, tcpchat_str who);
long cli__list_find(const struct croom_list *l, const char *room, size_t n);
int cli__list_add(struct croom_list *l, const char *room, size_t n);
int cli__list_copy(struct croom_list *dst, const struct croom_list *src);
tcpchat_str cli__str(const char *s);
/* Posts a JOIN of room: kind CC_JOIN, or CC_RESUME after seq of epoch
 * (any thread). */
int cli__post_join(tcpchat_client *cli, const char *room, int kind,
                   uint64_t epoch, uint64_t seq);
/* Checks a room argument: 0, TCPCHAT_EINVAL (NULL) or TCPCHAT_EBADROOM. */
int cli__room_arg(const char *room);
/* Checks a text as tcpchat_client_send() does: 0, TCPCHAT_EINVAL or
 * TCPCHAT_EMSGSIZE. */
int cli__text_arg(tcpchat_client *cli, const char *text, size_t len);

/* acks.c (loop thread unless said) */
/* A taken text command: records it as not yet acknowledged when it has a
 * ref (after its frame was queued). */
void cli__acks_sent(tcpchat_client *cli, const struct ccmd *c);
/* A text command with a ref that is not sent: its ACK event says err. */
void cli__acks_refuse_cmd(tcpchat_client *cli, const struct ccmd *c, int err,
                          const char *why);
/* An ACK, or an ERROR with a ref: 1 when it was reported as an ACK
 * event (and is not a MESSAGE), else 0. */
int cli__acks_on_msg(tcpchat_client *cli, const tcpchat_msg *m);
/* Queues every unacknowledged text again, oldest first. */
void cli__acks_resend(tcpchat_client *cli);
/* Refuses every unacknowledged text with err (ACK events). */
void cli__acks_refuse_all(tcpchat_client *cli, int err, const char *why);
/* Frees the list without events. */
void cli__acks_free(tcpchat_client *cli);
/* Makes a ref for this client into out (any thread). */
void cli__acks_make_ref(tcpchat_client *cli, char out[TCPCHAT_REF_MAX + 1]);

/* history.c (loop thread) */
struct cpos *cli__pos_find(tcpchat_client *cli, const char *room, size_t n);
/* Sets the position of room (adding it): epoch, seq and resuming. */
struct cpos *cli__pos_set(tcpchat_client *cli, const char *room, uint64_t epoch,
                          uint64_t seq, int resuming);
void cli__pos_clear(tcpchat_client *cli);
/* The WELCOME: the default room's mark (unless it is being resumed). */
void cli__hist_welcome(tcpchat_client *cli, const tcpchat_msg *m);
/* A received message: updates the positions.  1 when it is not to be
 * delivered as a MESSAGE (a duplicate, or a resume's end: RESUMED). */
int cli__hist_on_msg(tcpchat_client *cli, const tcpchat_msg *m);
/* A taken CC_RESUME command. */
void cli__hist_resume_sent(tcpchat_client *cli, const struct ccmd *c);
void cli__hist_free(tcpchat_client *cli);

/* reconnect.c (loop thread) */
/* 1 when a connection that ends with err is to be reconnected. */
int cli__reconnect_wanted(tcpchat_client *cli, int err);
/* The connection is lost (or an attempt failed): waits to try again. */
void cli__reconnect_lost(tcpchat_client *cli, int err, int reason,
                         const char *why);
/* What the HELLO of an attempt asks for (flags, seq, epoch). */
void cli__reconnect_hello(tcpchat_client *cli, tcpchat_msg *hello);
/* After the WELCOME of a reconnect: RECONNECTED, rejoin, resend. */
void cli__reconnect_welcome(tcpchat_client *cli);
/* The cycle ends without a connection: GAVE_UP when it was one. */
void cli__reconnect_end(tcpchat_client *cli, int err, const char *why);

#endif
