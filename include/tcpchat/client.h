/* libtcpchat - the chat client.
 * SPDX-License-Identifier: MIT
 *
 * A tcpchat_client connects to a server, joins under a name and then
 * sends and receives messages through its event handler.
 *
 *     tcpchat_client *cli;
 *     tcpchat_client_new(&cli);
 *     tcpchat_client_set_handler(cli, on_event, NULL);
 *     tcpchat_client_connect(cli, "127.0.0.1:7070", "alice");
 *     tcpchat_client_start(cli);                // library-owned thread
 *     tcpchat_client_send(cli, "hello", 5);     // from any thread
 *     tcpchat_client_room_join(cli, "#dev");    // protocol 2: rooms
 *     tcpchat_client_send_room(cli, "#dev", "hi", 2);
 *     tcpchat_client_send_private(cli, "bob", "psst", 4);
 *     ...
 *     tcpchat_client_stop(cli);                 // says goodbye, flushes
 *     tcpchat_client_join(cli);
 *     tcpchat_client_destroy(cli);
 *
 * Run modes and threading rules are those of tcpchat_server (see
 * tcpchat/server.h): run() blocks, start()/stop()/join() use a library
 * thread, fd()/timeout_ms()/step() let a host loop drive it.  All callbacks
 * run on the loop thread.  A client connects once: after it is
 * disconnected, run() returns and step() returns 1; call
 * tcpchat_client_connect() again to reconnect.
 *
 * The client speaks protocol 2 (tcpchat-protocol(7)): its HELLO says
 * version 2 with TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS.  A protocol-2
 * server puts it in its default room at login and lets it join other
 * rooms, send to a room or to one user, list rooms and set topics (see
 * "Rooms" below).  Against a server that answers protocol 1, the room
 * calls return TCPCHAT_ENOTSUP and the rest works as before.
 *
 * With a server that announces TCPCHAT_CAP_HISTORY the client also sends
 * texts with a reference and reports the server's acknowledgment (see
 * "Acknowledgments"), asks for a room's history and resumes a room from
 * a position (see "History"), and with TCPCHAT_COPT_RECONNECT it
 * reconnects by itself after a lost connection, resuming where it was
 * (see "Reconnecting").
 */
#ifndef TCPCHAT_CLIENT_H
#define TCPCHAT_CLIENT_H

#include "codec.h"
#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tcpchat_client tcpchat_client;

enum tcpchat_client_option {
	TCPCHAT_COPT_CONNECT_TIMEOUT = 1, /* [10000] ms for TCP connect and
	                                     handshake together */
	TCPCHAT_COPT_MAX_FRAME = 2,     /* [1048576] bytes per incoming frame */
	TCPCHAT_COPT_QUEUE_FRAMES = 3,  /* [4096] queued outgoing frames */
	TCPCHAT_COPT_QUEUE_BYTES = 4,   /* [4194304] queued outgoing bytes */
	TCPCHAT_COPT_PING_INTERVAL = 5, /* [30000] ms of silence from the
	                                     server before a PING; twice that
	                                     closes the connection; 0: none */
	TCPCHAT_COPT_LOG_LEVEL = 6,     /* [TCPCHAT_LOG_INFO] */
	TCPCHAT_COPT_STOP_TIMEOUT = 7,  /* [2000] ms to flush on stop */
	TCPCHAT_COPT_RECONNECT = 8,     /* [0] 1: reconnect after a lost
	                                     connection (see "Reconnecting") */
	TCPCHAT_COPT_RECONNECT_MIN = 9, /* [250] ms, 1..: the first delay's
	                                     bound; it doubles per attempt */
	TCPCHAT_COPT_RECONNECT_MAX = 10,  /* [30000] ms, 1..: the largest
	                                      bound of a delay */
	TCPCHAT_COPT_RECONNECT_TRIES = 11 /* [0] attempts before giving up
	                                       (0: never give up) */
};

/* Sets an integer option.  Returns 0 or TCPCHAT_EINVAL.  Loop thread
 * only (or before the loop runs). */
TCPCHAT_API int tcpchat_client_set_option(tcpchat_client *cli, int option,
                                          long long value);

/* Reads an integer option.  Returns 0 or TCPCHAT_EINVAL.  Loop thread
 * only. */
TCPCHAT_API int tcpchat_client_get_option(const tcpchat_client *cli, int option,
                                          long long *value);

/* Selects the codec (NULL: binary).  A custom codec must outlive the
 * client.  Returns 0, TCPCHAT_EINVAL, or TCPCHAT_ESTATE while connected.
 * Loop thread only. */
TCPCHAT_API int tcpchat_client_set_codec(tcpchat_client *cli,
                                         const tcpchat_codec *codec);

enum tcpchat_client_event_type {
	/* The server accepted the handshake; ev->name is our name. */
	TCPCHAT_CEV_CONNECTED = 1,
	/* A message arrived: ev->msg (TEXT, JOIN, LEAVE, WHO, TOPIC, ROOMS,
	 * ERROR, or a type this library does not know, passed on as it
	 * came).  An ERROR with TCPCHAT_MSGF_CLOSING in msg->flags ends the
	 * connection: the DISCONNECTED event that follows reports it.
	 * What each looks like is under "Received messages" below. */
	TCPCHAT_CEV_MESSAGE = 2,
	/* The connection is gone: ev->reason (enum tcpchat_reason) and
	 * ev->error (TCPCHAT_E* or 0); ev->text says why in words.  After it
	 * run() returns and step() returns 1. */
	TCPCHAT_CEV_DISCONNECTED = 3,
	/* A log line: ev->level, ev->text. */
	TCPCHAT_CEV_LOG = 4,
	/* The answer to a text sent with a ref, exactly one per such text.
	 * Accepted: ev->error 0 and ev->msg the server's ACK (ref; room,
	 * seq and epoch for a room text, or target; id, timestamp).
	 * Refused: ev->error < 0 and ev->msg an ERROR carrying the ref (and
	 * the room or target): the server's (ev->error is its code mapped
	 * with tcpchat_error_from_wire()), or one made by the library when
	 * the text was not sent: TCPCHAT_ECLOSED (the connection is gone
	 * for good), TCPCHAT_ENOTSUP (the server has no CAP_HISTORY),
	 * TCPCHAT_EMSGSIZE (over the server's limit); msg->code is then the
	 * wire code of ev->error, or 0 when it has none. */
	TCPCHAT_CEV_ACK = 5,
	/* The connection was lost and the client will try again in
	 * ev->delay_ms: ev->attempt (from 1), ev->error, ev->reason and
	 * ev->text say why it was lost (or why the last attempt failed). */
	TCPCHAT_CEV_RECONNECTING = 6,
	/* An attempt succeeded: ev->name, ev->attempt.  (The first connect
	 * of tcpchat_client_connect() reports CONNECTED instead.) */
	TCPCHAT_CEV_RECONNECTED = 7,
	/* A resume is complete (a reconnect's, or
	 * tcpchat_client_room_resume()'s): ev->room, and ev->msg the
	 * server's HISTORY end marker (flags TCPCHAT_MSGF_GAP when texts
	 * after the position are gone; oldest; first/last the texts served,
	 * which came before as MESSAGE events; seq the room's last seq;
	 * epoch).  The marker is not also a MESSAGE event. */
	TCPCHAT_CEV_RESUMED = 8,
	/* Reconnecting ends without a connection: RECONNECT_TRIES attempts
	 * failed, or the server refused us for good (ev->error).
	 * DISCONNECTED follows. */
	TCPCHAT_CEV_GAVE_UP = 9
};

/* Passed by pointer to the handler; fields are only ever added at the
 * end.  Everything it points to is valid only until the handler returns. */
typedef struct tcpchat_client_event {
	int type;               /* enum tcpchat_client_event_type */
	const tcpchat_msg *msg; /* MESSAGE */
	tcpchat_str name;       /* CONNECTED: the name we joined as */
	int reason;             /* DISCONNECTED */
	int error;              /* DISCONNECTED */
	int level;              /* LOG */
	const char *text;       /* LOG, DISCONNECTED: NUL-terminated */
	uint32_t wire_code;     /* DISCONNECTED: the code of the server's
	                           closing ERROR (tcpchat-protocol(7)), 0 if
	                           it sent none; a code this library does not
	                           know gives error TCPCHAT_EREMOTE */
	/* ---- since CAP_HISTORY ---- */
	uint32_t attempt;  /* RECONNECTING, RECONNECTED, GAVE_UP: attempts
	                      so far in this cycle, from 1 */
	uint32_t delay_ms; /* RECONNECTING: when the attempt starts */
	tcpchat_str room;  /* RESUMED: the room resumed */
} tcpchat_client_event;
/* ev->error is also set for ACK (0 or < 0), RECONNECTING and GAVE_UP;
 * ev->msg for ACK and RESUMED; ev->text for RECONNECTING and GAVE_UP. */

/* Runs on the loop thread.  May call tcpchat_client_send(),
 * tcpchat_client_stop() and the other thread-safe functions; must not
 * call run/start/step/join (they return TCPCHAT_ERECURSIVE) nor
 * destroy.  Return 0. */
typedef int (*tcpchat_client_handler)(tcpchat_client *cli,
                                      const tcpchat_client_event *ev,
                                      void *userdata);

/* Installs the event handler (NULL removes it).  Loop thread only. */
TCPCHAT_API void tcpchat_client_set_handler(tcpchat_client *cli,
                                            tcpchat_client_handler fn,
                                            void *userdata);

/* Creates a client with default options.  Stores it in *out and returns
 * 0, or returns TCPCHAT_ENOMEM / TCPCHAT_ESYS and stores NULL. */
TCPCHAT_API int tcpchat_client_new(tcpchat_client **out);

/* Closes the connection at once (no goodbye, no flush; use
 * tcpchat_client_stop() first for that), joins the library's thread if
 * any and frees everything.  Accepts NULL.  Not from a callback. */
TCPCHAT_API void tcpchat_client_destroy(tcpchat_client *cli);

/* Resolves addr ("host:port" or "[v6]:port") and starts a non-blocking
 * connect (to each address the name resolves to in turn, until one
 * answers); name (NUL-terminated, checked with tcpchat_name_check()) is
 * sent in the handshake.  The connection proceeds when the loop runs.
 * Returns 0, TCPCHAT_EADDR, TCPCHAT_EBADNAME, TCPCHAT_ESTATE (already
 * connected or connecting), TCPCHAT_ENOMEM or TCPCHAT_ESYS.  Loop thread
 * only; not from a callback. */
TCPCHAT_API int tcpchat_client_connect(tcpchat_client *cli, const char *addr,
                                       const char *name);

/* Makes the next tcpchat_client_connect() (and its reconnections) speak
 * TLS with cfg: the server's certificate is verified against
 * cfg->ca_file or the system's store, and must carry cfg->server_name or
 * the host connected to.  cfg->cert_file/key_file give the client's own
 * certificate.  The files are read now.  NULL: plain TCP again.  A
 * failed handshake or check ends the connection with TCPCHAT_ETLS and a
 * reason ("certificate verify failed: certificate has expired"); with
 * TCPCHAT_COPT_RECONNECT, a certificate that fails to verify is not
 * retried.  Returns 0, TCPCHAT_ETLS (err as tcpchat_server_set_tls),
 * TCPCHAT_ENOTSUP (built without TLS), TCPCHAT_EINVAL, TCPCHAT_ESTATE
 * (connected or connecting) or TCPCHAT_ENOMEM.  Loop thread only; not
 * from a callback (as tcpchat_client_connect()). */
TCPCHAT_API int tcpchat_client_set_tls(tcpchat_client *cli,
                                       const tcpchat_tls_config *cfg, char *err,
                                       size_t errlen);

/* Sets the credential (a password) sent in the handshake's HELLO from
 * the next tcpchat_client_connect() on, reconnections included: cred is
 * copied (NUL-terminated, at most TCPCHAT_CREDENTIAL_MAX bytes of UTF-8
 * without control characters but TAB); NULL or "" clears it.  The copy
 * is overwritten with zeros when replaced and by
 * tcpchat_client_destroy().  The library never logs it.  Returns 0,
 * TCPCHAT_EINVAL, TCPCHAT_ESTATE (connected or connecting) or
 * TCPCHAT_ENOMEM.  Loop thread only; not from a callback (as
 * tcpchat_client_connect()). */
TCPCHAT_API int tcpchat_client_set_credential(tcpchat_client *cli,
                                              const char *cred);

/* Blocking mode: runs until disconnected or stopped.  Returns 0 after
 * tcpchat_client_stop(), otherwise the error that ended the connection,
 * the same as the DISCONNECTED event's ev->error (e.g. TCPCHAT_ESYS for a
 * refused connect, TCPCHAT_ENAMEINUSE for a refused name,
 * TCPCHAT_ESHUTDOWN when the server shuts down, TCPCHAT_EKICKED when
 * kicked, TCPCHAT_ECLOSED when the server just closes the connection).
 * TCPCHAT_ESTATE when not connecting, or while a thread or a host loop
 * drives the client. */
TCPCHAT_API int tcpchat_client_run(tcpchat_client *cli);

/* Own-thread mode: runs the loop in a library thread.  Returns 0,
 * TCPCHAT_ESTATE or TCPCHAT_ESYS. */
TCPCHAT_API int tcpchat_client_start(tcpchat_client *cli);

/* Waits for the library thread; returns what run() would have returned,
 * or TCPCHAT_ESTATE if no thread was started.  Not from a callback. */
TCPCHAT_API int tcpchat_client_join(tcpchat_client *cli);

/* Asks the loop to say goodbye (LEAVE), flush what is queued for up to
 * STOP_TIMEOUT ms, close and finish.  Returns 0.  Thread-safe and
 * async-signal-safe. */
TCPCHAT_API int tcpchat_client_stop(tcpchat_client *cli);

/* Queues text[0..len) as a TEXT message (with protocol 2, to the current
 * room: see tcpchat_client_room_join()).  It is sent as soon as the
 * handshake is done (messages queued before that wait; texts sent before
 * tcpchat_client_stop() go before the goodbye).  The text is encoded on
 * the caller's thread.  Returns 0 when queued (not yet delivered),
 * TCPCHAT_EINVAL (NULL, empty, only spaces and tabs, invalid UTF-8, or a
 * control character
 * other than tab, e.g. '\n'), TCPCHAT_EMSGSIZE (the encoded frame is
 * larger than the server's limit from its WELCOME; before the WELCOME,
 * larger than MAX_FRAME, and a text queued then that turns out too large
 * for the server is not sent and logged at ERROR), TCPCHAT_EQUEUEFULL,
 * TCPCHAT_ECLOSED (never connected, or disconnected) or TCPCHAT_ENOMEM.
 * Thread-safe. */
TCPCHAT_API int tcpchat_client_send(tcpchat_client *cli, const char *text,
                                    size_t len);

/* Asks the server who is connected.  The answer arrives as a MESSAGE
 * event whose msg->type is TCPCHAT_MSG_WHO: msg->code is the number of
 * users (the asker included) and msg->body their names separated by
 * spaces.  Returns 0 when queued, TCPCHAT_ECLOSED, TCPCHAT_EQUEUEFULL or
 * TCPCHAT_ENOMEM.  Thread-safe. */
TCPCHAT_API int tcpchat_client_who(tcpchat_client *cli);

/* ---- Rooms (protocol 2) ---------------------------------------------- */

/* The calls below are thread-safe: they check their arguments, encode the
 * message on the caller's thread and queue it like tcpchat_client_send()
 * (sent once the handshake is done; success means queued, not done: the
 * server answers a refused request with a non-fatal ERROR MESSAGE event,
 * e.g. TCPCHAT_WIRE_NOTMEMBER, TCPCHAT_WIRE_NOTFOUND, TCPCHAT_WIRE_LIMIT
 * or TCPCHAT_WIRE_REFUSED).  A room is a NUL-terminated name checked
 * with tcpchat_room_check(); a text is checked as for
 * tcpchat_client_send().  Each returns 0 when queued, or:
 *   TCPCHAT_EINVAL     NULL cli or argument, or a text or reason that is
 *                      not chat text (empty, invalid UTF-8, control
 *                      characters other than tab; a text of only
 *                      spaces and tabs too);
 *   TCPCHAT_EBADROOM   a room name tcpchat_room_check() refuses;
 *   TCPCHAT_EBADNAME   a user name tcpchat_name_check() refuses;
 *   TCPCHAT_EMSGSIZE   a text longer than MAX_FRAME, a topic longer than
 *                      TCPCHAT_TOPIC_MAX bytes, or an encoded frame over
 *                      the server's limit (as for tcpchat_client_send());
 *   TCPCHAT_ENOTSUP    the server's WELCOME said protocol 1 (a call made
 *                      before the WELCOME is queued, and if the server
 *                      then says protocol 1 it is not sent and logged at
 *                      ERROR);
 *   TCPCHAT_ECLOSED, TCPCHAT_EQUEUEFULL, TCPCHAT_ENOMEM as for
 *                      tcpchat_client_send(). */

/* Joins room (created by the server if it does not exist) and makes it
 * the current room: the room that tcpchat_client_send() texts go to.
 * Already a member: the server confirms again and it becomes the current
 * room.  The confirmation is a JOIN MESSAGE whose sender is our own name.
 * Thread-safe. */
TCPCHAT_API int tcpchat_client_room_join(tcpchat_client *cli, const char *room);

/* Leaves room, or with room NULL the current room; reason (NULL or ""
 * for none) is chat text that the members see.  The confirmation is a
 * LEAVE MESSAGE with our own name as sender, the room and code
 * TCPCHAT_REASON_PART; a room we are not in gets ERROR NOTMEMBER.
 * Thread-safe. */
TCPCHAT_API int tcpchat_client_room_part(tcpchat_client *cli, const char *room,
                                         const char *reason);

/* Sends text[0..len) to room, which we must be in (else ERROR
 * NOTMEMBER); the current room does not change.  As for
 * tcpchat_client_send(), the server does not echo it back.  Thread-safe. */
TCPCHAT_API int tcpchat_client_send_room(tcpchat_client *cli, const char *room,
                                         const char *text, size_t len);

/* Sends text[0..len) privately to the user called name (NUL-terminated).
 * Only that user receives it; we receive a copy with TCPCHAT_MSGF_ECHO
 * (a message to ourselves arrives once, as that copy).  A user who is
 * not connected gets us ERROR NOTFOUND.  Thread-safe. */
TCPCHAT_API int tcpchat_client_send_private(tcpchat_client *cli,
                                            const char *name, const char *text,
                                            size_t len);

/* How much of text[0..len) fits in one message: the length of its
 * longest prefix that ends on a UTF-8 character boundary and whose TEXT
 * frame, encoded with this client's codec, is within the server's frame
 * limit from its WELCOME (before the WELCOME: within MAX_FRAME).  The
 * message goes to room when room is set, else to the user name when name
 * is set, else to the current room (both set: invalid).  A program
 * splits a long text with it, cutting where it returns, instead of
 * getting TCPCHAT_EMSGSIZE.  With TCPCHAT_COPT_RECONNECT on, room is
 * left for the longest ref the library makes (every text then carries
 * one).  Returns len when all of it fits, 0 when not
 * even its first character does or an argument is invalid (NULL cli or
 * text, len 0, a bad room or name).  text is not checked otherwise (see
 * tcpchat_client_send()).  Thread-safe; encodes up to about
 * log2(len) + 1 times. */
TCPCHAT_API size_t tcpchat_client_text_fit(tcpchat_client *cli,
                                           const char *room, const char *name,
                                           const char *text, size_t len);

/* Asks for the room list: ROOMS MESSAGE events, one per room, then one
 * without room that ends the list (see "Received messages").
 * Thread-safe. */
TCPCHAT_API int tcpchat_client_rooms(tcpchat_client *cli);

/* Asks who is in room (which must exist, else ERROR NOTFOUND): a WHO
 * MESSAGE with msg->room set, msg->code the number of members and
 * msg->body their names in join order.  tcpchat_client_who() asks about
 * the whole server.  Thread-safe. */
TCPCHAT_API int tcpchat_client_who_room(tcpchat_client *cli, const char *room);

/* Sets the topic of room (we must be in it) to topic, NUL-terminated
 * chat text of at most TCPCHAT_TOPIC_MAX bytes; NULL or "" clears it.
 * Every member, us included, gets a TOPIC MESSAGE.  Thread-safe. */
TCPCHAT_API int tcpchat_client_set_topic(tcpchat_client *cli, const char *room,
                                         const char *topic);

/* Asks the server to take the user called name out of room (we must be
 * in it), with reason (NULL or "" for none; chat text, cut by the server
 * at 256 bytes) that the target and the members see.  flags:
 * 0 (kick), TCPCHAT_MSGF_BAN (kick if there, and ban the name from the
 * room: its JOINs are refused) or TCPCHAT_MSGF_UNBAN (lift the ban; the
 * reason is not sent).  The server's application decides who may: a
 * refusal is an ERROR MESSAGE TCPCHAT_WIRE_REFUSED ("not an operator of
 * #room"); a name not in the room TCPCHAT_WIRE_NOTFOUND.  A kick shows
 * as the target's LEAVE MESSAGE (code TCPCHAT_REASON_KICKED, body the
 * reason); an unban, a ban of a name not in the room, or a kick in a
 * room too big for announced parts as a KICK MESSAGE back (our name as
 * sender, room, target and flags as asked).  Returns as the calls above,
 * or TCPCHAT_EINVAL for other flags.  Thread-safe. */
TCPCHAT_API int tcpchat_client_kick(tcpchat_client *cli, const char *room,
                                    const char *name, const char *reason,
                                    unsigned flags);

/* The client's own view of the rooms it is in, kept by the library from
 * the WELCOME (the default room), its own JOIN and LEAVE confirmations
 * (messages with a room whose sender is our name: joins we asked for,
 * joins and parts forced by the server application, our parts) and
 * updated before the handler sees the message.  Empty while not
 * connected and with a protocol-1 server.
 *
 * Calls fn once per room we are in, in the order we entered them, until
 * fn returns non-zero (fn NULL: just count).  room is a view that lives
 * until fn returns; fn must not call this function.  Returns the number
 * of rooms, or TCPCHAT_EINVAL.  Loop thread only (e.g. from the
 * handler). */
typedef int (*tcpchat_client_room_fn)(tcpchat_str room, void *ud);
TCPCHAT_API long tcpchat_client_rooms_joined(tcpchat_client *cli,
                                             tcpchat_client_room_fn fn,
                                             void *ud);

/* Copies the current room, NUL-terminated, into buf[0..size): the room of
 * our last confirmed join request, or the default room before any (or
 * after parting the current room while still in the default room);
 * "" when in none.  A buffer of TCPCHAT_ROOM_MAX + 1 bytes always fits.
 * Returns the length (0 for none), TCPCHAT_EMSGSIZE (buf too small: buf
 * is set to "") or TCPCHAT_EINVAL.  Thread-safe. */
TCPCHAT_API int tcpchat_client_current_room(tcpchat_client *cli, char *buf,
                                            size_t size);

/* ---- Acknowledgments (CAP_HISTORY) ------------------------------------ */

#define TCPCHAT_REF_MAX 64 /* bytes in a ref */

/* Queues text[0..len) with a ref: to room (NUL-terminated, we must be in
 * it), or privately to the user target, or with both NULL to the current
 * room.  The server answers it with an ACK, or refuses it with an ERROR
 * carrying the ref: either way exactly one TCPCHAT_CEV_ACK event follows
 * (see there), on the loop thread.  A text the server has already
 * accepted under the same ref (within its ACK window) is not posted
 * again: the ACK repeats the first one's id and seq.
 *
 * ref: NUL-terminated, 1..TCPCHAT_REF_MAX bytes of valid UTF-8 without
 * control characters; NULL: the library makes one, unique to this client
 * ("<16 hex digits>-<counter>").  ref_out: NULL, or a buffer of
 * TCPCHAT_REF_MAX + 1 bytes that receives the ref used, NUL-terminated.
 *
 * Until the ACK event the library keeps the text: with
 * TCPCHAT_COPT_RECONNECT it is sent again, with its ref, on the next
 * connection.  Returns 0 when queued, or as tcpchat_client_send_room()
 * (both room and target set: TCPCHAT_EINVAL; a ref that is not valid:
 * TCPCHAT_EINVAL), and TCPCHAT_ENOTSUP when the server's WELCOME did not
 * announce TCPCHAT_CAP_HISTORY (a text queued before the WELCOME is then
 * not sent: its ACK event says TCPCHAT_ENOTSUP).  Thread-safe. */
TCPCHAT_API int tcpchat_client_send_ref(tcpchat_client *cli, const char *room,
                                        const char *target, const char *text,
                                        size_t len, const char *ref,
                                        char *ref_out);

/* ---- History (CAP_HISTORY) ------------------------------------------- */

/* Every text of a room carries its seq, numbered by the server from 1;
 * the JOIN and WELCOME marks (and ACKs and history ends) carry the epoch
 * of the server's history too (a new epoch: numbers from before mean
 * nothing; a text without one is of its connection's epoch).  The
 * client keeps, per room it is in, a position: the epoch and the last
 * seq it delivered or was told of (texts, the marks of JOIN and WELCOME
 * messages, ACKs of our own texts, resumes); a reconnect resumes from
 * it.  A live text or a resumed one whose seq is not above the last seq
 * delivered as a text (same epoch) is a duplicate and is not delivered
 * (it can only happen around a resume; logged at DEBUG).  A mark alone
 * never makes a text a duplicate. */

enum tcpchat_history_how {
	TCPCHAT_HISTORY_LATEST = 0, /* the latest limit texts */
	TCPCHAT_HISTORY_AFTER = 1,  /* the first limit texts after seq (seq 0:
	                               from the oldest kept) */
	TCPCHAT_HISTORY_BEFORE = 2  /* the last limit texts before seq */
};

/* Asks for the history of room (NULL: the current room), which we must
 * be in (else ERROR NOTMEMBER): limit texts at most (0: the server's
 * default, 50; the server caps it at 1000), chosen by how and seq.  The
 * answer: MESSAGE events of TEXTs with TCPCHAT_MSGF_HISTORY, oldest first
 * (they do not move the room's position and are never taken for
 * duplicates), then one MESSAGE of type TCPCHAT_MSG_HISTORY, the end:
 * room, epoch, seq (the room's last seq), code (texts served), first and
 * last (their seq range, 0 when none), oldest (the oldest seq kept) and
 * flags TCPCHAT_MSGF_GAP when some of what was asked is gone.  Returns 0
 * when queued, TCPCHAT_EINVAL (bad how), TCPCHAT_EBADROOM,
 * TCPCHAT_ENOTSUP (no CAP_HISTORY; asked before the WELCOME: not sent,
 * logged at ERROR), and as tcpchat_client_send().  Thread-safe. */
TCPCHAT_API int tcpchat_client_history(tcpchat_client *cli, const char *room,
                                       int how, uint64_t seq, uint32_t limit);

/* Joins room and resumes it from a position: the server sends the
 * texts after after_seq that it still keeps (all of them), as MESSAGE
 * events of TEXTs with TCPCHAT_MSGF_HISTORY, and then live texts, with
 * no duplicate and no hole between them.  epoch: the epoch after_seq is
 * of (0: none; a different epoch than the server's makes it send from its
 * oldest text, with the GAP flag).  The room's position becomes (epoch,
 * after_seq); the end of the history is a TCPCHAT_CEV_RESUMED event.
 * Not a member yet: the JOIN confirmation comes first and the room
 * becomes the current room as with tcpchat_client_room_join(); already
 * a member: just the history.  Returns as tcpchat_client_room_join(),
 * and TCPCHAT_ENOTSUP without CAP_HISTORY.  Thread-safe. */
TCPCHAT_API int tcpchat_client_room_resume(tcpchat_client *cli,
                                           const char *room, uint64_t epoch,
                                           uint64_t after_seq);

/* Stores the position of room (NUL-terminated), a room we are in: the
 * epoch and the last seq delivered (0 and 0 when the server has no
 * history).  Returns 0, TCPCHAT_ENOTMEMBER (not in the room) or
 * TCPCHAT_EINVAL.  Loop thread only (e.g. from the handler). */
TCPCHAT_API int tcpchat_client_room_position(tcpchat_client *cli,
                                             const char *room, uint64_t *epoch,
                                             uint64_t *seq);

/* ---- Reconnecting (TCPCHAT_COPT_RECONNECT) ----------------------------- */

/* With TCPCHAT_COPT_RECONNECT set to 1, a connection that was up and is
 * lost (the server closed it or shut down, an I/O error, the heartbeat,
 * the server's slow-consumer policy) is not the end: the client reports
 * TCPCHAT_CEV_RECONNECTING and tries again after a delay drawn at random
 * in [0, min(RECONNECT_MAX, RECONNECT_MIN * 2^(attempt - 1))] ms (full
 * jitter), up to RECONNECT_TRIES attempts (0: for ever).  Not after
 * tcpchat_client_stop(), nor after a kick or a refusal for good (a bad
 * name, the version, the application's refusal); a name in use is tried
 * again (the server may not have seen the old connection go yet).  A
 * first connect that fails is not retried.
 *
 * On success: TCPCHAT_CEV_RECONNECTED; the HELLO asks for the default
 * room's texts after our position; every other room we were in is
 * joined again with a resume from its position (the current room last,
 * so it stays current), unconfirmed join requests are sent again, then
 * every text not yet acknowledged is sent again with its ref, in the
 * order first sent (the server does not post twice what it already
 * has), then whatever was queued meanwhile.  Each resumed room ends with
 * TCPCHAT_CEV_RESUMED.  Without CAP_HISTORY on the new server the rooms
 * are joined without a resume and unacknowledged texts are refused with
 * TCPCHAT_ENOTSUP.
 *
 * Meanwhile the send calls keep queuing (within QUEUE_FRAMES and
 * QUEUE_BYTES, counting the unacknowledged texts; beyond that they
 * return TCPCHAT_EQUEUEFULL), tcpchat_client_is_connected() says 0 and
 * the rooms view is empty.  With RECONNECT on, every text gets a ref
 * (one the library makes when sent with tcpchat_client_send(),
 * tcpchat_client_send_room() or tcpchat_client_send_private()), so it is
 * never lost nor posted twice across a reconnect, and each has its ACK
 * event.  When the client gives up: TCPCHAT_CEV_GAVE_UP, ACK events
 * refusing the unacknowledged texts with TCPCHAT_ECLOSED, then
 * TCPCHAT_CEV_DISCONNECTED. */

/* ---- Received messages ------------------------------------------------ */

/* MESSAGE events carry ev->msg as the server sent it (tcpchat-protocol(7)
 * has the wire form).  With a protocol-2 server:
 *   TEXT in a room     sender, id, timestamp, body, room; flags has
 *                      TCPCHAT_MSGF_DEFAULT_ROOM when room is the
 *                      default room; seq, the room's sequence number
 *                      (one more than the last text of the room: a
 *                      bigger step means texts were missed; epoch when
 *                      the server sets it).  Our own room texts are not echoed (they take a
 *                      seq too).
 *   TEXT private       sender, id, timestamp, body, target (the
 *                      addressee).  To us: target is our name.  The copy
 *                      of one we sent: flags TCPCHAT_MSGF_ECHO, sender our
 *                      name, target the addressee, same id.
 *   TEXT notice        no sender: from the server; room set when it went
 *                      to one room only.
 *   JOIN               sender entered room; code = members after it;
 *                      flags DEFAULT_ROOM for the default room.  With our
 *                      name as sender it confirms our join (or a join
 *                      the server made for us).  Rooms with more than the
 *                      server's announce limit are not announced.
 *   LEAVE with room    sender left room, staying connected: code
 *                      TCPCHAT_REASON_PART (its choice) or
 *                      TCPCHAT_REASON_KICKED (forced), body the reason.
 *                      With our name as sender: we are out of room.
 *   LEAVE, no room     sender disconnected (code: QUIT, CLOSED, TIMEOUT,
 *                      ERROR, KICKED, SHUTDOWN, SLOW; body the reason);
 *                      once, if we share a room with them.
 *   WHO                code = users (exact), body = names space-separated
 *                      (cut at about 60 KiB); room as asked.
 *   TOPIC              room's topic is body (empty: cleared), set by
 *                      sender (empty: the server), at timestamp.  Sent on
 *                      a change, after our join confirmation when the
 *                      room has a topic, and after the WELCOME when the
 *                      default room has one.
 *   ROOMS              one per room: room, code = members, body = topic,
 *                      flags DEFAULT_ROOM for the default room; in
 *                      creation order, at most 1000; then one without
 *                      room whose code is the total number of rooms.
 *   ERROR              code is a wire code; new in protocol 2:
 *                      TCPCHAT_WIRE_BADROOM, _NOTMEMBER, _LIMIT.  An
 *                      ERROR that refuses a text sent with a ref is an
 *                      ACK event instead.
 *   TEXT with flag     a text from a room's history (tcpchat_client_
 *   HISTORY            history(), or a resume); as a room text.
 *   HISTORY            the end of a history answer (see
 *                      tcpchat_client_history()).
 * A protocol-1 server sends no room, target, flags, TOPIC or ROOMS. */

/* Host-driven mode, called by the host's loop thread (as for
 * tcpchat_server_fd() and friends):
 * fd():         a descriptor that becomes readable when step() has work,
 *               stable for the client's life; TCPCHAT_ENOTSUP with the
 *               poll(2) backend.
 * timeout_ms(): milliseconds until step() is due anyway; -1: no timer;
 *               0 when not connected.
 * step():       does the ready work without blocking; returns 0 while
 *               connecting or connected, 1 once disconnected (or before
 *               tcpchat_client_connect()), TCPCHAT_ESTATE while a library
 *               thread drives the client, TCPCHAT_ERECURSIVE from a
 *               callback, or another negative code. */
TCPCHAT_API int tcpchat_client_fd(const tcpchat_client *cli);
TCPCHAT_API int tcpchat_client_timeout_ms(tcpchat_client *cli);
TCPCHAT_API int tcpchat_client_step(tcpchat_client *cli);

/* 1 while the handshake is done and the connection is up, else 0.
 * Thread-safe. */
TCPCHAT_API int tcpchat_client_is_connected(const tcpchat_client *cli);

/* What the server said about itself in its WELCOME. */
typedef struct tcpchat_server_info {
	size_t size;           /* set to sizeof(struct) before the call */
	uint64_t caps;         /* TCPCHAT_CAP_* */
	uint64_t max_frame;    /* largest frame it accepts; 0: not said */
	uint64_t queue_frames; /* its output queue for us; 0: not said */
	uint64_t queue_bytes;
	/* ---- since protocol 2 ---- */
	uint32_t protocol; /* the protocol version the WELCOME
	                          negotiated: 1 or 2 */
	char default_room[TCPCHAT_ROOM_MAX + 1]; /* the server's default
	                          room, NUL-terminated; "" when it has none
	                          (and with protocol 1) */
} tcpchat_server_info;

/* Fills *out (up to out->size bytes) with what the last WELCOME said.
 * Returns 0, TCPCHAT_ECLOSED before the first WELCOME, or
 * TCPCHAT_EINVAL.  Thread-safe. */
TCPCHAT_API int tcpchat_client_server_info(tcpchat_client *cli,
                                           tcpchat_server_info *out);

#ifdef __cplusplus
}
#endif

#endif
