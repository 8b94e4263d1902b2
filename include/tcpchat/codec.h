/* libtcpchat - codecs: how messages become bytes on the wire.
 * SPDX-License-Identifier: MIT
 *
 * A codec is a table of functions that turn a tcpchat_msg into bytes and
 * bytes back into a tcpchat_msg.  Codecs know nothing about sockets.  Three
 * are built in (tcpchat_codec_binary, _line and _json); a program may
 * supply its own by filling a struct tcpchat_codec and passing it to
 * tcpchat_server_listen() or tcpchat_client_set_codec().
 *
 * Codecs are stateless: the functions may be called for many connections
 * and must not keep per-connection state (what they need to know about
 * the connection is in tcpchat_decode_ctx).  decode is only called on the
 * thread that drives the server or client that uses it; encode may also
 * be called by tcpchat_client_send() on the caller's thread, so it must
 * be reentrant (the built-in codecs are).
 */
#ifndef TCPCHAT_CODEC_H
#define TCPCHAT_CODEC_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Value of tcpchat_codec.abi for this header.  The library accepts any
 * codec whose abi is between 1 and this value: an abi-1 codec knows the
 * tcpchat_msg fields up to `target` (the rest reach it zeroed and are
 * ignored when it encodes), abi 2 every field of this header. */
#define TCPCHAT_CODEC_ABI 2

/* Direction and state flags, passed to encode and (in
 * tcpchat_decode_ctx.flags) to decode. */
#define TCPCHAT_FROM_SERVER 0x1u /* bytes go from a server to a client */
#define TCPCHAT_HANDSHAKE                                                      \
	0x2u /* the handshake is not over.  Decode,
                                    without FROM_SERVER: bytes from a
                                    client that has not sent its HELLO
                                    yet; with FROM_SERVER: bytes a client
                                    receives before the WELCOME.  Encode
                                    (with FROM_SERVER, only for a codec
                                    with TCPCHAT_CODEC_GREET): the
                                    greeting, see below */

/* tcpchat_codec.flags */
#define TCPCHAT_CODEC_NO_PING                                                  \
	0x1u /* peers are people (e.g. nc): the server
                                      sends them no PING and never closes
                                      them for being silent; it turns on
                                      TCP keepalive instead, so that a
                                      peer that is gone is noticed (see
                                      TCPCHAT_SOPT_IDLE_TIMEOUT) */
#define TCPCHAT_CODEC_GREET                                                    \
	0x2u /* peers are people: the server greets
                                      every new connection at once, before
                                      it sends anything, with a notice (a
                                      TEXT without sender, room or target)
                                      that it encodes with
                                      TCPCHAT_FROM_SERVER |
                                      TCPCHAT_HANDSHAKE.  The encoder may
                                      refuse it (then nothing is sent);
                                      its decoder must skip it */

/* Passed to decode by the library. */
typedef struct tcpchat_decode_ctx {
	unsigned flags;     /* TCPCHAT_FROM_SERVER, TCPCHAT_HANDSHAKE */
	size_t max_frame;   /* a frame longer than this must be refused with
	                      TCPCHAT_EMSGSIZE, as soon as that is known */
	char *scratch;      /* writable memory the codec may use for decoded
	                      strings (e.g. unescaped JSON); valid until the
	                      decoded message has been handled */
	size_t scratch_len; /* at least min(len, max_frame) bytes */
	const char *error;  /* out: on error, a fixed human-readable reason */
	/* ---- since codec abi 2 (older codecs leave it 0) ---- */
	size_t need; /* out, when returning 0: the frame needs at least
	                      this many bytes in all (0: unknown); the library
	                      does not call again before it has them */
} tcpchat_decode_ctx;

typedef struct tcpchat_codec {
	unsigned abi;     /* TCPCHAT_CODEC_ABI */
	const char *name; /* short lowercase name, e.g. "binary" */
	unsigned flags;   /* TCPCHAT_CODEC_* */

	/* Appends exactly one encoded frame for msg to out; flags is 0,
	 * TCPCHAT_FROM_SERVER, or for the greeting of a codec with
	 * TCPCHAT_CODEC_GREET TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE.
	 * Must not change the bytes already in out.
	 * Returns 0, TCPCHAT_ENOMEM, or TCPCHAT_EINVAL when msg cannot be
	 * expressed by this codec (out is then unchanged). */
	int (*encode)(void *codec_data, const tcpchat_msg *msg, unsigned flags,
	              tcpchat_buf *out);

	/* Tries to decode one frame from data[0..len).  Must never read at or
	 * past data[len].  Decodes any message type, including types this
	 * header does not know (the protocol layer judges them).  Returns:
	 *   > 0  the number of bytes of the frame, *out is filled; its strings
	 *        point into data or ctx->scratch.  A frame that carries no
	 *        message (e.g. an empty line) leaves out->type 0 and is
	 *        skipped;
	 *   0    the frame is incomplete: call again with more bytes (the
	 *        library then refuses frames that outgrow ctx->max_frame);
	 *   < 0  TCPCHAT_EPROTO or TCPCHAT_EMSGSIZE, with ctx->error set.
	 * *out is zeroed by the library before each call.  The connection
	 * is closed after an error. */
	long (*decode)(void *codec_data, const char *data, size_t len,
	               tcpchat_msg *out, tcpchat_decode_ctx *ctx);

	void *codec_data; /* passed to encode and decode */
} tcpchat_codec;

/* The built-in codecs.  Each returns a pointer to a static, read-only
 * codec that lives as long as the program; never NULL.  Thread-safe.
 *
 * binary: length-prefixed, versioned binary frames (the default).  Layout
 * in tcpchat-protocol(7). */
TCPCHAT_API const tcpchat_codec *tcpchat_codec_binary(void);

/* line: one message per line of UTF-8 text, for people using nc or
 * telnet.  Its flags are TCPCHAT_CODEC_NO_PING and TCPCHAT_CODEC_GREET:
 * it writes the greeting as "=== BODY", where BODY must start with a
 * word that ends in ':', and its decoder skips such lines (and, with
 * TCPCHAT_HANDSHAKE, every "=== " line but the welcome).  Layout in
 * tcpchat-protocol(7). */
TCPCHAT_API const tcpchat_codec *tcpchat_codec_line(void);

/* json: JSON Lines, one JSON object per line. */
TCPCHAT_API const tcpchat_codec *tcpchat_codec_json(void);

/* Looks up a built-in codec by name ("binary", "line", "json").  Returns
 * NULL for an unknown name.  Thread-safe. */
TCPCHAT_API const tcpchat_codec *tcpchat_codec_find(const char *name);

#ifdef __cplusplus
}
#endif

#endif
