/* libtcpchat - error strings, version, byte buffers, UTF-8 and names. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const char *const error_names[] = {
        [0] = "success",
        [1] = "invalid argument",
        [2] = "out of memory",
        [3] = "system call failed (see errno)",
        [4] = "protocol error",
        [5] = "message too large",
        [6] = "connection closed",
        [7] = "timed out",
        [8] = "name already in use",
        [9] = "invalid name (1-32 bytes of printable UTF-8, no spaces)",
        [10] = "server full",
        [11] = "refused",
        [12] = "unsupported protocol version",
        [13] = "not allowed in the current state",
        [14] = "not allowed from inside a callback",
        [15] = "no such user",
        [16] = "invalid or unresolvable address",
        [17] = "outgoing queue full",
        [18] = "server shutting down",
        [19] = "not supported",
        [20] = "invalid message content",
        [21] = "kicked",
        [22] = "too slow to keep up",
        [23] = "error reported by the server",
        [24] = "unknown message type",
        [25] = "invalid room name: '#' and 1-63 bytes, no space , or :",
        [26] = "not a member of that room",
        [27] = "too many rooms",
        [28] = "sending too fast",
        [29] = "TLS failed",
        [30] = "the cluster bus cannot be reached",
};

TCPCHAT_API const char *tcpchat_strerror(int err)
{
	if (err > 0 || err < TCPCHAT_ERROR_MIN)
		return "unknown error";
	return error_names[-err];
}

TCPCHAT_API const char *tcpchat_version(int *num)
{
	if (num)
		*num = TCPCHAT_VERSION_NUM;
	return TCPCHAT_VERSION_STRING;
}

TCPCHAT_API const char *tcpchat_reason_name(uint32_t reason)
{
	static const char *const names[] = {
	        "unknown", "quit",     "closed", "timeout", "error",
	        "kicked",  "shutdown", "slow",   "part",    "lost",
	};
	if (reason >= TC_ARRAY_LEN(names))
		return "unknown";
	return names[reason];
}

TCPCHAT_API const char *tcpchat_msg_type_name(uint32_t type)
{
	static const char *const names[] = {
	        NULL,    "hello", "welcome", "text", "join",
	        "leave", "error", "ping",    "pong", "who",
	        "topic", "rooms", "history", "ack",  "kick",
	};
	if (type >= TC_ARRAY_LEN(names))
		return NULL;
	return names[type];
}

TCPCHAT_API int tcpchat_buf_reserve(tcpchat_buf *b, size_t extra)
{
	if (!b)
		return TCPCHAT_EINVAL;
	if (b->cap - b->len >= extra)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		return TCPCHAT_ENOMEM;
	size_t need = b->len + extra;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return TCPCHAT_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

TCPCHAT_API int tcpchat_buf_append(tcpchat_buf *b, const void *p, size_t n)
{
	int rc = tcpchat_buf_reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

TCPCHAT_API void tcpchat_buf_free(tcpchat_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

size_t util__utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0; /* no overlongs */
		if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F; /* max U+10FFFF */
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

TCPCHAT_API int tcpchat_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	if (len && !s)
		return 0;
	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = util__utf8_seq(p + i, len - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

static _Thread_local struct util_cb *cb_top;

void util__cb_enter(struct util_cb *f, const void *obj)
{
	f->obj = obj;
	f->up = cb_top;
	cb_top = f;
}

void util__cb_leave(struct util_cb *f)
{
	cb_top = f->up;
}

int util__in_callback(const void *obj)
{
	for (const struct util_cb *f = cb_top; f; f = f->up)
		if (f->obj == obj)
			return 1;
	return 0;
}

int util__text_ok(const char *p, size_t n)
{
	if (!p || n == 0 || !tcpchat_utf8_valid(p, n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7F)
			return 0;
		/* C1 controls, U+0080..U+009F (U+009B is a terminal's CSI) */
		if (ch == 0xC2 && (unsigned char)p[i + 1] < 0xA0)
			return 0;
	}
	return 1;
}

int util__blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return 0;
	return 1;
}

int util__chat_text_ok(const char *p, size_t n)
{
	return util__text_ok(p, n) && !util__blank(p, n);
}

size_t util__utf8_cut(const char *p, size_t n, size_t max)
{
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
		n--;
	return n;
}

TCPCHAT_API int tcpchat_name_check(const char *name, size_t len)
{
	if (!name || len == 0 || len > TCPCHAT_NAME_MAX)
		return TCPCHAT_EBADNAME;
	const unsigned char *p = (const unsigned char *)name;
	for (size_t i = 0; i < len;) {
		if (p[i] < 0x80) {
			if (p[i] <= 0x20 || p[i] == 0x7F)
				return TCPCHAT_EBADNAME;
			i++;
			continue;
		}
		size_t k = util__utf8_seq(p + i, len - i);
		if (!k)
			return TCPCHAT_EBADNAME;
		/* C1 controls U+0080..U+009F and NBSP U+00A0 */
		if (p[i] == 0xC2 && p[i + 1] <= 0xA0)
			return TCPCHAT_EBADNAME;
		i += k;
	}
	return 0;
}

/* 1 when the code point c may not appear in a room name: controls,
 * spaces, invisible and direction-changing characters, and the comma and
 * colon that separate names and text in the line forms (as in IRC). */
static int room_cp_bad(uint32_t c)
{
	return c <= 0x20 || c == ',' || c == ':' || (c >= 0x7F && c <= 0xA0) ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200F) ||
	       (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F) ||
	       c == 0x3000 || c == 0xFEFF;
}

TCPCHAT_API int tcpchat_room_check(const char *room, size_t len)
{
	if (!room || len < 2 || len > TCPCHAT_ROOM_MAX || room[0] != '#')
		return TCPCHAT_EBADROOM;
	const unsigned char *p = (const unsigned char *)room;
	for (size_t i = 1; i < len;) {
		size_t k = p[i] < 0x80 ? 1 : util__utf8_seq(p + i, len - i);
		if (!k)
			return TCPCHAT_EBADROOM;
		uint32_t c = p[i];
		if (k == 2)
			c = ((c & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu);
		else if (k == 3)
			c = ((c & 0x0Fu) << 12) | ((p[i + 1] & 0x3Fu) << 6) |
			    (p[i + 2] & 0x3Fu);
		else if (k == 4)
			c = 0x10000; /* nothing above U+FFFF is refused */
		if (room_cp_bad(c))
			return TCPCHAT_EBADROOM;
		i += k;
	}
	return 0;
}

int64_t util__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util__now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util__wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int util__nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -1;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -1;
	return 0;
}

const struct util_opt *util__opt_find(const struct util_opt *t, size_t n,
                                      int id)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].id == id)
			return &t[i];
	return NULL;
}

int util__opt_set(void *obj, const struct util_opt *t, size_t n, int id,
                  long long value)
{
	const struct util_opt *o = obj ? util__opt_find(t, n, id) : NULL;
	if (!o || value < o->min || value > o->max)
		return TCPCHAT_EINVAL;
	*(long long *)(void *)((char *)obj + o->off) = value;
	return 0;
}

int util__opt_get(const void *obj, const struct util_opt *t, size_t n, int id,
                  long long *value)
{
	const struct util_opt *o =
	        obj && value ? util__opt_find(t, n, id) : NULL;
	if (!o)
		return TCPCHAT_EINVAL;
	*value = *(const long long *)(const void *)((const char *)obj + o->off);
	return 0;
}
