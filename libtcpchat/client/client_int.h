/* libtcpchat - the client's internal types.  Not installed.
 *   lifecycle.c  new/destroy, options, handler, run modes, thread-safe
 *                calls (send, who, stop)
 *   session.c    connect (every address in turn), handshake, receive,
 *                heartbeat, goodbye, the end of a connection */
#ifndef TCPCHAT_CLIENT_INT_H
#define TCPCHAT_CLIENT_INT_H

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

/* A frame posted by send() or who(), encoded on the caller's thread. */
struct ccmd {
	struct loop_cmd node; /* first */
	struct frame *f;
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
};

/* lifecycle.c */
void cli__emit(tcpchat_client *cli, tcpchat_client_event *ev);
void cli__log(tcpchat_client *cli, int level, const char *fmt, ...)
        TC_PRINTF(3, 4);
void cli__take_commands(tcpchat_client *cli);

/* session.c */
int cli__connect(tcpchat_client *cli, const char *addr, const char *name);
void cli__finish(tcpchat_client *cli, int err, int reason, const char *why);
void cli__begin_close(tcpchat_client *cli);
void cli__flush(tcpchat_client *cli);
void cli__arm_timer(tcpchat_client *cli);
void cli__publish_queue(tcpchat_client *cli);
int cli__push_frame(tcpchat_client *cli, struct frame *f);
void cli__on_timer(struct loop_timer *t);

#endif
