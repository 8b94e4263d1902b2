/* Helpers for the client suites: a client whose events are all recorded
 * (with owned copies of what they carry), waits on what was recorded, a
 * server with a fixed epoch, and a TCP proxy that a test can cut or make
 * deaf. */
#ifndef CLIENTUTIL_H
#define CLIENTUTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "testutil.h"

/* One recorded event; the fields of msg when it had one. */
struct cu_ev {
	int type, error, reason;
	uint32_t attempt, delay_ms;
	int has_msg;
	uint32_t mtype, code, flags;
	uint64_t id, seq, epoch, first, last, oldest;
	char sender[64], room[80], target[64], body[256], ref[80];
	char evroom[80]; /* ev->room */
	char text[256];  /* ev->text of DISCONNECTED, RECONNECTING, GAVE_UP */
};

struct cu_rec {
	pthread_mutex_t mu;
	struct cu_ev *v; /* under mu */
	size_t n, cap;
	/* the position of this room after each event (loop thread view),
	 * under mu: rc of tcpchat_client_room_position() */
	char watch[80];
	int watch_rc;
	uint64_t watch_epoch, watch_seq;
	char current[80]; /* current room after each event */
	tcpchat_client *cli;
};

/* What to look for: type 0 / NULL / 0 match anything. */
struct cu_want {
	int type;       /* TCPCHAT_CEV_* */
	uint32_t mtype; /* msg->type */
	uint32_t flags; /* all of these in msg->flags */
	const char *room, *sender, *body, *ref;
};

/* A client with the recording handler and a TU_TIMEOUT connect timeout;
 * watch: the room whose position is recorded (NULL: none). */
void cu_init(struct cu_rec *r, const char *watch);
void cu_fini(struct cu_rec *r);
/* Connects as name to 127.0.0.1:port, starts the client's thread and
 * waits for CONNECTED. */
void cu_start(struct cu_rec *r, int port, const char *name);
/* Stops the client and checks that join returns 0. */
void cu_stop(struct cu_rec *r);

int cu_count(struct cu_rec *r, const struct cu_want *w);
/* Waits until n events match; 1 if they did within TU_TIMEOUT. */
int cu_wait(struct cu_rec *r, const struct cu_want *w, int n);
/* The nth (from 0) matching event; fails the test when there is none. */
struct cu_ev cu_get(struct cu_rec *r, const struct cu_want *w, int nth);
/* Index of the nth matching event in the record, -1 when none. */
long cu_index(struct cu_rec *r, const struct cu_want *w, int nth);

/* A copy of the record (free it), its length in *n. */
struct cu_ev *cu_copy(struct cu_rec *r, size_t *n);
/* What was recorded after the last event: the watched room's position
 * (rc is what tcpchat_client_room_position() returned) and the current
 * room. */
struct cu_pos {
	int rc;
	uint64_t epoch, seq;
	char current[80];
};
struct cu_pos cu_watch(struct cu_rec *r);

/* Prints the record on stderr. */
void cu_dump(struct cu_rec *r);

/* Waits for a MESSAGE with a TEXT of body; returns it (the record is
 * printed when it does not come). */
struct cu_ev cu_wait_text(struct cu_rec *r, const char *body);
/* Waits for the ACK event of ref; returns it. */
struct cu_ev cu_wait_ack(struct cu_rec *r, const char *ref);
/* Joins room and waits for the confirmation. */
void cu_join(struct cu_rec *r, const char *name, const char *room);

/* A started server on 127.0.0.1 (binary codec) whose epoch is epoch;
 * history_msgs: texts kept per room (0: the default). */
tcpchat_server *cu_server(uint64_t epoch, long history_msgs, int *port);

/* A server from cu_server() and two recording clients connected to it
 * as "alice" (a, watching watch) and "bob" (b). */
struct cu_duo {
	tcpchat_server *srv;
	int port;
	struct cu_rec a, b;
};
void cu_duo_start(struct cu_duo *d, uint64_t epoch, long history_msgs,
                  const char *watch);
/* Stops and frees both clients and the server. */
void cu_duo_stop(struct cu_duo *d);

/* A listening TCP socket on 127.0.0.1, an ephemeral port in *port. */
int cu_listen(int *port);

/* A TCP proxy on 127.0.0.1 in its own thread, to 127.0.0.1:upstream. */
struct cu_proxy {
	int lfd, port, upstream, wake[2];
	pthread_t th;
	atomic_int deaf;    /* 1: what the server sends is dropped */
	atomic_int refuse;  /* 1: new connections are closed at once */
	atomic_int cut_req; /* bumped to close every connection */
	atomic_int cut_done, quit;
	atomic_int accepted; /* connections forwarded so far */
};

void cu_proxy_start(struct cu_proxy *p, int upstream);
/* Closes every connection through the proxy, and waits until it did. */
void cu_proxy_cut(struct cu_proxy *p);
void cu_proxy_stop(struct cu_proxy *p);

#endif
