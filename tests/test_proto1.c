/* Protocol-1 compatibility of the protocol-2 server: the binary examples
 * of tcpchat-protocol(7) replayed byte for byte, the JSON Lines session
 * of its EXAMPLES, and what a protocol-1 client sees of a server whose
 * other users speak protocol 2: the default room only, no TOPIC or ROOMS
 * frames, and JOIN, LEAVE and TEXT frames without room, target or
 * flags.  The protocol-2 binary examples of the page are replayed too. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roomutil.h"

/* ---- binary frames ------------------------------------------------------ */

struct frame {
	unsigned char b[2048];
	size_t n;
};

static void put(struct frame *f, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		f->b[f->n++] = (unsigned char)(v >> (8 * i));
}

/* The header of a binary frame; f_end() sets its length. */
static void f_begin(struct frame *f, uint8_t type, uint16_t flags, uint64_t id,
                    int64_t ts, uint32_t code)
{
	f->n = 0;
	put(f, 0, 4);
	put(f, 1, 1);
	put(f, type, 1);
	put(f, flags, 2);
	put(f, id, 8);
	put(f, (uint64_t)ts, 8);
	put(f, code, 4);
}

static void f_str(struct frame *f, uint8_t tag, const char *s)
{
	size_t n = strlen(s);
	put(f, tag, 1);
	put(f, n, 4);
	memcpy(f->b + f->n, s, n);
	f->n += n;
}

static void f_num(struct frame *f, uint8_t tag, uint64_t v)
{
	put(f, tag, 1);
	put(f, 8, 4);
	put(f, v, 8);
}

static void f_end(struct frame *f)
{
	uint64_t len = f->n - 4;
	for (int i = 0; i < 4; i++)
		f->b[i] = (unsigned char)(len >> (8 * (3 - i)));
}

/* Bytes from the hex dumps of the manual page. */
static void f_hex(struct frame *f, const char *hex)
{
	f->n = 0;
	unsigned v;
	int k;
	while (sscanf(hex, " %2x%n", &v, &k) == 1) {
		f->b[f->n++] = (unsigned char)v;
		hex += k;
	}
}

/* Overwrites the id and timestamp of a frame. */
static void f_stamp(struct frame *f, uint64_t id, int64_t ts)
{
	size_t n = f->n;
	f->n = 8;
	put(f, id, 8);
	put(f, (uint64_t)ts, 8);
	f->n = n;
}

static char *hexdump(const unsigned char *b, size_t n)
{
	static char out[2][8192];
	static int which;
	char *o = out[which ^= 1];
	size_t k = 0;
	for (size_t i = 0; i < n && k + 4 < sizeof out[0]; i++)
		k += (size_t)snprintf(o + k, sizeof out[0] - k, "%02x ", b[i]);
	o[k] = '\0';
	return o;
}

/* The raw bytes of a frame received must be exactly want. */
static void same_bytes(const unsigned char *raw, size_t n,
                       const struct frame *want)
{
	ck_assert_msg(n == want->n && memcmp(raw, want->b, n) == 0,
	              "got  %s\nwant %s", hexdump(raw, n),
	              hexdump(want->b, want->n));
}

/* Receives the next frame on a protocol-1 peer, raw: every frame it gets
 * must be one protocol 1 knows, without room, target or (except the
 * closing flag of an ERROR to a peer with capability 0x1) flags. */
static int v1_recv(struct tu_peer *p, struct tu_msg *m, unsigned char *raw,
                   size_t *n)
{
	int rc = tu_peer_recv_raw(p, m, raw, 2048, n, TU_TIMEOUT);
	if (rc != 1)
		return rc;
	ck_assert_msg(m->type >= TCPCHAT_MSG_HELLO &&
	                      m->type <= TCPCHAT_MSG_WHO,
	              "a protocol-1 peer got a message of type %u", m->type);
	ck_assert_msg(m->room_len == 0 && m->target_len == 0,
	              "a protocol-1 peer got room '%s' target '%s' in a %s",
	              m->room, m->target, tcpchat_msg_type_name(m->type));
	if (m->type != TCPCHAT_MSG_ERROR)
		ck_assert_msg(m->flags == 0,
		              "a protocol-1 peer got flags %#x in a %s",
		              m->flags, tcpchat_msg_type_name(m->type));
	if (m->type == TCPCHAT_MSG_JOIN)
		ck_assert_uint_eq(m->code, 0);
	return 1;
}

/* Receives (checked as by v1_recv) until a message of type from sender
 * (NULL: anyone) arrives. */
static void v1_from(struct tu_peer *p, uint32_t type, const char *sender,
                    struct tu_msg *m, unsigned char *raw, size_t *n)
{
	for (;;) {
		int rc = v1_recv(p, m, raw, n);
		ck_assert_msg(rc == 1, "waiting for a %s: rc %d",
		              tcpchat_msg_type_name(type), rc);
		if (m->type == type && (!sender || !strcmp(m->sender, sender)))
			return;
	}
}

static void v1_want(struct tu_peer *p, uint32_t type, struct tu_msg *m,
                    unsigned char *raw, size_t *n)
{
	v1_from(p, type, NULL, m, raw, n);
}

/* Every frame up to the server notice marker, checked by v1_recv():
 * returns how many came before it.  The notice itself must be a
 * protocol-1 TEXT frame. */
static int v1_upto(struct tu_peer *p, const char *marker)
{
	struct tu_msg m;
	unsigned char raw[2048];
	size_t n;
	int k = 0;
	for (;;) {
		int rc = v1_recv(p, &m, raw, &n);
		ck_assert_msg(rc == 1, "no marker '%s': rc %d", marker, rc);
		if (m.type == TCPCHAT_MSG_TEXT && m.sender[0] == '\0' &&
		    strcmp(m.body, marker) == 0) {
			struct frame f;
			if (p->codec == tcpchat_codec_json()) {
				f.n = (size_t)snprintf(
				        (char *)f.b, sizeof f.b,
				        "{\"type\":\"text\",\"id\":%llu,"
				        "\"ts\":%lld,\"body\":\"%s\"}\n",
				        (unsigned long long)m.id,
				        (long long)m.timestamp, marker);
			} else {
				f_begin(&f, TCPCHAT_MSG_TEXT, 0, m.id,
				        m.timestamp, 0);
				f_str(&f, 2, marker);
				f_end(&f);
			}
			same_bytes(raw, n, &f);
			return k;
		}
		k++;
	}
}

static void v1(struct tu_peer *p, int port, const char *name, uint64_t caps)
{
	int rc = tu_peer_login(p, port, tcpchat_codec_binary(), name, 1, caps,
	                       NULL);
	ck_assert_msg(rc == 0, "login of %s: %d", name, rc);
}

/* The examples of tcpchat-protocol(7), "ENCODINGS", "Binary". */
static const char hello_alice[] =
        "00 00 00 22 01 01 00 00  00 00 00 00 00 00 00 00"
        "00 00 00 00 00 00 00 00  00 00 00 01 01 00 00 00"
        "05 61 6c 69 63 65";
static const char text_hi[] = "00 00 00 29 01 03 00 00  00 00 00 00 00 00 00 2a"
                              "00 00 01 8b cf e5 68 00  00 00 00 00 01 00 00 00"
                              "05 61 6c 69 63 65 02 00  00 00 02 68 69";
static const char who_request[] =
        "00 00 00 18 01 09 00 00  00 00 00 00 00 00 00 00"
        "00 00 00 00 00 00 00 00  00 00 00 00";
static const char welcome_caps[] =
        "00 00 00 3c 01 02 00 00  00 00 00 00 00 00 00 00"
        "00 00 00 00 00 00 00 00  00 00 00 01 01 00 00 00"
        "05 61 6c 69 63 65 10 00  00 00 08 00 00 00 00 00"
        "00 00 01 11 00 00 00 08  00 00 00 00 00 01 00 00";
static const char error_idle[] =
        "00 00 00 29 01 06 00 01  00 00 00 00 00 00 00 00"
        "00 00 00 00 00 00 00 00  00 00 00 07 02 00 00 00"
        "0c 69 64 6c 65 20 74 69  6d 65 6f 75 74";

/* ---- the examples -------------------------------------------------------- */

START_TEST(examples_decode_as_documented)
{
	/* the hex dumps are what the binary codec itself writes */
	struct frame f;
	tcpchat_buf b = {0};
	tcpchat_msg m = {.type = TCPCHAT_MSG_HELLO, .code = 1};
	m.sender.ptr = "alice";
	m.sender.len = 5;
	ck_assert_int_eq(tcpchat_codec_binary()->encode(NULL, &m, 0, &b), 0);
	f_hex(&f, hello_alice);
	ck_assert_uint_eq(f.n, 38);
	same_bytes((unsigned char *)b.data, b.len, &f);
	b.len = 0;
	memset(&m, 0, sizeof m);
	m.type = TCPCHAT_MSG_TEXT;
	m.id = 42;
	m.timestamp = 1700000000000LL;
	m.sender.ptr = "alice";
	m.sender.len = 5;
	m.body.ptr = "hi";
	m.body.len = 2;
	ck_assert_int_eq(tcpchat_codec_binary()->encode(
	                         NULL, &m, TCPCHAT_FROM_SERVER, &b),
	                 0);
	f_hex(&f, text_hi);
	same_bytes((unsigned char *)b.data, b.len, &f);
	f_hex(&f, who_request);
	ck_assert_uint_eq(f.n, 28);
	f_hex(&f, welcome_caps);
	ck_assert_uint_eq(f.n, 64);
	f_hex(&f, error_idle);
	ck_assert_uint_eq(f.n, 45);
	tcpchat_buf_free(&b);
}
END_TEST

START_TEST(hello_example_gets_a_protocol_1_welcome)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, s;
	struct tu_msg m;
	unsigned char raw[2048];
	size_t n;
	struct frame f;
	/* the default room has a topic: protocol 1 never hears of it */
	ru_login_bin(&s, port, "setter");
	ru_send_topic(&s, "#lobby", "a topic");
	ru_want(&s, TCPCHAT_MSG_TOPIC, "setter", NULL, &m);

	ck_assert_int_eq(tu_peer_connect(&a, port, tcpchat_codec_binary(), 0),
	                 0);
	f_hex(&f, hello_alice);
	ck_assert_int_eq(tu_peer_send_raw(&a, f.b, f.n), 0);
	ck_assert_int_eq(v1_recv(&a, &m, raw, &n), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_WELCOME);
	ck_assert_int_gt(m.timestamp, 1600000000000LL);
	f_begin(&f, TCPCHAT_MSG_WELCOME, 0, 0, m.timestamp, 1);
	f_str(&f, 1, "alice");
	f_end(&f);
	same_bytes(raw, n, &f);
	/* nothing follows the WELCOME: no TOPIC */
	ru_mark(srv, "m");
	ck_assert_int_eq(v1_upto(&a, "m"), 0);
	/* and the protocol-2 users saw alice join the default room */
	ru_want(&s, TCPCHAT_MSG_JOIN, "alice", NULL, &m);
	ck_assert_str_eq(m.room, "#lobby");
	ck_assert_uint_eq(m.code, 2);
	RU_FINISH(srv, &a, &s);
}
END_TEST

START_TEST(welcome_example_with_capability_1)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a;
	struct tu_msg m;
	unsigned char raw[2048];
	size_t n;
	struct frame f;
	/* the HELLO of the example, with caps 1 */
	f_hex(&f, hello_alice);
	f_num(&f, 16, TCPCHAT_CAP_BASE);
	f_end(&f);
	ck_assert_int_eq(tu_peer_connect(&a, port, tcpchat_codec_binary(), 0),
	                 0);
	ck_assert_int_eq(tu_peer_send_raw(&a, f.b, f.n), 0);
	ck_assert_int_eq(v1_recv(&a, &m, raw, &n), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_WELCOME);
	/* the example, with the server's time and the queue limits that
	 * follow max_frame */
	f_hex(&f, welcome_caps);
	f_stamp(&f, 0, m.timestamp);
	f_num(&f, 18, 1024);
	f_num(&f, 19, 1048576);
	f_end(&f);
	same_bytes(raw, n, &f);
	tu_peer_close(&a);
	tu_server_stop(srv);
}
END_TEST

START_TEST(text_example_byte_for_byte)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	unsigned char raw[2048];
	size_t n;
	struct frame f;
	v1(&b, port, "bob", 0);
	v1(&c, port, "carol", TCPCHAT_CAP_BASE);
	/* alice speaks protocol 2 */
	ru_login_bin(&a, port, "alice");
	struct tu_peer *v1s[2] = {&b, &c};
	for (int i = 0; i < 2; i++) {
		v1_from(v1s[i], TCPCHAT_MSG_JOIN, "alice", &m, raw, &n);
		f_begin(&f, TCPCHAT_MSG_JOIN, 0, m.id, m.timestamp, 0);
		f_str(&f, 1, "alice");
		f_end(&f);
		same_bytes(raw, n, &f);
	}
	ck_assert_int_eq(tu_peer_send_text(&a, "hi"), 0);
	for (int i = 0; i < 2; i++) {
		v1_want(v1s[i], TCPCHAT_MSG_TEXT, &m, raw, &n);
		f_hex(&f, text_hi);
		f_stamp(&f, m.id, m.timestamp);
		same_bytes(raw, n, &f);
	}
	/* named room, the default one: the same frame */
	ru_send_room(&a, "#lobby", "hi");
	for (int i = 0; i < 2; i++) {
		v1_want(v1s[i], TCPCHAT_MSG_TEXT, &m, raw, &n);
		f_hex(&f, text_hi);
		f_stamp(&f, m.id, m.timestamp);
		same_bytes(raw, n, &f);
	}
	/* alice goes: LEAVE, reason closed, no room */
	tu_peer_close(&a);
	for (int i = 0; i < 2; i++) {
		v1_want(v1s[i], TCPCHAT_MSG_LEAVE, &m, raw, &n);
		f_begin(&f, TCPCHAT_MSG_LEAVE, 0, m.id, m.timestamp,
		        TCPCHAT_REASON_CLOSED);
		f_str(&f, 1, "alice");
		f_end(&f);
		same_bytes(raw, n, &f);
	}
	/* a protocol-1 alice: the same bytes */
	v1(&a, port, "alice", 0);
	ck_assert_int_eq(tu_peer_send_text(&a, "hi"), 0);
	v1_want(&b, TCPCHAT_MSG_TEXT, &m, raw, &n);
	f_hex(&f, text_hi);
	f_stamp(&f, m.id, m.timestamp);
	same_bytes(raw, n, &f);
	/* a quit */
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_LEAVE, 0, NULL, NULL, NULL), 0);
	v1_want(&b, TCPCHAT_MSG_LEAVE, &m, raw, &n);
	f_begin(&f, TCPCHAT_MSG_LEAVE, 0, m.id, m.timestamp,
	        TCPCHAT_REASON_QUIT);
	f_str(&f, 1, "alice");
	f_end(&f);
	same_bytes(raw, n, &f);
	ck_assert_int_eq(tu_peer_wait_closed(&a, TU_TIMEOUT), 1);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

START_TEST(who_example_byte_for_byte)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer a, b, c;
	struct tu_msg m;
	unsigned char raw[2048];
	size_t n;
	struct frame f;
	v1(&a, port, "alice", 0);
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	/* carol is in no room of alice's */
	ru_send_join(&c, "#dev");
	ru_want(&c, TCPCHAT_MSG_JOIN, "carol", NULL, &m);
	ck_assert_int_eq(tu_peer_send(&c, TCPCHAT_MSG_LEAVE,
	                              TCPCHAT_REASON_PART, "#lobby", NULL,
	                              NULL),
	                 0);
	ru_want(&c, TCPCHAT_MSG_LEAVE, "carol", NULL, &m);
	f_hex(&f, who_request);
	ck_assert_int_eq(tu_peer_send_raw(&a, f.b, f.n), 0);
	v1_want(&a, TCPCHAT_MSG_WHO, &m, raw, &n);
	/* the whole server, as in protocol 1 */
	f_begin(&f, TCPCHAT_MSG_WHO, 0, 0, m.timestamp, 3);
	f_str(&f, 2, "alice bob carol");
	f_end(&f);
	same_bytes(raw, n, &f);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

START_TEST(error_example_idle_timeout)
{
	int port;
	const tcpchat_codec *c = tcpchat_codec_binary();
	tcpchat_server *srv = tu_server_new_codecs(&c, 1, &port);
	ck_assert_ptr_nonnull(srv);
	ck_assert_int_eq(tcpchat_server_set_option(
	                         srv, TCPCHAT_SOPT_IDLE_TIMEOUT, tu_ms(400)),
	                 0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, b;
	struct tu_msg m;
	unsigned char raw[2048];
	size_t n;
	struct frame f;
	v1(&a, port, "alice", TCPCHAT_CAP_BASE);
	v1(&b, port, "bob", 0);
	/* nobody answers the PING */
	v1_want(&a, TCPCHAT_MSG_ERROR, &m, raw, &n);
	f_hex(&f, error_idle);
	f_stamp(&f, 0, m.timestamp);
	same_bytes(raw, n, &f);
	ck_assert_int_eq(tu_peer_wait_closed(&a, TU_TIMEOUT), 1);
	/* without capability 0x1: the same, without the flag */
	v1_want(&b, TCPCHAT_MSG_ERROR, &m, raw, &n);
	f_hex(&f, error_idle);
	f_stamp(&f, 0, m.timestamp);
	f.b[7] = 0;
	same_bytes(raw, n, &f);
	ck_assert_int_eq(tu_peer_wait_closed(&b, TU_TIMEOUT), 1);
	RU_FINISH(srv, &a, &b);
}
END_TEST

/* The protocol-2 examples of tcpchat-protocol(7), "Binary". */
static const char p2_hello[] =
        "00 00 00 2f 01 01 00 00  00 00 00 00 00 00 00 00"
        "00 00 00 00 00 00 00 00  00 00 00 02 01 00 00 00"
        "05 61 6c 69 63 65 10 00  00 00 08 00 00 00 00 00"
        "00 00 03";
static const char p2_welcome[] =
        "00 00 00 47 01 02 00 04  00 00 00 00 00 00 00 00"
        "00 00 00 00 00 00 00 00  00 00 00 02 01 00 00 00"
        "05 61 6c 69 63 65 03 00  00 00 06 23 6c 6f 62 62"
        "79 10 00 00 00 08 00 00  00 00 00 00 00 07 11 00"
        "00 00 08 00 00 00 00 00  01 00 00";
static const char p2_join_request[] =
        "00 00 00 21 01 04 00 00  00 00 00 00 00 00 00 00"
        "00 00 00 00 00 00 00 00  00 00 00 00 03 00 00 00"
        "04 23 64 65 76";
static const char p2_join[] = "00 00 00 38 01 04 00 00  00 00 00 00 00 00 00 2d"
                              "00 00 01 8b cf e5 68 00  00 00 00 03 01 00 00 00"
                              "05 61 6c 69 63 65 03 00  00 00 04 23 64 65 76 15"
                              "00 00 00 08 00 00 00 00  07 5b cd 15";
static const char p2_text_request[] =
        "00 00 00 28 01 03 00 00  00 00 00 00 00 00 00 00"
        "00 00 00 00 00 00 00 00  00 00 00 00 02 00 00 00"
        "02 68 69 03 00 00 00 04  23 64 65 76";
static const char p2_text[] = "00 00 00 3f 01 03 00 00  00 00 00 00 00 00 00 2b"
                              "00 00 01 8b cf e5 68 00  00 00 00 00 01 00 00 00"
                              "05 61 6c 69 63 65 02 00  00 00 02 68 69 03 00 00"
                              "00 04 23 64 65 76 14 00  00 00 08 00 00 00 00 00"
                              "00 00 01";
static const char p2_private_request[] =
        "00 00 00 27 01 03 00 00  00 00 00 00 00 00 00 00"
        "00 00 00 00 00 00 00 00  00 00 00 00 02 00 00 00"
        "02 68 69 04 00 00 00 03  62 6f 62";
static const char p2_private[] =
        "00 00 00 31 01 03 00 00  00 00 00 00 00 00 00 2c"
        "00 00 01 8b cf e5 68 00  00 00 00 00 01 00 00 00"
        "05 61 6c 69 63 65 02 00  00 00 02 68 69 04 00 00"
        "00 03 62 6f 62";
static const char p2_echo[] = "00 00 00 31 01 03 00 02  00 00 00 00 00 00 00 2c"
                              "00 00 01 8b cf e5 68 00  00 00 00 00 01 00 00 00"
                              "05 61 6c 69 63 65 02 00  00 00 02 68 69 04 00 00"
                              "00 03 62 6f 62";
static const char p2_rooms_entry[] =
        "00 00 00 31 01 0b 00 00  00 00 00 00 00 00 00 00"
        "00 00 01 8b cf e5 68 00  00 00 00 03 02 00 00 00"
        "0b 72 65 6c 65 61 73 65  20 31 2e 32 03 00 00 00"
        "04 23 64 65 76";
static const char p2_rooms_end[] =
        "00 00 00 18 01 0b 00 00  00 00 00 00 00 00 00 00"
        "00 00 01 8b cf e5 68 00  00 00 00 02";
static const char p2_part[] = "00 00 00 18 01 05 00 00  00 00 00 00 00 00 00 00"
                              "00 00 00 00 00 00 00 00  00 00 00 08";

/* Receives raw frames until one of type (and, if room is not NULL, in
 * that room) arrives. */
static void raw_want(struct tu_peer *p, uint32_t type, const char *room,
                     struct tu_msg *m, unsigned char *raw, size_t *n)
{
	for (;;) {
		int rc = tu_peer_recv_raw(p, m, raw, 2048, n, TU_TIMEOUT);
		ck_assert_msg(rc == 1, "waiting for a %s: rc %d",
		              tcpchat_msg_type_name(type), rc);
		if (m->type == type && (!room || !strcmp(m->room, room)))
			return;
	}
}

/* The example hex with the id and time of the message received. */
static void same_as_example(const unsigned char *raw, size_t n, const char *hex,
                            const struct tu_msg *m)
{
	struct frame f;
	f_hex(&f, hex);
	f_stamp(&f, m->id, m->timestamp);
	same_bytes(raw, n, &f);
}

START_TEST(protocol_2_examples_byte_for_byte)
{
	/* the epoch of the examples */
	const tcpchat_codec *bin = tcpchat_codec_binary();
	int port;
	tcpchat_server *srv = tu_server_new_codecs(&bin, 1, &port);
	ck_assert_ptr_nonnull(srv);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_EPOCH, 123456789),
	        0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, b, c;
	struct tu_msg m, e;
	unsigned char raw[2048];
	size_t n;
	struct frame f;
	ru_login_bin(&b, port, "bob");
	ru_login_bin(&c, port, "carol");
	ru_send_join(&b, "#dev");
	ru_want(&b, TCPCHAT_MSG_JOIN, "bob", NULL, &m);
	ru_send_join(&c, "#dev");
	ru_want(&b, TCPCHAT_MSG_JOIN, "carol", NULL, &m);
	ck_assert_str_eq(m.room, "#dev");

	/* the handshake */
	ck_assert_int_eq(tu_peer_connect(&a, port, tcpchat_codec_binary(), 0),
	                 0);
	f_hex(&f, p2_hello);
	ck_assert_uint_eq(f.n, 51);
	ck_assert_int_eq(tu_peer_send_raw(&a, f.b, f.n), 0);
	ck_assert_int_eq(
	        tu_peer_recv_raw(&a, &m, raw, sizeof raw, &n, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.type, TCPCHAT_MSG_WELCOME);
	f_hex(&f, p2_welcome);
	ck_assert_uint_eq(f.n, 75);
	f_stamp(&f, 0, m.timestamp);
	f_num(&f, 18, 1024);
	f_num(&f, 19, 1048576);
	f_num(&f, 21, 123456789); /* the epoch */
	f_end(&f);
	same_bytes(raw, n, &f);

	/* a join: what the members receive */
	f_hex(&f, p2_join_request);
	ck_assert_int_eq(tu_peer_send_raw(&a, f.b, f.n), 0);
	raw_want(&b, TCPCHAT_MSG_JOIN, "#dev", &m, raw, &n);
	same_as_example(raw, n, p2_join, &m);
	raw_want(&a, TCPCHAT_MSG_JOIN, "#dev", &m, raw, &n);
	same_as_example(raw, n, p2_join, &m);

	/* a text to #dev */
	f_hex(&f, p2_text_request);
	ck_assert_int_eq(tu_peer_send_raw(&a, f.b, f.n), 0);
	raw_want(&b, TCPCHAT_MSG_TEXT, "#dev", &m, raw, &n);
	same_as_example(raw, n, p2_text, &m);

	/* a private text, and its echo with the same id */
	f_hex(&f, p2_private_request);
	ck_assert_int_eq(tu_peer_send_raw(&a, f.b, f.n), 0);
	raw_want(&b, TCPCHAT_MSG_TEXT, "", &m, raw, &n);
	same_as_example(raw, n, p2_private, &m);
	raw_want(&a, TCPCHAT_MSG_TEXT, "", &e, raw, &n);
	ck_assert_uint_eq(e.id, m.id);
	same_as_example(raw, n, p2_echo, &e);

	/* the room list */
	ru_send_topic(&a, "#dev", "release 1.2");
	ru_want(&b, TCPCHAT_MSG_TOPIC, "alice", NULL, &m);
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_ROOMS, 0, NULL, NULL, NULL), 0);
	raw_want(&a, TCPCHAT_MSG_ROOMS, "#dev", &m, raw, &n);
	same_as_example(raw, n, p2_rooms_entry, &m);
	raw_want(&a, TCPCHAT_MSG_ROOMS, "", &m, raw, &n);
	same_as_example(raw, n, p2_rooms_end, &m);

	/* a part of the current room */
	f_hex(&f, p2_part);
	ck_assert_uint_eq(f.n, 28);
	ck_assert_int_eq(tu_peer_send_raw(&a, f.b, f.n), 0);
	ru_want(&b, TCPCHAT_MSG_LEAVE, "alice", NULL, &m);
	ck_assert_str_eq(m.room, "#dev");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
	RU_FINISH(srv, &a, &b, &c);
}
END_TEST

/* ---- JSON Lines ---------------------------------------------------------- */

START_TEST(json_example_session)
{
	const tcpchat_codec *codecs[2] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_json()};
	int ports[2];
	tcpchat_server *srv = tu_server_new_codecs(codecs, 2, ports);
	ck_assert_ptr_nonnull(srv);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer w, ci, b;
	struct tu_msg m;
	ru_login_bin(&b, ports[0], "bin2");
	ru_send_topic(&b, "#lobby", "no topics for protocol 1");
	ru_want(&b, TCPCHAT_MSG_TOPIC, "bin2", NULL, &m);
	/* a protocol-1 watcher on the JSON port */
	ck_assert_int_eq(tu_peer_connect(&w, ports[1], tcpchat_codec_json(), 0),
	                 0);
	ck_assert_int_eq(tu_peer_send_line(&w, "{\"type\":\"hello\",\"code\":1,"
	                                       "\"sender\":\"w\"}"),
	                 0);
	ru_json_line(&w, "{\"type\":\"welcome\",\"ts\":@TS,\"code\":1,"
	                 "\"sender\":\"w\"}");
	ru_want(&b, TCPCHAT_MSG_JOIN, "w", NULL, &m);

	/* the one-shot message of EXAMPLES, in one write as from nc */
	const char shot[] =
	        "{\"type\":\"hello\",\"code\":1,\"sender\":\"ci\"}\n"
	        "{\"type\":\"text\",\"body\":\"build 1234 "
	        "passed\"}\n"
	        "{\"type\":\"leave\"}\n";
	ck_assert_int_eq(
	        tu_peer_connect(&ci, ports[1], tcpchat_codec_json(), 0), 0);
	ck_assert_int_eq(tu_peer_send_raw(&ci, shot, strlen(shot)), 0);
	ru_json_line(&ci, "{\"type\":\"welcome\",\"ts\":@TS,\"code\":1,"
	                  "\"sender\":\"ci\"}");
	ck_assert_int_eq(tu_peer_wait_closed(&ci, TU_TIMEOUT), 1);
	tu_peer_close(&ci);

	ru_json_line(&w, "{\"type\":\"join\",\"id\":@ID,\"ts\":@TS,"
	                 "\"sender\":\"ci\"}");
	ru_json_line(&w, "{\"type\":\"text\",\"id\":@ID,\"ts\":@TS,"
	                 "\"sender\":\"ci\",\"body\":\"build 1234 passed\"}");
	ru_json_line(&w, "{\"type\":\"leave\",\"id\":@ID,\"ts\":@TS,"
	                 "\"code\":1,\"sender\":\"ci\"}");
	/* the protocol-2 user saw the same in the default room */
	ru_want(&b, TCPCHAT_MSG_JOIN, "ci", NULL, &m);
	ck_assert_str_eq(m.room, "#lobby");
	ru_want(&b, TCPCHAT_MSG_TEXT, "ci", NULL, &m);
	ck_assert_str_eq(m.room, "#lobby");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_DEFAULT_ROOM,
	                  TCPCHAT_MSGF_DEFAULT_ROOM);
	ck_assert_str_eq(m.body, "build 1234 passed");
	ru_want(&b, TCPCHAT_MSG_LEAVE, "ci", NULL, &m);
	ck_assert_str_eq(m.room, "");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);

	/* a protocol-2 text to the default room, a notice, a WHO */
	ck_assert_int_eq(tu_peer_send_text(&b, "hello w"), 0);
	ru_json_line(&w, "{\"type\":\"text\",\"id\":@ID,\"ts\":@TS,"
	                 "\"sender\":\"bin2\",\"body\":\"hello w\"}");
	ru_mark(srv, "notice");
	ru_json_line(&w, "{\"type\":\"text\",\"id\":@ID,\"ts\":@TS,"
	                 "\"body\":\"notice\"}");
	ck_assert_int_eq(tu_peer_send_line(&w, "{\"type\":\"who\"}"), 0);
	ru_json_line(&w, "{\"type\":\"who\",\"ts\":@TS,\"code\":2,"
	                 "\"body\":\"bin2 w\"}");
	RU_FINISH(srv, &w, &b);
}
END_TEST

/* ---- what a protocol-1 client sees of protocol 2 ----------------------- */

START_TEST(protocol_1_sees_the_default_room_only)
{
	const tcpchat_codec *codecs[2] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_json()};
	int ports[2];
	tcpchat_server *srv = tu_server_new_codecs(codecs, 2, ports);
	ck_assert_ptr_nonnull(srv);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer o, j, a, b;
	struct tu_msg m;
	unsigned char raw[2048];
	size_t n;
	struct frame f;
	v1(&o, ports[0], "old", TCPCHAT_CAP_BASE);
	ck_assert_int_eq(tu_peer_login(&j, ports[1], tcpchat_codec_json(),
	                               "oldjson", 1, 0, NULL),
	                 0);
	ru_login_bin(&a, ports[0], "alice");
	ru_login_bin(&b, ports[0], "bob");
	ru_mark(srv, "start");
	/* the joins of oldjson (to old), alice and bob */
	ck_assert_int_eq(v1_upto(&o, "start"), 3);
	ck_assert_int_eq(v1_upto(&j, "start"), 2);

	/* everything of other rooms, topics, lists, private messages */
	ru_send_join(&a, "#dev");
	ru_want(&a, TCPCHAT_MSG_JOIN, "alice", NULL, &m);
	ru_send_join(&b, "#dev");
	ru_want(&a, TCPCHAT_MSG_JOIN, "bob", NULL, &m);
	ru_send_room(&a, "#dev", "dev talk");
	ru_want(&b, TCPCHAT_MSG_TEXT, "alice", NULL, &m);
	ru_send_topic(&a, "#lobby", "lobby topic");
	ru_want(&b, TCPCHAT_MSG_TOPIC, "alice", NULL, &m);
	ru_send_topic(&a, "#dev", "dev topic");
	ru_want(&b, TCPCHAT_MSG_TOPIC, "alice", NULL, &m);
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_TEXT, 0, NULL, "bob", "private"),
	        0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "alice", NULL, &m);
	ck_assert_int_eq(
	        tcpchat_server_broadcast_room(srv, "#dev", "dev notice", 10),
	        0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "", NULL, &m);
	ck_assert_int_eq(tu_peer_send(&b, TCPCHAT_MSG_LEAVE,
	                              TCPCHAT_REASON_PART, "#dev", NULL, NULL),
	                 0);
	ru_want(&a, TCPCHAT_MSG_LEAVE, "bob", NULL, &m);
	/* forced into a room, or out of the default one: a protocol-1
	 * user is skipped */
	ck_assert_int_eq(tcpchat_server_room_join(srv, "old", "#dev"), 0);
	ck_assert_int_eq(tcpchat_server_room_join(srv, "oldjson", "#dev"), 0);
	ck_assert_int_eq(tcpchat_server_room_part(srv, "old", "#lobby", "out"),
	                 0);
	ru_mark(srv, "rooms");
	ck_assert_int_eq(v1_upto(&o, "rooms"), 0);
	ck_assert_int_eq(v1_upto(&j, "rooms"), 0);
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_WHO, 0, "#dev", NULL, NULL), 0);
	ru_want(&a, TCPCHAT_MSG_WHO, NULL, NULL, &m);
	ck_assert_str_eq(m.body, "alice");
	/* protocol-1 users are members of the default room */
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_WHO, 0, "#lobby", NULL, NULL), 0);
	ru_want(&a, TCPCHAT_MSG_WHO, NULL, NULL, &m);
	ck_assert_uint_eq(m.code, 4);
	ck_assert_str_eq(m.body, "old oldjson alice bob");
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_ROOMS, 0, NULL, NULL, NULL), 0);
	ru_want(&a, TCPCHAT_MSG_ROOMS, NULL, NULL, &m);
	ck_assert_str_eq(m.room, "#lobby");
	ck_assert_uint_eq(m.code, 4);

	/* a notice to the default room reaches them as protocol 1 */
	ck_assert_int_eq(tcpchat_server_broadcast_room(srv, "#lobby",
	                                               "lobby notice", 12),
	                 0);
	v1_want(&o, TCPCHAT_MSG_TEXT, &m, raw, &n);
	f_begin(&f, TCPCHAT_MSG_TEXT, 0, m.id, m.timestamp, 0);
	f_str(&f, 2, "lobby notice");
	f_end(&f);
	same_bytes(raw, n, &f);
	/* so does a notice for one user */
	ck_assert_int_eq(tcpchat_server_send_to(srv, "old", "just you", 8), 0);
	v1_want(&o, TCPCHAT_MSG_TEXT, &m, raw, &n);
	f_begin(&f, TCPCHAT_MSG_TEXT, 0, m.id, m.timestamp, 0);
	f_str(&f, 2, "just you");
	f_end(&f);
	same_bytes(raw, n, &f);

	/* leaving and coming back to the default room */
	ck_assert_int_eq(tu_peer_send(&b, TCPCHAT_MSG_LEAVE,
	                              TCPCHAT_REASON_PART, "#lobby", NULL,
	                              "brb"),
	                 0);
	v1_want(&o, TCPCHAT_MSG_LEAVE, &m, raw, &n);
	ck_assert_str_eq(m.sender, "bob");
	v1_want(&j, TCPCHAT_MSG_LEAVE, &m, raw, &n);
	ck_assert_str_eq(m.sender, "bob");
	ru_send_join(&b, "#lobby");
	v1_want(&o, TCPCHAT_MSG_JOIN, &m, raw, &n);
	f_begin(&f, TCPCHAT_MSG_JOIN, 0, m.id, m.timestamp, 0);
	f_str(&f, 1, "bob");
	f_end(&f);
	same_bytes(raw, n, &f);
	v1_want(&j, TCPCHAT_MSG_JOIN, &m, raw, &n);
	ck_assert_str_eq(m.sender, "bob");
	ru_mark(srv, "end");
	ck_assert_int_eq(v1_upto(&o, "end"), 0);
	ck_assert_int_eq(v1_upto(&j, "end"), 0);
	RU_FINISH(srv, &o, &j, &a, &b);
}
END_TEST

START_TEST(protocol_1_requests_keep_protocol_1_rules)
{
	int port;
	tcpchat_server *srv = tu_server_start(NULL, &port);
	ck_assert_ptr_nonnull(srv);
	struct tu_peer o, a;
	struct tu_msg m;
	unsigned char raw[2048];
	size_t n;
	v1(&o, port, "old", TCPCHAT_CAP_BASE);
	ru_login_bin(&a, port, "alice");
	/* room or target: not supported, as in protocol 1 */
	ru_send_room(&o, "#lobby", "to a room");
	v1_want(&o, TCPCHAT_MSG_ERROR, &m, raw, &n);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_NOTSUP);
	ck_assert_uint_eq(m.flags, 0);
	ck_assert_int_eq(tu_peer_send(&o, TCPCHAT_MSG_TEXT, 0, NULL, "alice",
	                              "to alice"),
	                 0);
	v1_want(&o, TCPCHAT_MSG_ERROR, &m, raw, &n);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_NOTSUP);
	/* the protocol-2 types are types protocol 1 does not know */
	ru_send_topic(&o, "#lobby", "mine");
	v1_want(&o, TCPCHAT_MSG_ERROR, &m, raw, &n);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_NOTYPE);
	ck_assert_int_eq(
	        tu_peer_send(&o, TCPCHAT_MSG_ROOMS, 0, NULL, NULL, NULL), 0);
	v1_want(&o, TCPCHAT_MSG_ERROR, &m, raw, &n);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_NOTYPE);
	/* a WHO with a room is the WHO of protocol 1 */
	ck_assert_int_eq(
	        tu_peer_send(&o, TCPCHAT_MSG_WHO, 0, "#dev", NULL, NULL), 0);
	v1_want(&o, TCPCHAT_MSG_WHO, &m, raw, &n);
	ck_assert_uint_eq(m.code, 2);
	ck_assert_str_eq(m.body, "old alice");
	/* nothing reached alice, no topic was set */
	ck_assert_int_eq(tu_peer_send_text(&o, "plain"), 0);
	ru_want(&a, TCPCHAT_MSG_TEXT, "old", NULL, &m);
	ck_assert_str_eq(m.body, "plain");
	ck_assert_str_eq(m.room, "#lobby");
	ck_assert_int_eq(
	        tu_peer_send(&a, TCPCHAT_MSG_ROOMS, 0, NULL, NULL, NULL), 0);
	ru_want(&a, TCPCHAT_MSG_ROOMS, NULL, NULL, &m);
	ck_assert_str_eq(m.room, "#lobby");
	ck_assert_str_eq(m.body, "");
	/* a LEAVE, whatever its code, is a quit */
	ck_assert_int_eq(tu_peer_send(&o, TCPCHAT_MSG_LEAVE,
	                              TCPCHAT_REASON_PART, NULL, NULL, NULL),
	                 0);
	ru_want(&a, TCPCHAT_MSG_LEAVE, "old", NULL, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_QUIT);
	ck_assert_str_eq(m.room, "");
	ck_assert_int_eq(tu_peer_wait_closed(&o, TU_TIMEOUT), 1);
	tu_peer_close(&o);
	/* a JOIN from a client is a protocol error in protocol 1 */
	v1(&o, port, "old", 0);
	ru_send_join(&o, "#dev");
	v1_want(&o, TCPCHAT_MSG_ERROR, &m, raw, &n);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_PROTO);
	ck_assert_uint_eq(m.flags, 0);
	ck_assert_int_eq(tu_peer_wait_closed(&o, TU_TIMEOUT), 1);
	RU_FINISH(srv, &o, &a);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("proto1");
	TCase *t = tcase_create("examples");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, examples_decode_as_documented);
	tcase_add_test(t, hello_example_gets_a_protocol_1_welcome);
	tcase_add_test(t, welcome_example_with_capability_1);
	tcase_add_test(t, text_example_byte_for_byte);
	tcase_add_test(t, who_example_byte_for_byte);
	tcase_add_test(t, error_example_idle_timeout);
	tcase_add_test(t, json_example_session);
	tcase_add_test(t, protocol_2_examples_byte_for_byte);
	suite_add_tcase(s, t);
	t = tcase_create("compatibility");
	tcase_set_timeout(t, 30 * tu_slow());
	tcase_add_test(t, protocol_1_sees_the_default_room_only);
	tcase_add_test(t, protocol_1_requests_keep_protocol_1_rules);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return tu_run_suite(suite());
}
