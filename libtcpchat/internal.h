/* libtcpchat - helpers shared by the library's sources (not installed). */
#ifndef TCPCHAT_INTERNAL_H
#define TCPCHAT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tcpchat_config.h"
#include <tcpchat/tcpchat.h>

#define TC_UNUSED(x) ((void)(x))
#define TC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TC_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define TC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TC_PRINTF(a, b)
#endif

/* Monotonic clock in milliseconds, and wall clock in ms since the epoch. */
int64_t util__now_ms(void);
int64_t util__now_us(void);
int64_t util__wall_ms(void);

/* Byte order helpers for big-endian wire fields. */
static inline void util__put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}
static inline void util__put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}
static inline void util__put_u64(unsigned char *p, uint64_t v)
{
	util__put_u32(p, (uint32_t)(v >> 32));
	util__put_u32(p + 4, (uint32_t)v);
}
static inline uint16_t util__get_u16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t util__get_u32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline uint64_t util__get_u64(const unsigned char *p)
{
	return ((uint64_t)util__get_u32(p) << 32) | util__get_u32(p + 4);
}

/* Which objects' handlers run on this thread, innermost first, so that
 * run/step/join can refuse to be called from inside a callback of the
 * same object.  A call from another thread while the loop thread is in a
 * callback is not recursion. */
struct util_cb {
	const void *obj;
	struct util_cb *up;
};
void util__cb_enter(struct util_cb *f, const void *obj);
void util__cb_leave(struct util_cb *f);
int util__in_callback(const void *obj);

/* 1 when p[0..n) is acceptable text: non-empty, valid UTF-8, no control
 * character but TAB (C0, DEL and C1 are refused).  The check of reasons
 * and topics. */
int util__text_ok(const char *p, size_t n);

/* 1 when p[0..n) holds nothing but spaces and tabs (or nothing). */
int util__blank(const char *p, size_t n);

/* 1 when p[0..n) is acceptable as the body of a TEXT (chat text):
 * util__text_ok() and not blank, so that a message of only spaces and
 * tabs is refused like an empty one (the protocol rule, for every codec
 * and for the server's and the client's own texts). */
int util__chat_text_ok(const char *p, size_t n);

/* The length of the longest prefix of p[0..n), at most max bytes, that
 * ends on a UTF-8 character boundary (p is valid UTF-8). */
size_t util__utf8_cut(const char *p, size_t n, size_t max);

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid or
 * truncated within n bytes. */
size_t util__utf8_seq(const unsigned char *p, size_t n);

/* Sets O_NONBLOCK and FD_CLOEXEC.  0, or -1 with errno. */
int util__nonblock_cloexec(int fd);

/* Integer options kept as long long fields of an object, described by a
 * table: set checks the range, get reads. */
struct util_opt {
	int id;
	size_t off; /* offsetof the long long field */
	long long min, max;
};
/* Returns the table row for id, or NULL. */
const struct util_opt *util__opt_find(const struct util_opt *t, size_t n,
                                      int id);
int util__opt_set(void *obj, const struct util_opt *t, size_t n, int id,
                  long long value);
int util__opt_get(const void *obj, const struct util_opt *t, size_t n, int id,
                  long long *value);

/* SipHash-1-3 of data[0..len) under a 128-bit key (hash.c). */
uint64_t util__siphash(const uint64_t key[2], const void *data, size_t len);
/* A fresh random key, from /dev/urandom (else the clock). */
void util__random_key(uint64_t key[2]);

/* Wire codes and the protocol rules shared by server and client
 * (proto.c). */
int proto__known_type(uint32_t type);
/* 1 for the ERROR codes after which a server that announced no
 * capabilities (protocol 1, or the line codec) closes the connection. */
int proto__legacy_fatal(uint32_t wire_code);
#endif
