/* libtcpchat - the client's internal types.  Not installed.
 *   lifecycle.c  new/destroy, options, handler, run modes, thread-safe
 *                calls (send, who, stop), posting commands to the loop
 *   session.c    connect (every address in turn), handshake, receive,
 *                heartbeat, goodbye, the end of a connection
 *   rooms.c      protocol 2: the room calls (join, part, send to a room
 *                or a user, room list, topic), the client's view of the
 *                rooms it is in */
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
	C_DONE
};

/* What the loop must know of a posted command besides its frame. */
enum ccmd_kind {
	CC_PLAIN, /* any protocol */
	CC_V2,    /* protocol 2 only: not sent to a protocol-1 server */
	CC_JOIN   /* protocol 2 JOIN of room: a join request */
};

/* A frame posted by a thread-safe call, encoded on the caller's thread. */
struct ccmd {
	struct loop_cmd node; /* first */
	struct frame *f;
	int kind;                        /* enum ccmd_kind */
	char room[TCPCHAT_ROOM_MAX + 1]; /* CC_JOIN */
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
	tcpchat_client_handler handler;
	void *userdata;
	const tcpchat_codec *codec;
	char name[TCPCHAT_NAME_MAX + 1];
	size_t name_len;
	struct net_addrs addrs;
	int addr_next; /* the address to try after the current one */
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

/* session.c */
int cli__connect(tcpchat_client *cli, const char *addr, const char *name);
void cli__finish(tcpchat_client *cli, int err, int reason, const char *why);
void cli__begin_close(tcpchat_client *cli);
void cli__flush(tcpchat_client *cli);
void cli__arm_timer(tcpchat_client *cli);
void cli__publish_queue(tcpchat_client *cli);
int cli__push_frame(tcpchat_client *cli, struct frame *f);
void cli__on_timer(struct loop_timer *t);

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

#endif
