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

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TCPCHAT_BUILDING) && defined(__GNUC__)
#define TCPCHAT_API __attribute__((visibility("default")))
#else
#define TCPCHAT_API
#endif

/* ---- Error codes ------------------------------------------------------ */

/* 0 is success; failures are negative.  The same numbers, made positive,
 * travel as the code of an ERROR message on the wire. */
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
	TCPCHAT_ENOTFOUND = -15, /* no such user */
	TCPCHAT_EADDR = -16,     /* address could not be parsed or resolved */
	TCPCHAT_EQUEUEFULL = -17, /* outgoing queue full, message not queued */
	TCPCHAT_ESHUTDOWN = -18, /* the server is shutting down */
	TCPCHAT_ENOTSUP = -19,   /* not supported by this build or backend */
	TCPCHAT_EBADMSG = -20,   /* message content refused (e.g. bad UTF-8) */
	TCPCHAT_EKICKED = -21,   /* disconnected by the server operator */
	TCPCHAT_ESLOW = -22      /* disconnected: too slow to read its messages */
};

/* Lowest (most negative) error code; every code in
 * [TCPCHAT_ERROR_MIN, 0] has a name. */
#define TCPCHAT_ERROR_MIN TCPCHAT_ESLOW

/* Returns a fixed, human-readable English string for an error code; never
 * NULL ("unknown error" for codes it does not know).  Thread-safe. */
TCPCHAT_API const char *tcpchat_strerror(int err);

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
 * codec.  A codec that meets a type it does not know reports an error. */
enum tcpchat_msg_type {
	TCPCHAT_MSG_HELLO = 1,   /* c->s: protocol version in code, name in sender */
	TCPCHAT_MSG_WELCOME = 2, /* s->c: handshake accepted, name in sender */
	TCPCHAT_MSG_TEXT = 3,    /* chat text in body; s->c: sender, id, time set */
	TCPCHAT_MSG_JOIN = 4,    /* s->c: sender has joined */
	TCPCHAT_MSG_LEAVE = 5,   /* s->c: sender has left, reason in code/body;
	                            c->s: the client is quitting */
	TCPCHAT_MSG_ERROR = 6,   /* error code (positive) in code, reason in body */
	TCPCHAT_MSG_PING = 7,    /* either way; the peer answers with PONG */
	TCPCHAT_MSG_PONG = 8,
	TCPCHAT_MSG_WHO = 9,     /* c->s: who is here?  s->c: code = number of
	                            users, body = their names, space-separated */
	TCPCHAT_MSG_TYPE_MAX = 9
};

/* Why a user left (code of a LEAVE message, reason of a LEAVE event). */
enum tcpchat_reason {
	TCPCHAT_REASON_QUIT = 1,     /* the user said goodbye (LEAVE) */
	TCPCHAT_REASON_CLOSED = 2,   /* the connection was closed by the peer */
	TCPCHAT_REASON_TIMEOUT = 3,  /* handshake or idle timeout */
	TCPCHAT_REASON_ERROR = 4,    /* protocol or I/O error */
	TCPCHAT_REASON_KICKED = 5,   /* removed by tcpchat_server_kick() */
	TCPCHAT_REASON_SHUTDOWN = 6, /* the server is shutting down */
	TCPCHAT_REASON_SLOW = 7      /* disconnected by the slow-consumer policy */
};

/* Fixed lowercase word for a reason ("quit", "timeout", ...); never NULL.
 * Thread-safe. */
TCPCHAT_API const char *tcpchat_reason_name(int reason);

/* Fixed lowercase word for a message type ("text", "join", ...), or NULL
 * for an unknown type.  Thread-safe. */
TCPCHAT_API const char *tcpchat_msg_type_name(int type);

/* One message, as a view.  Received messages are filled by the library and
 * valid only during the callback.  Fields a type does not use are zero.
 * The reserved fields keep room for later protocol fields; leave them
 * zero when you build a message yourself. */
typedef struct tcpchat_msg {
	uint32_t type;     /* enum tcpchat_msg_type */
	uint32_t code;     /* HELLO/WELCOME: protocol version; ERROR: error
	                      code as a positive number; LEAVE: reason */
	uint64_t id;       /* server-assigned, increasing; 0 if none */
	int64_t timestamp; /* server time, milliseconds since the Unix epoch */
	tcpchat_str sender; /* who: stamped by the server, never trusted from
	                       a client; HELLO: the requested name */
	tcpchat_str body;  /* TEXT: the text; ERROR/LEAVE: human reason */
	tcpchat_str room;  /* reserved for chat rooms; empty today */
	tcpchat_str target; /* reserved for private messages; empty today */
	uint64_t reserved[4];
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

/* Returns 1 when p[0..len) is valid UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else 0.  Thread-safe. */
TCPCHAT_API int tcpchat_utf8_valid(const char *p, size_t len);

#ifdef __cplusplus
}
#endif

#endif
