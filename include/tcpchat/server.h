/* libtcpchat - the chat server.
 * SPDX-License-Identifier: MIT
 *
 * A tcpchat_server accepts TCP connections on one or more listeners, each
 * with its own codec, and joins everyone into one chat of rooms: every user
 * enters the default room ("#lobby") at login and may join others; a TEXT
 * to a room reaches every other member exactly once, in order, stamped with
 * the sender's name, an increasing id and the server's time; a private
 * message reaches one user.  Protocol-1 clients live in the default room
 * alone and see the chat exactly as before rooms (tcpchat-protocol(7)).
 *
 *     tcpchat_server *srv;
 *     if (tcpchat_server_new(&srv) == 0 &&
 *         tcpchat_server_listen(srv, "127.0.0.1:7070", NULL) == 0)
 *             tcpchat_server_run(srv);          // until tcpchat_server_stop()
 *     tcpchat_server_destroy(srv);
 *
 * Run modes (pick one per server object):
 *  1. blocking:    tcpchat_server_run() runs the loop in the calling thread
 *                  until tcpchat_server_stop();
 *  2. own thread:  tcpchat_server_start() runs it in a thread owned by the
 *                  library; tcpchat_server_stop() + tcpchat_server_join();
 *  3. host-driven: the host polls tcpchat_server_fd() for readability, with
 *                  a timeout of tcpchat_server_timeout_ms(), and calls
 *                  tcpchat_server_step() whenever it wakes.  Needs the epoll
 *                  backend (the default on Linux).
 *
 * Memory: an idle connection costs a few hundred bytes (no buffers).  The
 * library never trims the host's heap unless asked: with
 * TCPCHAT_SOPT_TRIM_HEAP set (and glibc), the server returns freed heap
 * pages to the system with malloc_trim(0) when its loop is quiet after a
 * burst.
 *
 * Threading: the thread that calls run/step (or the library's thread in
 * mode 2) is the loop thread.  Every callback runs on it.  Functions marked
 * "Thread-safe" may be called from any thread at any time after
 * tcpchat_server_new() and before tcpchat_server_destroy(), including from
 * callbacks; they post a command that the loop carries out, so success means
 * "queued", not "delivered".  Other functions may be called only while the
 * loop is not running, or from the loop thread in modes 1 and 3 (not from
 * inside a callback when the comment says so).
 */
#ifndef TCPCHAT_SERVER_H
#define TCPCHAT_SERVER_H

#include <sys/socket.h>

#include "codec.h"
#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tcpchat_server tcpchat_server;

/* ---- Options ---------------------------------------------------------- */

/* Slow-consumer policies: what happens to a message for a user whose
 * outgoing queue is full.  Every dropped message is counted. */
enum tcpchat_slow_policy {
	TCPCHAT_SLOW_DROP_NEWEST = 0, /* discard the new message (default) */
	TCPCHAT_SLOW_DROP_OLDEST = 1, /* discard the oldest unsent message */
	TCPCHAT_SLOW_DISCONNECT = 2   /* close the slow connection */
};

/* Integer options for tcpchat_server_set_option(); defaults in brackets. */
enum tcpchat_server_option {
	TCPCHAT_SOPT_MAX_CLIENTS = 1,  /* [10000] connections at once */
	TCPCHAT_SOPT_MAX_FRAME = 2,    /* [65536] bytes per incoming frame */
	TCPCHAT_SOPT_QUEUE_FRAMES = 3, /* [1024] queued frames per client */
	TCPCHAT_SOPT_QUEUE_BYTES = 4,  /* [1048576] queued bytes per client */
	TCPCHAT_SOPT_SLOW_POLICY = 5,  /* [DROP_NEWEST] tcpchat_slow_policy */
	TCPCHAT_SOPT_HANDSHAKE_TIMEOUT =
	        6,                     /* [10000] ms to send HELLO; 0: none */
	TCPCHAT_SOPT_IDLE_TIMEOUT = 7, /* [120000] ms of silence before the
	                                      connection is closed; a PING is
	                                      sent after half of it; 0: none.
	                                      Codecs with
	                                      TCPCHAT_CODEC_NO_PING (line):
	                                      never closed for silence; TCP
	                                      keepalive instead notices a
	                                      vanished peer within about this
	                                      time (SO_KEEPALIVE, KEEPIDLE
	                                      half of it, KEEPINTVL a tenth,
	                                      in s, at least 1; KEEPCNT 5;
	                                      TCP_USER_TIMEOUT this; where
	                                      the system has them), closed
	                                      with reason TIMEOUT; 0: no
	                                      keepalive */
	TCPCHAT_SOPT_SHUTDOWN_TIMEOUT =
	        8,                       /* [2000] ms to flush queues on stop */
	TCPCHAT_SOPT_LOG_LEVEL = 9,      /* [TCPCHAT_LOG_INFO] highest level
	                                      delivered as LOG events: WARN
	                                      what an operator should look
	                                      at, INFO also failed handshakes
	                                      and clients' protocol errors,
	                                      DEBUG also each connection's
	                                      accept, join, rooms, drops and
	                                      close (tcpchat_server(3)) */
	TCPCHAT_SOPT_BACKLOG = 10,       /* [511] listen(2) backlog */
	TCPCHAT_SOPT_TRIM_HEAP = 11,     /* [0] 1: call malloc_trim(0) (glibc)
	                                      when the loop is quiet after
	                                      connections freed memory; it
	                                      takes every arena lock of the
	                                      whole process */
	TCPCHAT_SOPT_BATCH_US = 12,      /* [2000] under load, the longest
	                                      output waits for more input so
	                                      that one write carries several
	                                      messages (only while another
	                                      message is expected in time, at
	                                      most a few flushes' worth; never
	                                      in host-driven mode); 0: never */
	TCPCHAT_SOPT_USER_ROOMS = 13,    /* [64] rooms one user may be in at
	                                      once (the default room counts) */
	TCPCHAT_SOPT_MAX_ROOMS = 14,     /* [10000] rooms on the server */
	TCPCHAT_SOPT_ANNOUNCE_MAX = 15,  /* [100] joins and parts of a room
	                                      with more members than this are
	                                      not announced to its members
	                                      (presence is then by WHO); the
	                                      user who joins or parts is
	                                      always told.  0: never announce */
	TCPCHAT_SOPT_EPOCH = 16,         /* [random] the epoch of the rooms'
	                                      sequence numbers, 1..INT64_MAX,
	                                      carried by every room TEXT with
	                                      its seq: it tells a client that
	                                      numbers from before are not of
	                                      the same history.  Drawn at
	                                      random when the server is made;
	                                      0 draws a new one.  Before the
	                                      loop first runs.  With a store
	                                      (tcpchat_server_open_store),
	                                      the store's epoch, and setting
	                                      it is TCPCHAT_ESTATE. */
	TCPCHAT_SOPT_HISTORY_MSGS = 17,  /* [1000] texts of each room kept
	                                    in memory for HISTORY requests
	                                    and resumes; 0: none */
	TCPCHAT_SOPT_HISTORY_BYTES = 18, /* [1048576] bytes (sender and
	                                    body) of each room's history */
	TCPCHAT_SOPT_ACK_WINDOW = 19,    /* [120000] ms a text's ACK is
	                                    remembered: a resend of its ref by
	                                    the same user within it is not
	                                    posted again; 0: no de-duplication */
	TCPCHAT_SOPT_ACK_MAX = 20,       /* [65536] ACKs remembered at most,
	                                    the oldest forgotten first */
	TCPCHAT_SOPT_RETAIN_MSGS = 21,   /* [0] with a store: texts of each
	                                    room kept on disk; 0: no limit */
	TCPCHAT_SOPT_RETAIN_AGE = 22,    /* [0] with a store: ms a text is
	                                    kept on disk; 0: no limit */
	/* 23..29 are kept for the per-connection rate limits.  Per-address
	 * limits, checked when a connection is accepted: an IPv4 address
	 * counts alone, an IPv6 one by its /64 prefix; a connection over a
	 * limit gets an ERROR TCPCHAT_EFULL that says which and is closed
	 * (stats: refused and refused_addr; an INFO line at most once a
	 * second per address).  Loopback is not exempt.  They may change
	 * at any time from the loop thread; a connection accepted while all
	 * three limits were 0 is never counted against its address. */
	TCPCHAT_SOPT_ADDR_CONNS = 30,      /* [64] connections open at once from
	                                 one address; 0: no limit */
	TCPCHAT_SOPT_ADDR_RATE = 31,       /* [20] new connections per second
	                                 from one address (a token bucket
	                                 of ADDR_BURST); 0: no limit */
	TCPCHAT_SOPT_ADDR_BURST = 32,      /* [40] new connections one address
	                                 may open at once, 1.. */
	TCPCHAT_SOPT_ADDR_HANDSHAKES = 33, /* [8] connections from one
	                                 address that have not finished
	                                 their handshake (JOIN decided),
	                                 so that a slow one cannot take up
	                                 MAX_CLIENTS; 0: no limit */
	/* Per-connection rate limits: two token buckets for each joined
	 * user, one counting messages and one counting frame bytes.  Every
	 * message counts but PONG, ERROR and LEAVE.  A message over either
	 * limit is not carried out; its sender gets one non-fatal ERROR
	 * TCPCHAT_WIRE_RATE per burst ("too fast: retry in 1.2 s"), with
	 * the room, target and ref of the message that began it (messages
	 * refused later in the same burst get no answer).  The burst ends
	 * when a message passes with both buckets at least half full
	 * again.  The defaults let a person type and paste freely. */
	TCPCHAT_SOPT_RATE_MSGS = 23,        /* [20] messages per second a
	                                    user's bucket refills; 0: no
	                                    message limit.  At most 1000000 */
	TCPCHAT_SOPT_RATE_BURST = 24,       /* [40] messages the bucket holds:
	                                    sent at once before the limit
	                                    applies.  1..1000000 */
	TCPCHAT_SOPT_RATE_BYTES = 25,       /* [65536] frame bytes per second;
	                                    0: no byte limit */
	TCPCHAT_SOPT_RATE_BYTES_BURST = 26, /* [262144] frame bytes the bucket
	                                    holds, at least 64 (a frame
	                                    larger than this passes only
	                                    with a full bucket) */
	TCPCHAT_SOPT_RATE_KICK = 27         /* [10] seconds a burst may last
	                                    before the user is disconnected
	                                    (ERROR TCPCHAT_WIRE_RATE
	                                    "flooding", reason ERROR);
	                                    0: never */
};

/* Sets an integer option.  Call before the loop first runs; MAX_FRAME,
 * QUEUE_*, SLOW_POLICY, the timeouts, LOG_LEVEL and TRIM_HEAP may also be
 * changed later from the loop thread (e.g. from a callback or between
 * steps), and so may BATCH_US, the ADDR_* and the RATE_* options.  They
 * apply from then on: IDLE_TIMEOUT at once to every user, ADDR_* to
 * connections accepted later, RATE_* from the next message on,
 * HANDSHAKE_TIMEOUT to connections accepted later (0 also stops the
 * pending handshake deadlines), MAX_FRAME to frames not yet started and
 * to the checks of the thread-safe calls.  Returns 0, or TCPCHAT_EINVAL
 * for an unknown option or a value out of range (the option then keeps
 * its value).  Loop thread only. */
TCPCHAT_API int tcpchat_server_set_option(tcpchat_server *srv, int option,
                                          long long value);

/* Sets the default room: every user enters it at login, and protocol-1
 * clients live in it alone.  room is a room name (tcpchat_room_check),
 * copied; NULL turns the default room off (then users start in no room and
 * protocol-1 clients are refused).  Default "#lobby".  Returns 0,
 * TCPCHAT_EBADROOM, TCPCHAT_ESTATE while the loop runs or connections are
 * open (a room every user is in cannot change under them), or
 * TCPCHAT_ENOMEM.  Call before the loop runs.  Loop thread only. */
TCPCHAT_API int tcpchat_server_set_default_room(tcpchat_server *srv,
                                                const char *room);

/* The longest greeting tcpchat_server_set_greeting() takes, in bytes. */
#define TCPCHAT_GREETING_MAX 256

/* Sets the greeting that listeners whose codec greets its peers
 * (TCPCHAT_CODEC_GREET: the line codec) send every new connection before
 * anything else, so that a person at a terminal knows what to type: for
 * the line codec the line "=== " and text.  text is copied; it must be
 * at most TCPCHAT_GREETING_MAX bytes of UTF-8 without control characters
 * (TAB aside) and start with a word that ends in ':' (e.g. "tcpchat: log
 * in with NAME PASSWORD"), which is how clients tell it from the chat.
 * NULL restores the default, "tcpchat: type your name (1-32 bytes, no
 * spaces)".  It applies to connections accepted from then on.  Returns
 * 0, TCPCHAT_EINVAL (srv NULL, or text not such a greeting) or
 * TCPCHAT_ENOMEM; on an error the greeting does not change.  Loop thread
 * only (before the loop runs, or from a callback or between steps). */
TCPCHAT_API int tcpchat_server_set_greeting(tcpchat_server *srv,
                                            const char *text);

/* tcpchat_server_open_store() flags. */
#define TCPCHAT_STORE_CREATE 0x1 /* create the file when it is missing */
#define TCPCHAT_STORE_FSYNC                                                    \
	0x2 /* each commit waits for the disk (survives
                                    a power loss); without it a commit
                                    survives a crash of the process */

/* Keeps the rooms' texts, numbers and topics in the SQLite file at path
 * (a build with the `sqlite` feature), so that they survive a crash and a
 * restart.  Loads what the file holds first: the rooms, their last
 * numbers, topics and latest HISTORY_MSGS texts, and the references of
 * the texts of the last ACK_WINDOW ms (a client resending one after a
 * restart gets its ACK, not a second post); the epoch becomes the file's
 * own.  Set HISTORY_MSGS, ACK_WINDOW, RETAIN_MSGS and RETAIN_AGE before.
 *
 * From then on a room text is written by a thread of the server's own,
 * in batches (everything accepted while the previous commit ran goes in
 * one transaction), never on the loop thread; it is fanned out, kept in
 * the history and acknowledged once committed.  A text the disk refuses
 * is posted to nobody: its sender gets an ERROR (with its ref), it is
 * counted in the stats' `unsaved`, logged at ERROR, and the chat goes on.
 * The file stays locked until tcpchat_server_destroy(), which commits
 * what was accepted before it closes it.
 *
 * Call once, before the loop first runs.  Returns 0, or (err, when not
 * NULL, then holds errlen bytes at most of a NUL-terminated sentence such
 * as "cannot open /x/y.db: unable to open database file"):
 *   TCPCHAT_ENOTFOUND  the file is missing and TCPCHAT_STORE_CREATE was
 *                      not given;
 *   TCPCHAT_ESYS       it cannot be opened, created or written;
 *   TCPCHAT_ESTATE     another process (or server) has it open, or a
 *                      store is open already, or the loop runs;
 *   TCPCHAT_EPROTO     it is not a tcpchat store, or is corrupt;
 *   TCPCHAT_EVERSION   it was written by a newer libtcpchat;
 *   TCPCHAT_ENOTSUP    the library was built without SQLite;
 *   TCPCHAT_EINVAL, TCPCHAT_ENOMEM.
 * Loop thread only. */
TCPCHAT_API int tcpchat_server_open_store(tcpchat_server *srv, const char *path,
                                          int flags, char *err, size_t errlen);

/* Reads an integer option into *value.  Returns 0 or TCPCHAT_EINVAL.
 * Loop thread only. */
/* Room texts a server in a cluster holds while its bus is down, at most:
 * the next one is refused with an ERROR (TCPCHAT_EBUS). */
#define TCPCHAT_CLUSTER_HELD_MAX 10000

/* Makes this server one of a cluster: several servers, on any machines,
 * that are one chat through an engine they all reach, Redis (url
 * "redis://HOST:PORT", a build with the `redis` feature) or NATS with
 * JetStream ("nats://HOST:PORT", `nats` feature; nats-server -js).  node
 * names this server in logs and to the others (1-32 letters, digits,
 * '-', '_', '.'); a random suffix makes each start a new node.
 *
 * Connects at once (waiting up to 5 s) and takes the cluster's epoch
 * from the engine (or gives it this server's, the first time).  Then:
 *   - a user name is unique across the cluster (claimed in the engine
 *     when the user is accepted, before the WELCOME);
 *   - a room spans the servers: the engine numbers its texts, so every
 *     member everywhere sees one order and one seq; each text crosses
 *     the bus once per server that has members in the room, and is kept
 *     in the engine's history (HISTORY and resumes work on any server);
 *     the sender's ACK means the engine has it;
 *   - WHO, the room list, room members and private messages are
 *     cluster-wide; joins, parts and topics are told across servers;
 *   - a server that dies or is cut off from the bus: its users leave the
 *     others' presence within 4 s, with reason TCPCHAT_REASON_LOST;
 *   - the bus lost: users on the same server keep chatting; room texts
 *     are shown here at once, unnumbered, and posted when the bus is back
 *     (at most TCPCHAT_CLUSTER_HELD_MAX; beyond, refused with an ERROR);
 *     texts of other servers are caught up from the history, late but
 *     in order; new logins are refused (TCPCHAT_EBUS) until it is back;
 *     the bus reconnects by itself with backoff and jitter; all of it is
 *     logged and counted in the stats' cluster_* and bus_* fields.
 * Not guaranteed: a text in flight when the bus is lost may be posted
 * twice (same id and sender, two seqs); ACKs are remembered per server
 * (a resend to another server posts again); bans, kicks and
 * tcpchat_server_broadcast() stay on this server; history is the
 * engine's (10000 texts per room at most), never a store's (a server
 * with tcpchat_server_open_store() cannot join).
 *
 * Call once, before the loop first runs.  Returns 0, or (err, when not
 * NULL, then holds errlen bytes at most of a NUL-terminated sentence):
 *   TCPCHAT_EBUS     the engine cannot be reached, or refused;
 *   TCPCHAT_EADDR    url is not one of the forms above;
 *   TCPCHAT_ENOTSUP  the library was built without that engine;
 *   TCPCHAT_ESTATE   in a cluster already, a store is open, or the loop
 *                    ran;
 *   TCPCHAT_EINVAL   a bad node name; TCPCHAT_ENOMEM.
 * Loop thread only (before the loop runs, the thread that made it). */
TCPCHAT_API int tcpchat_server_join_cluster(tcpchat_server *srv,
                                            const char *url, const char *node,
                                            char *err, size_t errlen);

TCPCHAT_API int tcpchat_server_get_option(const tcpchat_server *srv, int option,
                                          long long *value);

/* ---- Events ----------------------------------------------------------- */

/* What a handler returns for CONNECT, JOIN, MESSAGE, ROOM_JOIN, TOPIC
 * and ROOM_KICK.  Any other non-zero value refuses too. */
enum tcpchat_verdict {
	TCPCHAT_ACCEPT = 0,
	TCPCHAT_REFUSE = 1,
	/* JOIN, MESSAGE, ROOM_JOIN and ROOM_KICK only (it refuses a
	 * TOPIC): decide
	 * later with tcpchat_server_accept()
	 * or tcpchat_server_refuse(), from any thread, giving ev->conn_id.
	 * Meanwhile the connection's input waits (in order, with TCP
	 * backpressure); a deferred JOIN keeps its name reserved and its
	 * handshake deadline. */
	TCPCHAT_DEFER = 0x100
};

enum tcpchat_server_event_type {
	/* A TCP connection arrived from ev->peer.  Return non-zero to refuse
	 * it (it is closed at once, nothing is sent). */
	TCPCHAT_SEV_CONNECT = 1,
	/* ev->name asks to join, from ev->peer, with ev->credential (empty
	 * when the client sent none: accepting it then is the
	 * application's choice).  Return TCPCHAT_ACCEPT, TCPCHAT_DEFER or
	 * non-zero to refuse; a refused client gets an ERROR with
	 * ev->refuse_reason and is closed.  A deferred JOIN (say, to check
	 * a password on another thread) still ends at the handshake
	 * timeout if no answer comes in time.  refuse_reason is read after the
	 * handler returns, so it must not point into the handler's stack:
	 * use a string literal or memory that outlives the call (NULL: a
	 * default text). */
	TCPCHAT_SEV_JOIN = 2,
	/* ev->name sent ev->msg (a TEXT, already stamped; msg->room is the
	 * room it goes to, or msg->target the user a private message goes
	 * to: either may be vetoed).  Return
	 * TCPCHAT_ACCEPT, TCPCHAT_DEFER, or non-zero to veto it: nobody
	 * receives it and the sender gets an ERROR (TCPCHAT_EREFUSED,
	 * ev->refuse_reason, same lifetime rule) but stays connected.  A
	 * deferred message is copied, and stamped again (id, time) when it
	 * is accepted, so that ids keep increasing.  A room text gets its
	 * seq and epoch once accepted: here they are 0. */
	TCPCHAT_SEV_MESSAGE = 3,
	/* ev->name has left, for ev->reason (enum tcpchat_reason); ev->error
	 * holds the error code when there is one.  Only for joined users. */
	TCPCHAT_SEV_LEAVE = 4,
	/* Messages for ev->name were dropped by the slow-consumer policy:
	 * ev->dropped is the total for that connection so far.  Sent once
	 * per loop iteration per connection at most. */
	TCPCHAT_SEV_DROP = 5,
	/* A log line: ev->level, ev->text (NUL-terminated). */
	TCPCHAT_SEV_LOG = 6,
	/* A connection that never joined was closed (refused, timed out,
	 * bad handshake, ...): ev->reason, ev->error, ev->peer. */
	TCPCHAT_SEV_DISCONNECT = 7,
	/* ev->name asks to join ev->room (which may not exist yet).  Return
	 * TCPCHAT_ACCEPT, TCPCHAT_DEFER (answer with tcpchat_server_accept()
	 * or _refuse(); the request is copied and the user's input waits),
	 * or non-zero to refuse: the user gets a non-fatal ERROR
	 * (TCPCHAT_EREFUSED, ev->refuse_reason, same lifetime rule as JOIN).
	 * Not raised for the default room at login (that is the JOIN event)
	 * nor for tcpchat_server_room_join(). */
	TCPCHAT_SEV_ROOM_JOIN = 8,
	/* ev->name has joined ev->room (after any ROOM_JOIN decision, also
	 * for the default room at login and forced joins).  Return 0. */
	TCPCHAT_SEV_ROOM_JOINED = 9,
	/* ev->name has left ev->room while staying connected: ev->reason is
	 * TCPCHAT_REASON_PART (its own choice) or TCPCHAT_REASON_KICKED
	 * (tcpchat_server_room_part()); ev->text the reason, if any.  A user
	 * who disconnects gets one LEAVE event, no ROOM_PART.  Return 0. */
	TCPCHAT_SEV_ROOM_PART = 10,
	/* ev->name sets the topic of ev->room to ev->msg->body (empty:
	 * clear).  Return TCPCHAT_ACCEPT, or non-zero to refuse (non-fatal
	 * ERROR TCPCHAT_EREFUSED with ev->refuse_reason).  No DEFER. */
	TCPCHAT_SEV_TOPIC = 11,
	/* ev->name, a member of ev->room, asks to take ev->msg->target out
	 * of it (a KICK: ev->msg->body the reason, ev->msg->flags 0,
	 * TCPCHAT_MSGF_BAN or TCPCHAT_MSGF_UNBAN).  Secure by default: the
	 * kick is carried out only when the handler returns TCPCHAT_ACCEPT
	 * with ev->allow set to 1, or TCPCHAT_DEFER and then
	 * tcpchat_server_accept() (ev->conn_id; the request is copied and
	 * the user's input waits).  Without a handler, or when it returns
	 * 0 and leaves ev->allow 0 (what a handler that does not know this
	 * event does), or returns non-zero, the asker gets a non-fatal
	 * ERROR TCPCHAT_EREFUSED (ev->refuse_reason, same lifetime rule as
	 * JOIN; default "not an operator of #room"). */
	TCPCHAT_SEV_ROOM_KICK = 12
};

/* Passed by pointer to the handler.  New fields are only ever added at
 * the end, so a handler compiled against an older header keeps working.
 * Everything it points to is valid only until the handler returns. */
typedef struct tcpchat_server_event {
	int type;                    /* enum tcpchat_server_event_type */
	uint64_t conn_id;            /* unique per connection, never 0 */
	const struct sockaddr *peer; /* peer address */
	socklen_t peer_len;
	tcpchat_str name;          /* the user's name (JOIN..DROP) */
	const tcpchat_msg *msg;    /* MESSAGE: the stamped message */
	int reason;                /* LEAVE/DISCONNECT: enum tcpchat_reason */
	int error;                 /* LEAVE/DISCONNECT: TCPCHAT_E* or 0 */
	int level;                 /* LOG: enum tcpchat_log_level */
	const char *text;          /* LOG: the line; LEAVE: reason in words */
	uint64_t dropped;          /* DROP: messages dropped so far */
	const char *refuse_reason; /* out (JOIN, MESSAGE, ROOM_JOIN,
	                               TOPIC, ROOM_KICK): why (a refused
	                               CONNECT is
	                               closed without a word) */
	const char *codec;         /* codec name of the connection */
	/* ---- since protocol 2 ---- */
	tcpchat_str room; /* ROOM_* (ROOM_KICK too), TOPIC: the room */
	int protocol;     /* JOIN and later: the protocol version
	                               the user speaks (1 or 2) */
	/* ---- since authentication ---- */
	/* JOIN: the credential the client sent in its HELLO's body (a
	 * password; empty when none).  Already checked: at most
	 * TCPCHAT_CREDENTIAL_MAX bytes of UTF-8 without control characters.
	 * Valid only until the handler returns: a handler that defers
	 * copies it.  Never log it. */
	tcpchat_str credential;
	/* JOIN: the subject of the client's verified TLS certificate, as
	 * RFC 2253 text ("CN=alice,O=Example"); NULL on a plain TCP
	 * listener or when the client sent no certificate.  Valid only
	 * until the handler returns. */
	const char *tls_subject;
	/* ---- since room operators ---- */
	/* ROOM_KICK, out: 1 with TCPCHAT_ACCEPT lets the kick happen (0, as
	 * every event starts, refuses it). */
	int allow;
} tcpchat_server_event;

/* The event handler.  Runs on the loop thread.  It may call the server's
 * thread-safe functions and tcpchat_server_stats_get(); it must not call
 * tcpchat_server_run/start/step/join (they return TCPCHAT_ERECURSIVE)
 * nor tcpchat_server_destroy().  Its
 * return value matters only for CONNECT, JOIN, MESSAGE, ROOM_JOIN, TOPIC
 * and ROOM_KICK (non-zero: refuse); return 0 otherwise. */
typedef int (*tcpchat_server_handler)(tcpchat_server *srv,
                                      tcpchat_server_event *ev, void *userdata);

/* Installs the event handler (NULL removes it).  Loop thread only; best
 * set before the loop runs. */
TCPCHAT_API void tcpchat_server_set_handler(tcpchat_server *srv,
                                            tcpchat_server_handler fn,
                                            void *userdata);

/* ---- Lifecycle -------------------------------------------------------- */

/* Creates a server with default options and no listener.  On success
 * stores it in *out and returns 0; otherwise returns TCPCHAT_ENOMEM or
 * TCPCHAT_ESYS (errno set) and stores NULL.  Any thread. */
TCPCHAT_API int tcpchat_server_new(tcpchat_server **out);

/* Stops the server if it is running, without waiting for queues to
 * drain, joins the library's thread if there is one, closes every socket
 * and frees everything.  In own-thread mode the loop still tells the
 * clients (ERROR TCPCHAT_ESHUTDOWN, one write attempt) and delivers LEAVE
 * events before the thread ends; in the other modes no event is delivered.
 * Accepts NULL.  Call from the thread that created the server or ran it,
 * never from a callback. */
TCPCHAT_API void tcpchat_server_destroy(tcpchat_server *srv);

/* Opens a listener on addr: "host:port", "[v6addr]:port" or ":port"
 * (all IPv4 addresses); host may be a name; port 0 picks a free port.
 * codec NULL means the binary codec; a custom codec must outlive the
 * server.  Every listener joins the same chat.  Returns 0, TCPCHAT_EADDR,
 * TCPCHAT_EINVAL, TCPCHAT_ENOMEM or TCPCHAT_ESYS (errno set, e.g.
 * EADDRINUSE).  Loop thread only. */
TCPCHAT_API int tcpchat_server_listen(tcpchat_server *srv, const char *addr,
                                      const tcpchat_codec *codec);

/* Loads the TLS certificate, key and (optionally) the CA file of cfg for
 * the TLS listeners (tcpchat_server_listen_tls).  The files are read
 * now, on the calling thread; what they hold applies to connections
 * accepted from then on, while open connections keep theirs.  Call it
 * again to replace them (say, on SIGHUP): on any error nothing changes.
 * Returns 0, or (err, when not NULL, then holds errlen bytes at most of
 * a NUL-terminated sentence such as "cannot load key /x/k.pem: no such
 * file"):
 *   TCPCHAT_ETLS     a file is missing, unreadable or not PEM, or the key
 *                    does not match the certificate;
 *   TCPCHAT_ENOTSUP  the library was built without TLS;
 *   TCPCHAT_EINVAL   cfg or cfg->cert_file is NULL, or flags are unknown;
 *   TCPCHAT_ENOMEM.
 * Thread-safe. */
TCPCHAT_API int tcpchat_server_set_tls(tcpchat_server *srv,
                                       const tcpchat_tls_config *cfg, char *err,
                                       size_t errlen);

/* As tcpchat_server_listen(), but every connection accepted there speaks
 * TLS (the server's handshake first, then codec's bytes inside it).  A
 * client that is not speaking TLS gets one line of plain text saying the
 * port needs TLS, and is closed.  The handshake counts toward the
 * handshake timeout.  Returns as tcpchat_server_listen(), or
 * TCPCHAT_ESTATE before tcpchat_server_set_tls() succeeded, or
 * TCPCHAT_ENOTSUP without TLS.  Loop thread only. */
TCPCHAT_API int tcpchat_server_listen_tls(tcpchat_server *srv, const char *addr,
                                          const tcpchat_codec *codec);

/* Returns the local port of the index-th listener (in the order they
 * were added), or a negative TCPCHAT_E* code.  Useful after port 0.
 * Loop thread only. */
TCPCHAT_API int tcpchat_server_port(const tcpchat_server *srv, int index);

/* Blocking mode: runs the loop until tcpchat_server_stop(), then shuts
 * down gracefully (see tcpchat_server_stop) and returns 0, or a negative
 * code on a fatal error.  TCPCHAT_ESTATE if it is already running.  The
 * server may be run again afterwards (it listens again). */
TCPCHAT_API int tcpchat_server_run(tcpchat_server *srv);

/* Own-thread mode: starts a thread that runs the loop.  Returns 0,
 * TCPCHAT_ESTATE if already running, or TCPCHAT_ESYS. */
TCPCHAT_API int tcpchat_server_start(tcpchat_server *srv);

/* Waits for the thread started by tcpchat_server_start() to finish (after
 * tcpchat_server_stop()).  Returns what the loop returned, or
 * TCPCHAT_ESTATE if no thread was started.  Not from a callback. */
TCPCHAT_API int tcpchat_server_join(tcpchat_server *srv);

/* Asks the loop to shut down gracefully: stop accepting, send every
 * client an ERROR (TCPCHAT_ESHUTDOWN, "server shutting down"), flush
 * queues for up to SHUTDOWN_TIMEOUT ms, close everything (LEAVE events
 * with reason SHUTDOWN) and leave run()/the thread, or make step()
 * return 1.  Returns 0.  Thread-safe and async-signal-safe. */
TCPCHAT_API int tcpchat_server_stop(tcpchat_server *srv);

/* Host-driven mode: a file descriptor that becomes readable when
 * tcpchat_server_step() has work.  Stable for the server's life.
 * Returns the fd, or TCPCHAT_ENOTSUP with the poll(2) backend. */
TCPCHAT_API int tcpchat_server_fd(const tcpchat_server *srv);

/* Host-driven mode: milliseconds until tcpchat_server_step() must be
 * called even if the fd is not readable; -1 means no timer is due.
 * Loop thread only. */
TCPCHAT_API int tcpchat_server_timeout_ms(tcpchat_server *srv);

/* Host-driven mode: does all ready work without blocking.  The first call
 * starts the listeners.  Returns 0 while running, 1 once the server has
 * stopped after tcpchat_server_stop() (a later call starts it again), or
 * a negative code.  Not from a callback. */
TCPCHAT_API int tcpchat_server_step(tcpchat_server *srv);

/* ---- Thread-safe actions ---------------------------------------------- */

/* Sends text[0..len) as a TEXT message from the server (empty sender) to
 * every joined user.  The text is copied.  Returns 0 when queued,
 * TCPCHAT_EINVAL (NULL, empty, blank - only spaces and tabs -, invalid
 * UTF-8 or with control characters but TAB), TCPCHAT_EMSGSIZE (longer
 * than MAX_FRAME) or TCPCHAT_ENOMEM.  Thread-safe. */
TCPCHAT_API int tcpchat_server_broadcast(tcpchat_server *srv, const char *text,
                                         size_t len);

/* Sends text to the one user called name (NUL-terminated).  Returns 0
 * when queued (a user who is not connected when the command runs is
 * skipped, and the loop logs it at INFO), or as tcpchat_server_broadcast.
 * Thread-safe. */
TCPCHAT_API int tcpchat_server_send_to(tcpchat_server *srv, const char *name,
                                       const char *text, size_t len);

/* As tcpchat_server_send_to(), addressed by connection id (the conn_id
 * of the user's events), so that a name taken again by someone else is
 * never the one reached.  Thread-safe. */
TCPCHAT_API int tcpchat_server_send_to_id(tcpchat_server *srv, uint64_t conn_id,
                                          const char *text, size_t len);

/* Disconnects the user called name: they get an ERROR (TCPCHAT_EKICKED,
 * reason or "kicked"), the others a LEAVE with reason KICKED.  A reason
 * longer than 256 bytes is cut there, on a character boundary.  Returns
 * 0 when queued, TCPCHAT_EINVAL (NULL name, or a reason that is not chat
 * text: invalid UTF-8 or control characters) or TCPCHAT_ENOMEM.
 * Thread-safe. */
TCPCHAT_API int tcpchat_server_kick(tcpchat_server *srv, const char *name,
                                    const char *reason);

/* As tcpchat_server_kick(), addressed by connection id.  Thread-safe. */
TCPCHAT_API int tcpchat_server_kick_id(tcpchat_server *srv, uint64_t conn_id,
                                       const char *reason);

/* Answers a decision the handler deferred (TCPCHAT_DEFER) for connection
 * conn_id: accept() lets the user join, or the held message go out (a
 * held KICK is checked again: the room or the target may have gone);
 * refuse() closes the joining connection with an ERROR TCPCHAT_EREFUSED
 * (reason, or a default text; cut at 256 bytes), or refuses the held
 * message with a non-fatal ERROR.  Input waiting behind it is handled
 * next.  An answer for a connection that is gone, or has no decision
 * pending, is ignored (logged at DEBUG or INFO).  Returns 0 when queued,
 * TCPCHAT_EINVAL (conn_id 0, or a reason that is not chat text) or
 * TCPCHAT_ENOMEM.  Thread-safe. */
TCPCHAT_API int tcpchat_server_accept(tcpchat_server *srv, uint64_t conn_id);
TCPCHAT_API int tcpchat_server_refuse(tcpchat_server *srv, uint64_t conn_id,
                                      const char *reason);

/* ---- Rooms ------------------------------------------------------------ */

/* Sends text as a TEXT from the server (empty sender) to every member of
 * room.  Returns 0 when queued (a room that does not exist when the
 * command runs is skipped, and logged at INFO), TCPCHAT_EBADROOM, or as
 * tcpchat_server_broadcast.  Thread-safe. */
TCPCHAT_API int tcpchat_server_broadcast_room(tcpchat_server *srv,
                                              const char *room,
                                              const char *text, size_t len);

/* Puts the user called name into room (created if needed), without
 * asking the handler, as if they had asked: the members are told as for
 * any join, and a protocol-1 user is skipped (logged).  The user's
 * current room does not change.  Returns 0 when queued, TCPCHAT_EINVAL
 * (a NULL, empty or too long name), TCPCHAT_EBADROOM or TCPCHAT_ENOMEM; a user who is gone or a
 * room limit is logged when the command runs.  Thread-safe. */
TCPCHAT_API int tcpchat_server_room_join(tcpchat_server *srv, const char *name,
                                         const char *room);

/* Takes the user called name out of room: they and the members get a
 * LEAVE for the room with reason KICKED and reason (NULL: none; cut at
 * 256 bytes).  Returns as tcpchat_server_room_join(), or TCPCHAT_EINVAL
 * for a reason that is not chat text.  Thread-safe. */
TCPCHAT_API int tcpchat_server_room_part(tcpchat_server *srv, const char *name,
                                         const char *room, const char *reason);

/* Bans the name (a user name, NUL-terminated, copied) from room: a JOIN
 * of the room by that name is refused with a non-fatal ERROR
 * TCPCHAT_EREFUSED ("banned from #room") before the handler is asked.
 * When the user is in the room they are taken out as by
 * tcpchat_server_room_part() (reason KICKED, reason: NULL none, cut at
 * 256 bytes).  The room is made if it does not exist, and it is kept
 * while it has bans, like a room with texts.  Bans live in memory (a
 * restart forgets them), at most 1024 per room (more is logged and
 * skipped); forced joins (tcpchat_server_room_join) and the default
 * room at login ignore them.  Returns 0 when queued, TCPCHAT_EINVAL
 * (NULL room, a name that is not a user name, or a reason that is not
 * chat text), TCPCHAT_EBADROOM or TCPCHAT_ENOMEM.  Thread-safe. */
TCPCHAT_API int tcpchat_server_room_ban(tcpchat_server *srv, const char *room,
                                        const char *name, const char *reason);

/* Lifts the ban of name from room (a name that is not banned is logged
 * at INFO when the command runs).  Returns 0 when queued, TCPCHAT_EINVAL,
 * TCPCHAT_EBADROOM or TCPCHAT_ENOMEM.  Thread-safe. */
TCPCHAT_API int tcpchat_server_room_unban(tcpchat_server *srv, const char *room,
                                          const char *name);

/* Calls fn once per name banned from room, oldest ban first, with the
 * name (a view that lives until fn returns), until fn returns non-zero;
 * fn must not change the server.  Returns the number of bans,
 * TCPCHAT_ENOTFOUND for a room that does not exist, or TCPCHAT_EINVAL.
 * Loop thread only. */
TCPCHAT_API long tcpchat_server_room_bans(tcpchat_server *srv, const char *room,
                                          int (*fn)(tcpchat_str name, void *ud),
                                          void *ud);

/* Sets the topic of room to topic (NUL-terminated; NULL or "" clears it),
 * as set by the server (an empty sender): the members get a TOPIC.
 * Returns 0 when queued (a room that does not exist when the command runs
 * is skipped, and logged at INFO), TCPCHAT_EINVAL (NULL room, or a topic
 * that is not chat text), TCPCHAT_EBADROOM, TCPCHAT_EMSGSIZE (longer than
 * TCPCHAT_TOPIC_MAX) or TCPCHAT_ENOMEM.  Thread-safe. */
TCPCHAT_API int tcpchat_server_set_topic(tcpchat_server *srv, const char *room,
                                         const char *topic);

/* One room, as seen by tcpchat_server_rooms(). */
typedef struct tcpchat_room_info {
	tcpchat_str name;  /* "#room" */
	tcpchat_str topic; /* empty when none */
	uint64_t members;  /* users in it now */
	int is_default;    /* 1 for the default room */
} tcpchat_room_info;

/* Calls fn once per room, in creation order, until fn returns non-zero.
 * The views in *info live until fn returns; fn must not change the
 * server (no thread-safe call is needed: queue one if you must).  Returns
 * the number of rooms, or TCPCHAT_EINVAL.  Loop thread only (for example
 * from the handler, or between steps). */
TCPCHAT_API long tcpchat_server_rooms(tcpchat_server *srv,
                                      int (*fn)(const tcpchat_room_info *info,
                                                void *ud),
                                      void *ud);

/* Calls fn once per member of room, in join order, with the member's name
 * (a view that lives until fn returns) and connection id, until fn
 * returns non-zero.  Returns the number of members, TCPCHAT_ENOTFOUND for
 * a room that does not exist, or TCPCHAT_EINVAL.  Loop thread only. */
TCPCHAT_API long tcpchat_server_room_members(
        tcpchat_server *srv, const char *room,
        int (*fn)(tcpchat_str name, uint64_t conn_id, void *ud), void *ud);

/* ---- Statistics ------------------------------------------------------- */

typedef struct tcpchat_server_stats {
	size_t size;           /* set to sizeof(struct) before the call */
	uint64_t clients;      /* connections open now (joined or not) */
	uint64_t users;        /* joined users now */
	uint64_t accepted;     /* connections accepted in total */
	uint64_t msgs_in;      /* frames decoded from clients */
	uint64_t msgs_out;     /* frames queued to clients */
	uint64_t bytes_in;     /* bytes read from sockets */
	uint64_t bytes_out;    /* bytes written to sockets */
	uint64_t dropped;      /* frames dropped by the slow-consumer policy */
	uint64_t proto_errors; /* connections closed for protocol errors */
	uint64_t refused;      /* connections refused (full, address
	                          limits, filter, name) */
	/* ---- since protocol 2 ---- */
	uint64_t rooms;        /* rooms now */
	uint64_t private_msgs; /* private messages delivered */
	/* ---- since history ---- */
	uint64_t saved;   /* room texts committed to the store */
	uint64_t unsaved; /* room texts the store refused (disk error): not
	                     posted, their senders told with an ERROR */
	/* ---- since per-address limits ---- */
	uint64_t refused_addr; /* connections refused by ADDR_CONNS,
	                          ADDR_RATE or ADDR_HANDSHAKES (also in
	                          refused) */
	/* ---- since rate limits ---- */
	uint64_t limited; /* messages refused by the rate limits
	                     (TCPCHAT_SOPT_RATE_MSGS, _RATE_BYTES) */
	/* ---- since TLS ---- */
	uint64_t tls_failed; /* TLS connections closed because their
	                        handshake or a record failed (a plaintext
	                        client, a certificate refused, ...) */
	/* ---- since clusters (all 0 for a server alone) ---- */
	uint64_t cluster_up;      /* 1 while the bus is reachable */
	uint64_t cluster_servers; /* other servers heard of lately */
	uint64_t cluster_users;   /* users on the other servers */
	uint64_t bus_sent;        /* messages to the bus, and their */
	uint64_t bus_sent_bytes;  /* payload bytes */
	uint64_t bus_recv;        /* messages from the bus, and their */
	uint64_t bus_recv_bytes;  /* payload bytes */
	uint64_t bus_losses;      /* times the bus was lost */
	uint64_t bus_held;        /* room texts waiting for the bus (now) */
	uint64_t bus_refused;     /* room texts refused: the bus was down and
	                         TCPCHAT_CLUSTER_HELD_MAX were waiting */
	uint64_t bus_gaps;        /* times a room's numbers jumped: texts
	                         caught up from the bus's history, or gone
	                         from it */
	uint64_t bus_bad;         /* records from the bus that made no sense:
	                         ignored */
} tcpchat_server_stats;

/* Fills *out (up to out->size bytes; set out->size first: a caller built
 * against an older, smaller struct gets only its fields).  The loop
 * publishes the counters once per iteration, so they may be one
 * iteration stale.  Returns 0 or
 * TCPCHAT_EINVAL.  Thread-safe. */
TCPCHAT_API int tcpchat_server_stats_get(tcpchat_server *srv,
                                         tcpchat_server_stats *out);

#ifdef __cplusplus
}
#endif

#endif
