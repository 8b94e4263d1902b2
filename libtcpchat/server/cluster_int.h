/* libtcpchat - a server in a cluster: the state its cluster*.c files
 * share.  Not installed.
 *
 *   cluster.c        joining a cluster, the bus's events, records,
 *                    heartbeats and the table of the other servers
 *   cluster_users.c  the users of the other servers: names claimed
 *                    cluster-wide, presence, private messages
 *   cluster_rooms.c  rooms across servers: following, posting, one
 *                    order and one seq everywhere, catching up */
#ifndef TCPCHAT_CLUSTER_INT_H
#define TCPCHAT_CLUSTER_INT_H

#include "bus.h"
#include "server_int.h"

#define CL_HEARTBEAT_MS 1000        /* each server says it is alive */
#define CL_NODE_TIMEOUT_MS 3000     /* silent that long: gone, users leave */
#define CL_USER_ROOMS_MAX 1024      /* rooms of a user of another server */
#define CL_NODE_USERS_MAX (1 << 22) /* users one other server may have */

/* Another server of the cluster. */
struct rnode {
	struct rnode *next;
	int64_t seen;       /* loop time of its last record */
	struct dlist users; /* struct ruser, by link */
	uint64_t nusers;
	uint32_t gen; /* its current snapshot (see cluster_users.c) */
	uint8_t id_len;
	char id[BUS_NODE_MAX + 1];
};

/* A user of another server. */
struct ruser {
	struct ruser *hnext; /* name hash chain */
	struct dlist link;   /* node->users */
	struct rnode *node;
	struct rmember *rooms;
	uint32_t gen;
	uint16_t nrooms;
	uint8_t name_len;
	char name[TCPCHAT_NAME_MAX + 1];
};

/* A user of another server in a room of this one's table. */
struct rmember {
	struct dlist link; /* room->rmembers */
	struct rmember *unext;
	struct room *room;
	struct ruser *u;
	uint32_t gen;
};

/* A room text waiting for the bus (posted while it was down, or on its
 * way). */
struct outrec {
	struct outrec *next;
	uint64_t conn_id;    /* who posted it (0: the server) */
	struct ack_rec *ack; /* its acknowledgment, pending */
	size_t len;
	uint8_t rlen;
	char room[TCPCHAT_ROOM_MAX + 1];
	uint8_t data[]; /* the record */
};

/* A join waiting for its room to catch up with the bus. */
struct cl_wait {
	struct cl_wait *next;
	uint64_t conn_id;
	int how;
	int resume; /* with AFTER seq/epoch */
	uint64_t seq, epoch;
};

/* A room record that came while the room was catching up. */
struct cl_stash {
	struct cl_stash *next;
	uint64_t seq;
	size_t len;
	uint8_t data[];
};

/* A request to the bus and what its answer is for. */
struct cl_token {
	struct dlist link; /* cl->tokens: freed with the cluster */
	int kind;          /* CL_TOK_* */
	uint64_t conn_id;
	struct outrec *out; /* CL_TOK_POST */
	int catchup;        /* CL_TOK_FETCH: fan the texts out */
	uint8_t rlen;
	char room[TCPCHAT_ROOM_MAX + 1];
	char name[TCPCHAT_NAME_MAX + 1];
	int retried; /* CL_TOK_CLAIM: asked again over a stale holder */
};
enum { CL_TOK_POST = 1, CL_TOK_FETCH, CL_TOK_CLAIM };

struct cluster {
	struct bus *bus;
	struct loop_timer hb_timer;
	struct rnode *nodes;
	struct ruser **ubuckets;
	size_t nubuckets, nusers;
	tcpchat_buf enc;    /* a record being written */
	char *scratch;      /* for decoding records */
	uint64_t beats;     /* heartbeats sent */
	int64_t up_since;   /* loop time the bus came up (last) */
	int64_t down_since; /* loop time it went down, 0 while up */
	int64_t warn_ms;    /* the last "bad record" line */
	struct outrec *out_head, *out_tail; /* not posted yet, in order */
	size_t nout;
	size_t inflight;     /* posts asked and not answered */
	struct dlist tokens; /* requests the bus has not answered */
	uint64_t bad_records, refused_down, gaps;
	char name[BUS_NAME_MAX + 1];
};

/* cluster.c */
/* Writes m as a record, from this node (m->cursor is set): 0 with the
 * bytes in cl->enc, or an error. */
int cl__encode(tcpchat_server *srv, tcpchat_msg *m);
/* Reads a record: 0 with *m (its strings point into rec), or -1 after
 * counting and logging it as bad. */
int cl__decode(tcpchat_server *srv, const uint8_t *rec, size_t len,
               tcpchat_msg *m);
/* The other server of id p[0..n): NULL when unknown (or out of memory);
 * with created, made when unknown, and *created set to 1 then. */
struct rnode *cl__node(tcpchat_server *srv, const char *p, size_t n,
                       int *created);
/* 1 when id is this node's. */
int cl__is_me(const tcpchat_server *srv, const tcpchat_str *id);
/* A request's token, in cl->tokens until cl__token_free(). */
struct cl_token *cl__token(tcpchat_server *srv, int kind);
void cl__token_free(struct cl_token *t);

/* cluster_users.c */
void cl__users_fini(tcpchat_server *srv);
/* A presence record (JOIN, LEAVE, TOPIC, WHO, ROOMS) or a private one
 * (TEXT, ERROR) from node n. */
void cl__on_people(tcpchat_server *srv, struct rnode *n, const tcpchat_msg *m);
/* Node n is gone (why in words): its users leave. */
void cl__node_gone(tcpchat_server *srv, struct rnode *n, const char *why);
/* Every user and room of this server to node `to` (NULL: to all). */
void cl__snapshot(tcpchat_server *srv, const struct rnode *to);
void cl__claimed(tcpchat_server *srv, struct cl_token *t, int err,
                 const char *holder, size_t hlen);

/* cluster_rooms.c */
void cl__rooms_fini(tcpchat_server *srv);
void cl__on_room(tcpchat_server *srv, const char *room, size_t rlen,
                 uint64_t seq, const uint8_t *rec, size_t len);
void cl__posted(tcpchat_server *srv, struct cl_token *t, int err, uint64_t seq);
void cl__fetched(tcpchat_server *srv, struct cl_token *t, int err,
                 const struct bus_rec *recs, size_t n, uint64_t last);
/* The bus is back: rooms catch up, held texts go out. */
void cl__rooms_up(tcpchat_server *srv);
/* The bus is lost: the rooms are no longer in step. */
void cl__rooms_down(tcpchat_server *srv);

#endif
