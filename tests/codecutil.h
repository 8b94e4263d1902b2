/* Helpers shared by the codec suites (test_codec.c, test_codec_rooms.c):
 * the built-in codecs by index, one checked decode call on an exact-size
 * copy of the input, field-by-field message comparison and hex input. */
#ifndef CODECUTIL_H
#define CODECUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <tcpchat/tcpchat.h>

#define MAX_FRAME 65536

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit)                                                                 \
	{                                                                      \
		(lit), sizeof(lit) - 1                                         \
	}
#define MSG(...)                                                               \
	{                                                                      \
		__VA_ARGS__                                                    \
	}

#define SRV TCPCHAT_FROM_SERVER
#define HSK TCPCHAT_HANDSHAKE

/* The built-in codecs, in the order cu_codec() returns them. */
enum { C_BINARY, C_LINE, C_JSON, C_COUNT };

const tcpchat_codec *cu_codec(int i);

/* One decode call on an exact-size heap copy of the input (so that the
 * sanitizers catch reads past the end), with a scratch buffer of exactly
 * the guaranteed minimum size. */
struct cu_dec {
	tcpchat_msg msg;
	tcpchat_decode_ctx ctx;
	char *copy;
	char *scratch;
	long rc;
};

long cu_dec_run(struct cu_dec *d, const tcpchat_codec *c, const void *data,
                size_t len, unsigned flags, size_t max_frame);
void cu_dec_free(struct cu_dec *d);

/* 1 if a and b hold the same bytes. */
int cu_str_eq(tcpchat_str a, tcpchat_str b);

/* Assert that field of the message what is want. */
void cu_check_str(const char *what, const char *field, tcpchat_str got,
                  tcpchat_str want);
void cu_check_u64(const char *what, const char *field, uint64_t got,
                  uint64_t want);
/* Assert that every field of got is as in want. */
void cu_check_msg(const char *what, const tcpchat_msg *got,
                  const tcpchat_msg *want);

/* ---- the line codec ---- */

/* A line form: the message in, encoded with flags enc, is exactly line;
 * decoded with flags dec, line is back. */
struct cu_form {
	unsigned enc, dec;
	tcpchat_msg in;
	const char *line;
	tcpchat_msg back;
};

/* Asserts the form f (the i-th of its table, for failures), and that back
 * is written as line again. */
void cu_line_form(const struct cu_form *f, int i);

/* The line codec refuses the server line in (TCPCHAT_EPROTO, with an
 * error text and an empty message). */
void cu_line_bad_server_line(const char *in);

/* A message the line codec refuses to encode with flags. */
struct cu_bad_enc {
	unsigned flags;
	tcpchat_msg msg;
	const char *what;
};

/* Asserts TCPCHAT_EINVAL, the buffer left as it was. */
void cu_line_einval(const struct cu_bad_enc *e);

/* The bytes of a hex dump ("01 0a ..."; spaces and newlines skipped) in
 * out[0..cap): returns how many. */
size_t cu_from_hex(const char *hex, unsigned char *out, size_t cap);

#endif
