/* libtcpchat - types shared by the server, the client and the codecs.
 * SPDX-License-Identifier: MIT
 *
 * Conventions used by every libtcpchat function:
 *  - Functions that can fail return int: 0 on success, or a negative
 *    TCPCHAT_E* code.  tcpchat_strerror() names each code.
 *  - A function is callable from any thread only when its comment says
 *    "Thread-safe".  Everything else must be called from the thread that
 *    drives the object (see tcpchat/server.h, "Run modes").
 *  - Strings in messages and events are tcpchat_str views: a pointer and a
 *    length, NOT NUL-terminated, owned by the library and valid only until
 *    the callback that received them returns.  Copy what you keep.
 */
#ifndef TCPCHAT_CORE_H
#define TCPCHAT_CORE_H

#include <stddef.h>
#include <stdint.h>

#include <tcpchat/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TCPCHAT_BUILDING) && defined(__GNUC__)
#define TCPCHAT_API __attribute__((visibility("default")))
#else
#define TCPCHAT_API
#endif

/* ---- Error codes ------------------------------------------------------ */

/* 0 is success; failures are negative.  These are the library's codes;
 * the codes of ERROR messages on the wire are their own space (see "Wire
 * error codes" below and tcpchat-protocol(7)). */
enum tcpchat_error {
	TCPCHAT_OK = 0,
	TCPCHAT_EINVAL = -1,     /* invalid argument */
	TCPCHAT_ENOMEM = -2,     /* out of memory */
	TCPCHAT_ESYS = -3,       /* a system call failed: see errno */
	TCPCHAT_EPROTO = -4,     /* malformed frame or protocol violation */
	TCPCHAT_EMSGSIZE = -5,   /* frame or message larger than the limit */
	TCPCHAT_ECLOSED = -6,    /* connection closed, or not connected */
	TCPCHAT_ETIMEDOUT = -7,  /* a timeout expired */
	TCPCHAT_ENAMEINUSE = -8, /* that name is already connected */
	TCPCHAT_EBADNAME = -9,   /* name is not 1-32 bytes of printable UTF-8 */
	TCPCHAT_EFULL = -10,     /* server has reached its client limit */
	TCPCHAT_EREFUSED = -11,  /* refused by the application's handler */
	TCPCHAT_EVERSION = -12,  /* unsupported protocol version */
	TCPCHAT_ESTATE = -13,    /* not allowed in the object's current state */
	TCPCHAT_ERECURSIVE = -14, /* not allowed from inside a callback */
	TCPCHAT_ENOTFOUND = -15,  /* no such user */
	TCPCHAT_EADDR = -16,      /* address could not be parsed or resolved */
	TCPCHAT_EQUEUEFULL = -17, /* outgoing queue full, message not queued */
	TCPCHAT_ESHUTDOWN = -18,  /* the server is shutting down */
	TCPCHAT_ENOTSUP = -19,    /* not supported by this build or backend */
	TCPCHAT_EBADMSG = -20,    /* message content refused (e.g. bad UTF-8) */
	TCPCHAT_EKICKED = -21,    /* disconnected by the server operator */
	TCPCHAT_ESLOW = -22,   /* disconnected: too slow to read its messages */
	TCPCHAT_EREMOTE = -23, /* the server reported an error this library
	                            does not know (the wire code is passed on) */
	TCPCHAT_ENOTYPE = -24, /* the peer does not know that message type */
	TCPCHAT_EBADROOM = -25,   /* room name is not '#' + 1-63 bytes of
	                            printable UTF-8 without spaces, commas
	                            or colons (tcpchat_room_check) */
	TCPCHAT_ENOTMEMBER = -26, /* not a member of that room */
	TCPCHAT_ELIMIT = -27,     /* a room limit was reached (rooms per
	                            user or per server) */
	TCPCHAT_ERATE = -28,      /* sending too fast: the server's rate
	                            limits refused the message */
	TCPCHAT_ETLS = -29,       /* TLS failed: a certificate or key that
	                            cannot be loaded, a handshake or a
	                            certificate check that failed */
	TCPCHAT_EBUS = -30        /* the bus that joins the servers of a
	                            cluster (Redis, NATS) cannot be reached */
};

/* Lowest (most negative) error code; every code in
 * [TCPCHAT_ERROR_MIN, 0] has a name. */
#define TCPCHAT_ERROR_MIN TCPCHAT_EBUS

/* Returns a fixed, human-readable English string for an error code; never
 * NULL ("unknown error" for codes it does not know).  Thread-safe. */
TCPCHAT_API const char *tcpchat_strerror(int err);

/* ---- Wire error codes ------------------------------------------------- */

/* The code of an ERROR message is a number of this space, documented in
 * tcpchat-protocol(7).  Codes are stable; a peer may send codes this
 * version does not know, and those reach the application unchanged.
 * Whether the connection is closing travels with the message itself
 * (TCPCHAT_MSGF_CLOSING), so no receiver keeps a list of fatal codes. */
enum tcpchat_wire_error {
	TCPCHAT_WIRE_PROTO = 4,      /* malformed frame, protocol violation */
	TCPCHAT_WIRE_MSGSIZE = 5,    /* frame or message too large */
	TCPCHAT_WIRE_TIMEDOUT = 7,   /* handshake or idle timeout */
	TCPCHAT_WIRE_NAMEINUSE = 8,  /* name already in use */
	TCPCHAT_WIRE_BADNAME = 9,    /* invalid name */
	TCPCHAT_WIRE_FULL = 10,      /* server full */
	TCPCHAT_WIRE_REFUSED = 11,   /* refused by the server application */
	TCPCHAT_WIRE_VERSION = 12,   /* unsupported protocol version */
	TCPCHAT_WIRE_NOMEM = 2,      /* the server ran out of memory */
	TCPCHAT_WIRE_SYS = 3,        /* the server failed at something (e.g.
	                                its disk: a text it could not save) */
	TCPCHAT_WIRE_NOTFOUND = 15,  /* no such user */
	TCPCHAT_WIRE_SHUTDOWN = 18,  /* the server is shutting down */
	TCPCHAT_WIRE_NOTSUP = 19,    /* not supported (e.g. a room or target
	                                on a server without rooms) */
	TCPCHAT_WIRE_BADMSG = 20,    /* message content refused */
	TCPCHAT_WIRE_KICKED = 21,    /* kicked by the operator */
	TCPCHAT_WIRE_SLOW = 22,      /* too slow to keep up */
	TCPCHAT_WIRE_NOTYPE = 24,    /* unknown message type */
	TCPCHAT_WIRE_BADROOM = 25,   /* invalid room name */
	TCPCHAT_WIRE_NOTMEMBER = 26, /* not a member of that room */
	TCPCHAT_WIRE_LIMIT = 27,     /* too many rooms */
	TCPCHAT_WIRE_RATE = 28,      /* sending too fast: the message was not
	                                delivered; the body says when to
	                                retry */
	TCPCHAT_WIRE_UNAVAILABLE = 30 /* the server cannot do it now (its
	                                 cluster's bus is down): try again */
};

/* Maps a library error code to the wire code that reports it (a code
 * with no wire counterpart becomes TCPCHAT_WIRE_PROTO).  Thread-safe. */
TCPCHAT_API uint32_t tcpchat_error_to_wire(int err);

/* Maps a wire code to the library's code, or TCPCHAT_EREMOTE for a code
 * this version does not know.  Thread-safe. */
TCPCHAT_API int tcpchat_error_from_wire(uint32_t code);

/* Runtime version of the library, e.g. "0.1.0"; compare with
 * TCPCHAT_VERSION_STRING to detect a header/library mismatch.  If num is
 * not NULL it receives TCPCHAT_VERSION_NUM of the library.  Thread-safe. */
TCPCHAT_API const char *tcpchat_version(int *num);

/* ---- Views and messages ----------------------------------------------- */

/* A borrowed string: ptr[0..len) with no terminating NUL guaranteed.
 * ptr may be NULL when len is 0. */
typedef struct tcpchat_str {
	const char *ptr;
	size_t len;
} tcpchat_str;

/* Message types.  Values are stable: they are the type byte of the binary
 * codec.  Codecs decode any type, known or not; the protocol layer judges
 * it (a type it does not know gets a non-fatal ERROR
 * TCPCHAT_WIRE_NOTYPE, so the protocol can grow). */
enum tcpchat_msg_type {
	TCPCHAT_MSG_HELLO =
	        1, /* c->s: protocol version in code, name in sender */
	TCPCHAT_MSG_WELCOME = 2, /* s->c: handshake accepted, name in sender,
	                            protocol 2: the default room in room */
	TCPCHAT_MSG_TEXT = 3,    /* chat text in body; s->c: sender, id, time
	                            set.  Protocol 2: room (a room message) or
	                            target (a private message to target) */
	TCPCHAT_MSG_JOIN = 4,    /* s->c: sender has joined (room: that room;
	                            code: its member count).  Protocol 2,
	                            c->s: join the room in room */
	TCPCHAT_MSG_LEAVE = 5,   /* s->c: sender has left, reason in code/body
	                            (room: parted only that room);
	                            c->s: quit, or (protocol 2) part the room
	                            in room, or the current room when room is
	                            empty and code is TCPCHAT_REASON_PART */
	TCPCHAT_MSG_ERROR =
	        6, /* error code (positive) in code, reason in body */
	TCPCHAT_MSG_PING = 7, /* either way; the peer answers with PONG */
	TCPCHAT_MSG_PONG = 8,
	TCPCHAT_MSG_WHO = 9,       /* c->s: who is here (protocol 2: in room)?
	                            s->c: code = number of users, body = their
	                            names, space-separated; room as asked */
	TCPCHAT_MSG_TOPIC = 10,    /* protocol 2.  c->s: set room's topic to
	                            body (empty: clear it).  s->c: room's topic
	                            is body, set by sender (empty: the server) */
	TCPCHAT_MSG_ROOMS = 11,    /* protocol 2.  c->s: list the rooms.  s->c:
	                            one per room (room, code = members, body =
	                            topic), then one without room that ends
	                            the list (code = number of rooms) */
	TCPCHAT_MSG_HISTORY = 12,  /* history (CAP_HISTORY).  c->s: ask for
	                            room's history (empty room: the current
	                            one): the latest code texts, those after
	                            seq (flag AFTER) or before seq (flag
	                            BEFORE); code 0: the server's default
	                            number.  s->c: the end of an answer (see
	                            tcpchat-protocol(7), "History") */
	TCPCHAT_MSG_ACK = 13,      /* CAP_HISTORY, s->c: the text the client
	                            sent with ref was accepted: room, seq,
	                            epoch (or target), id and timestamp are
	                            what it was given */
	TCPCHAT_MSG_KICK = 14,     /* protocol 2.  c->s: take target out of
	                            room, reason in body (cut at 256
	                            bytes); flag BAN also bans the name
	                            from the room, flag UNBAN lifts a ban
	                            (no kick).  The target and the members
	                            get a LEAVE with reason KICKED.  s->c:
	                            the acknowledgement of a KICK whose
	                            LEAVE the asker did not see (UNBAN, a
	                            BAN of a name not in the room, a room
	                            too big to announce parts): sender the
	                            asker, room, target, flags and body as
	                            asked */
	TCPCHAT_MSG_TYPE_MAX = 14, /* the highest type this version knows */
	/* A type a codec could not even number (e.g. an unknown JSON type
	 * name): never on the wire as a number. */
	TCPCHAT_MSG_UNKNOWN = 0x10000
};

/* tcpchat_msg.flags */
#define TCPCHAT_MSGF_CLOSING                                                   \
	0x1u /* ERROR: the sender closes the
                                     connection after this message */
#define TCPCHAT_MSGF_ECHO                                                      \
	0x2u /* s->c: a copy of the receiver's own
                                     message (a private message it sent) */
#define TCPCHAT_MSGF_DEFAULT_ROOM                                              \
	0x4u /* s->c: room is the server's
                                          default room */
#define TCPCHAT_MSGF_HISTORY                                                   \
	0x8u /* s->c TEXT: from the room's history,
                                     not live */
#define TCPCHAT_MSGF_AFTER                                                     \
	0x10u                     /* c->s HISTORY, JOIN, HELLO: what comes
                                     after seq (a resume) */
#define TCPCHAT_MSGF_BEFORE 0x20u /* c->s HISTORY: what comes before seq */
#define TCPCHAT_MSGF_GAP                                                       \
	0x40u /* s->c HISTORY: part of what was asked
                                     is no longer kept (see oldest) */
#define TCPCHAT_MSGF_BAN                                                       \
	0x80u /* KICK: kick and ban the name from
                                     the room */
#define TCPCHAT_MSGF_UNBAN                                                     \
	0x100u /* KICK: lift the name's ban (no
                                     kick) */

/* Capabilities, announced in HELLO (client) and WELCOME (server) in
 * tcpchat_msg.caps.  A peer uses a feature only when both announced it. */
#define TCPCHAT_CAP_BASE                                                       \
	0x1u /* error flags, limits in WELCOME, unknown
                                 types answered with a non-fatal error */
#define TCPCHAT_CAP_ROOMS                                                      \
	0x2u /* protocol 2: rooms, private messages,
                                  topics, the room list */
#define TCPCHAT_CAP_HISTORY                                                    \
	0x4u /* room sequence numbers, history,
                                    resume, acknowledgments (refs) */

/* Why a user left (code of a LEAVE message, reason of a LEAVE event). */
enum tcpchat_reason {
	TCPCHAT_REASON_QUIT = 1,     /* the user said goodbye (LEAVE) */
	TCPCHAT_REASON_CLOSED = 2,   /* the connection was closed by the peer */
	TCPCHAT_REASON_TIMEOUT = 3,  /* handshake or idle timeout */
	TCPCHAT_REASON_ERROR = 4,    /* protocol or I/O error */
	TCPCHAT_REASON_KICKED = 5,   /* removed by tcpchat_server_kick() */
	TCPCHAT_REASON_SHUTDOWN = 6, /* the server is shutting down */
	TCPCHAT_REASON_SLOW = 7, /* disconnected by the slow-consumer policy */
	TCPCHAT_REASON_PART = 8, /* protocol 2: left one room, by choice
	                                (LEAVE with a room) */
	TCPCHAT_REASON_LOST = 9  /* in a cluster: the user's server died or
	                            was cut off from the bus */
};

/* The two functions below name a value that travels on the wire, so they
 * take uint32_t, the type of the tcpchat_msg field that carries it
 * (type; code of a LEAVE).  An int such as an event's reason converts
 * without a cast; a negative one names nothing.  tcpchat_strerror()
 * takes int: library codes are negative ints (map the code of an ERROR
 * message with tcpchat_error_from_wire() first). */

/* Fixed lowercase word for a reason ("quit", "timeout", ...), or
 * "unknown" for a value that is not an enum tcpchat_reason; never NULL.
 * Thread-safe. */
TCPCHAT_API const char *tcpchat_reason_name(uint32_t reason);

/* Fixed lowercase word for a message type ("text", "join", ...), or NULL
 * for an unknown type (TCPCHAT_MSG_UNKNOWN included).  Thread-safe. */
TCPCHAT_API const char *tcpchat_msg_type_name(uint32_t type);

/* One message, as a view.  Received messages are filled by the library and
 * valid only during the callback.  Fields a type does not use are zero.
 *
 * Growth: messages are always allocated (and zeroed) by the library, so
 * new fields are only ever added at the end, and a codec says with its
 * abi which fields it knows (tcpchat/codec.h).  The fields marked
 * "reserved" are carried by the built-in codecs but not yet used by the
 * server; leave them zero. */
typedef struct tcpchat_msg {
	uint32_t type;      /* enum tcpchat_msg_type */
	uint32_t code;      /* HELLO/WELCOME: protocol version; ERROR: error
	                      code as a positive number; LEAVE: reason */
	uint64_t id;        /* server-assigned, increasing; 0 if none */
	int64_t timestamp;  /* server time, milliseconds since the Unix epoch */
	tcpchat_str sender; /* who: stamped by the server, never trusted from
	                       a client; HELLO: the requested name */
	tcpchat_str body;   /* TEXT: the text; ERROR/LEAVE: human reason */
	tcpchat_str room;   /* protocol 2: the room ("#name"), if any */
	tcpchat_str target; /* protocol 2: TEXT: the user a private message
	                       is addressed to; KICK: the user taken out */
	/* ---- since codec abi 2 ---- */
	uint32_t flags; /* TCPCHAT_MSGF_* */
	uint32_t reserved0;
	uint64_t caps;         /* HELLO, WELCOME: TCPCHAT_CAP_* bits */
	uint64_t max_frame;    /* WELCOME: largest frame the server accepts, in
	                       bytes (0: not said) */
	uint64_t queue_frames; /* WELCOME: frames the server queues for this */
	uint64_t queue_bytes;  /* client, and bytes (0: not said) */
	tcpchat_str ref;       /* c->s TEXT: the client's own reference,
	                          1..64 bytes, answered by an ACK (or an
	                          ERROR) carrying it */
	tcpchat_str cursor;    /* reserved: a position in a history */
	uint64_t seq;          /* TEXT to a room: its number in the room, from
	                       1 (protocol 2; tcpchat-protocol(7)) */
	uint64_t epoch;  /* with seq: the history it belongs to, never 0 */
	uint64_t first;  /* HISTORY s->c: the first and last seq served */
	uint64_t last;   /* (0 when none was) */
	uint64_t oldest; /* HISTORY s->c: the oldest seq the server still
	                    keeps for the room (its last seq + 1 when none) */
	uint64_t reserved;
} tcpchat_msg;

/* ---- Growable byte buffer (used by codecs to encode) ------------------ */

/* A buffer is owned by whoever holds the struct; start from all zeroes.
 * The functions below may be called from any thread, but not on the same
 * buffer from two threads at once. */

typedef struct tcpchat_buf {
	char *data; /* malloc'd; NULL while cap is 0 */
	size_t len; /* bytes in use */
	size_t cap; /* bytes allocated */
} tcpchat_buf;

/* Makes room for at least `extra` more bytes after len.  Returns 0, or
 * TCPCHAT_ENOMEM (the buffer is then unchanged). */
TCPCHAT_API int tcpchat_buf_reserve(tcpchat_buf *b, size_t extra);

/* Appends n bytes.  Returns 0, or TCPCHAT_ENOMEM (buffer unchanged). */
TCPCHAT_API int tcpchat_buf_append(tcpchat_buf *b, const void *p, size_t n);

/* Frees the storage and zeroes the buffer.  Accepts NULL. */
TCPCHAT_API void tcpchat_buf_free(tcpchat_buf *b);

/* ---- Logging ---------------------------------------------------------- */

/* The library never prints: log lines are handed to the object's event
 * handler as LOG events of one of these levels. */
enum tcpchat_log_level {
	TCPCHAT_LOG_ERROR = 0,
	TCPCHAT_LOG_WARN = 1,
	TCPCHAT_LOG_INFO = 2,
	TCPCHAT_LOG_DEBUG = 3
};

/* ---- Names ------------------------------------------------------------ */

#define TCPCHAT_NAME_MAX 32

/* Checks a user name: 1..TCPCHAT_NAME_MAX bytes of valid UTF-8 with no
 * space, no control character and no DEL.  Returns 0 or TCPCHAT_EBADNAME.
 * Thread-safe. */
TCPCHAT_API int tcpchat_name_check(const char *name, size_t len);

/* Bytes of a credential (a password) in a HELLO's body: a server
 * refuses a longer one, or one with a control character (C0, DEL, C1)
 * but TAB. */
#define TCPCHAT_CREDENTIAL_MAX 1024

/* ---- Rooms ------------------------------------------------------------ */

#define TCPCHAT_ROOM_MAX 64   /* bytes in a room name, '#' included */
#define TCPCHAT_TOPIC_MAX 256 /* bytes in a room topic */

/* Checks a room name: '#' followed by 1..63 bytes of valid UTF-8 with no
 * control character (C0, DEL, C1), no space of any kind (ASCII space,
 * U+00A0, U+1680, U+2000..U+200F, U+2028..U+202F, U+205F..U+206F,
 * U+3000, U+FEFF: spaces, invisible and direction-changing characters),
 * and no comma or colon.  Names compare byte for byte ("#Dev" and "#dev" are two
 * rooms).  Returns 0 or TCPCHAT_EBADROOM.  Thread-safe. */
TCPCHAT_API int tcpchat_room_check(const char *room, size_t len);

/* Returns 1 when p[0..len) is valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else 0.  Thread-safe. */
TCPCHAT_API int tcpchat_utf8_valid(const char *p, size_t len);

/* ---- TLS ----------------------------------------------------------------- */

/* What tcpchat_server_set_tls() and tcpchat_client_set_tls() read.  The
 * strings are file names (NUL-terminated), read by the call itself: the
 * library keeps none of these pointers.  TLS 1.2 and 1.3 only. */
typedef struct tcpchat_tls_config {
	/* PEM certificate chain (leaf first): required for a server; for a
	 * client, its own certificate, presented when the server asks
	 * (NULL: none). */
	const char *cert_file;
	/* PEM private key of cert_file (NULL: read from cert_file). */
	const char *key_file;
	/* PEM certificates of trusted CAs.  A client verifies the server's
	 * certificate against them (NULL: the system's store).  A server
	 * asks each client for a certificate and verifies it against them
	 * (NULL: it asks for none). */
	const char *ca_file;
	/* Client only: the name the server's certificate must carry, also
	 * sent as SNI.  NULL: the host of the address connected to (an IP
	 * address is then checked against the certificate's IP entries and
	 * no SNI is sent). */
	const char *server_name;
	int flags; /* TCPCHAT_TLS_* */
} tcpchat_tls_config;

/* Server with ca_file: a client without a valid certificate is refused
 * at the handshake (otherwise a certificate is optional, and one that
 * does not verify is refused). */
#define TCPCHAT_TLS_REQUIRE_CERT 0x1
/* Client: do not verify the server's certificate nor its name.  For
 * tests only: the connection is then open to any man in the middle. */
#define TCPCHAT_TLS_NO_VERIFY 0x2

/* Returns 1 when the library was built with TLS (OpenSSL), else 0.
 * Thread-safe. */
TCPCHAT_API int tcpchat_tls_available(void);

#ifdef __cplusplus
}
#endif

#endif
