/* The server's per-connection rate limits: a flooder cannot crowd out the
 * others, one ERROR per burst, refill, the disconnection of a persistent
 * flooder, the byte bucket, and limits turned off. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "testutil.h"

static const tcpchat_codec *bin(void)
{
	return tcpchat_codec_binary();
}

static void set(tcpchat_server *srv, int opt, long long v)
{
	ck_assert_int_eq(tcpchat_server_set_option(srv, opt, v), 0);
}

/* A started binary server with the message limit rate/burst, the byte
 * limit bytes/bytes_burst (0: off) and RATE_KICK kick. */
static tcpchat_server *limited_server(int *port, long long rate,
                                      long long burst, long long bytes,
                                      long long bytes_burst, long long kick)
{
	const tcpchat_codec *codecs[] = {bin()};
	tcpchat_server *srv = tu_server_new_codecs(codecs, 1, port);
	ck_assert_ptr_nonnull(srv);
	set(srv, TCPCHAT_SOPT_RATE_MSGS, rate);
	set(srv, TCPCHAT_SOPT_RATE_BURST, burst);
	set(srv, TCPCHAT_SOPT_RATE_BYTES, bytes);
	set(srv, TCPCHAT_SOPT_RATE_BYTES_BURST, bytes_burst);
	set(srv, TCPCHAT_SOPT_RATE_KICK, kick);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	return srv;
}

/* A limited server (as limited_server()) with two users in its default
 * room: reader, who reads, and alice, who talks. */
struct chat {
	tcpchat_server *srv;
	struct tu_peer reader, alice;
};

static void chat_open(struct chat *c, long long rate, long long burst,
                      long long bytes, long long bytes_burst, long long kick)
{
	int port;
	c->srv = limited_server(&port, rate, burst, bytes, bytes_burst, kick);
	ck_assert_int_eq(tu_peer_join(&c->reader, port, bin(), "reader"), 0);
	ck_assert_int_eq(tu_peer_join(&c->alice, port, bin(), "alice"), 0);
}

static void chat_close(struct chat *c)
{
	tu_peer_close(&c->alice);
	tu_peer_close(&c->reader);
	tu_server_stop(c->srv);
}

static void send_ref(struct tu_peer *p, const char *text, const char *ref)
{
	tcpchat_msg t = {.type = TCPCHAT_MSG_TEXT};
	t.body.ptr = text;
	t.body.len = strlen(text);
	t.ref.ptr = ref;
	t.ref.len = ref ? strlen(ref) : 0;
	ck_assert_int_eq(tu_peer_send_msg(p, &t), 0);
}

/* Waits for the next ERROR on p; asserts its code is RATE. */
static void expect_rate_error(struct tu_peer *p, struct tu_msg *m)
{
	ck_assert_int_eq(tu_peer_expect(p, TCPCHAT_MSG_ERROR, m, TU_TIMEOUT),
	                 1);
	ck_assert_uint_eq(m->code, TCPCHAT_WIRE_RATE);
	ck_assert_int_eq(tcpchat_error_from_wire(m->code), TCPCHAT_ERATE);
}

static int limited_seen(void *arg)
{
	return tu_stats(arg).limited > 0;
}

static int flood_limited(void *arg)
{
	return tu_stats(arg).limited >= 5000;
}

START_TEST(defaults_and_ranges)
{
	tcpchat_server *srv;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	const struct {
		int opt;
		long long def;
	} want[] = {
	        {TCPCHAT_SOPT_RATE_MSGS, 20},
	        {TCPCHAT_SOPT_RATE_BURST, 40},
	        {TCPCHAT_SOPT_RATE_BYTES, 65536},
	        {TCPCHAT_SOPT_RATE_BYTES_BURST, 262144},
	        {TCPCHAT_SOPT_RATE_KICK, 10},
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		long long v = -1;
		ck_assert_int_eq(
		        tcpchat_server_get_option(srv, want[i].opt, &v), 0);
		ck_assert_int_eq(v, want[i].def);
		ck_assert_int_eq(
		        tcpchat_server_set_option(srv, want[i].opt, -1),
		        TCPCHAT_EINVAL);
	}
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_RATE_BURST, 0),
	        TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_set_option(
	                         srv, TCPCHAT_SOPT_RATE_BYTES_BURST, 63),
	                 TCPCHAT_EINVAL);
	ck_assert_str_eq(tcpchat_strerror(TCPCHAT_ERATE), "sending too fast");
	ck_assert_uint_eq(tcpchat_error_to_wire(TCPCHAT_ERATE),
	                  TCPCHAT_WIRE_RATE);
	tcpchat_server_destroy(srv);
}
END_TEST

/* A flooder sends 10000 texts as fast as it can; bob sends 50 among them;
 * a reader with the default queue limits gets every one of bob's. */
START_TEST(flooder_does_not_crowd_out_others)
{
	enum { FLOOD = 10000, BOB = 50 };
	int port;
	/* The default limits, but a burst that lets bob's 50 pass at once
	 * (a paste) */
	tcpchat_server *srv = limited_server(&port, 20, 60, 65536, 262144, 10);
	struct tu_peer reader, flooder, bob;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&reader, port, bin(), "reader"), 0);
	ck_assert_int_eq(tu_peer_join(&flooder, port, bin(), "flooder"), 0);
	ck_assert_int_eq(tu_peer_join(&bob, port, bin(), "bob"), 0);
	/* A small socket buffer: what the reader has not read yet waits in
	 * its queue at the server, as for a reader across a real network. */
	int small = 4096;
	ck_assert_int_eq(setsockopt(reader.fd, SOL_SOCKET, SO_RCVBUF, &small,
	                            sizeof small),
	                 0);

	char text[160];
	memset(text, 'x', sizeof text);
	int sent_bob = 0;
	for (int i = 0; i < FLOOD; i++) {
		snprintf(text, sizeof text, "flood %d ", i);
		text[strlen(text)] = 'x'; /* about 150 bytes a text */
		text[150] = '\0';
		ck_assert_int_eq(tu_peer_send_text(&flooder, text), 0);
		if (i % (FLOOD / BOB) == 0 && sent_bob < BOB) {
			snprintf(text, sizeof text, "bob %d", sent_bob++);
			ck_assert_int_eq(tu_peer_send_text(&bob, text), 0);
		}
	}
	ck_assert_int_eq(sent_bob, BOB);

	int got = 0, floods = 0;
	while (got < BOB) {
		ck_assert_int_eq(tu_peer_expect(&reader, TCPCHAT_MSG_TEXT, &m,
		                                TU_TIMEOUT),
		                 1);
		if (strcmp(m.sender, "bob") == 0) {
			char want[32];
			snprintf(want, sizeof want, "bob %d", got);
			ck_assert_str_eq(m.body, want);
			got++;
		} else {
			floods++;
		}
	}
	ck_assert_int_lt(floods, FLOOD / 10);
	expect_rate_error(&flooder, &m);
	ck_assert_msg(strncmp(m.body, "too fast: retry in ", 19) == 0,
	              "body '%s'", m.body);
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_CLOSING, 0);
	ck_assert(tu_wait_until(flood_limited, srv, TU_TIMEOUT));
	ck_assert_uint_eq(tu_stats(srv).dropped, 0);
	tu_peer_close(&bob);
	tu_peer_close(&flooder);
	tu_peer_close(&reader);
	tu_server_stop(srv);
}
END_TEST

/* A burst of 4 passes, the 5th is refused with one ERROR (with its ref),
 * later ones in the same burst get none; after a refill texts pass, and a
 * new burst gets a new ERROR. */
START_TEST(burst_then_refill)
{
	struct chat c;
	struct tu_msg m;
	chat_open(&c, 2, 4, 0, 262144, 0);
	int64_t t0 = tu_now_ms();
	for (int i = 0; i < 4; i++) {
		char text[16];
		snprintf(text, sizeof text, "t%d", i);
		ck_assert_int_eq(tu_peer_send_text(&c.alice, text), 0);
	}
	send_ref(&c.alice, "refused", "r5");
	send_ref(&c.alice, "refused too", "r6");
	expect_rate_error(&c.alice, &m);
	ck_assert_str_eq(m.ref, "r5");
	ck_assert_msg(strncmp(m.body, "too fast: retry in ", 19) == 0,
	              "body '%s'", m.body);
	for (int i = 0; i < 4; i++) {
		char want[16];
		snprintf(want, sizeof want, "t%d", i);
		ck_assert_int_eq(tu_peer_expect(&c.reader, TCPCHAT_MSG_TEXT, &m,
		                                TU_TIMEOUT),
		                 1);
		ck_assert_str_eq(m.body, want);
	}
	/* No second ERROR for the same burst, and nothing for the reader,
	 * while the bucket refills (2 s to full; half of it and one text:
	 * 1.5 s, when the burst is over). */
	while (tu_now_ms() < t0 + 1800) {
		int rc = tu_peer_recv(&c.alice, &m, 50);
		ck_assert_int_ge(rc, 0);
		ck_assert_msg(rc == 0 || m.type != TCPCHAT_MSG_ERROR,
		              "second ERROR '%s'", m.body);
		rc = tu_peer_recv(&c.reader, &m, 0);
		ck_assert_msg(rc == 0 || m.type != TCPCHAT_MSG_TEXT,
		              "refused text '%s' delivered", m.body);
	}
	ck_assert_uint_eq(tu_stats(c.srv).limited, 2);
	ck_assert_int_eq(tu_peer_send_text(&c.alice, "after"), 0);
	ck_assert_int_eq(
	        tu_peer_expect(&c.reader, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.body, "after");
	/* A new burst: a new ERROR */
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(tu_peer_send_text(&c.alice, "again"), 0);
	expect_rate_error(&c.alice, &m);
	chat_close(&c);
}
END_TEST

/* Over the limit for RATE_KICK seconds: disconnected, "flooding". */
START_TEST(persistent_flooder_is_disconnected)
{
	int port;
	tcpchat_server *srv = limited_server(&port, 5, 5, 0, 262144, 1);
	struct tu_peer reader, flooder;
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_join(&reader, port, bin(), "reader"), 0);
	ck_assert_int_eq(tu_peer_login(&flooder, port, bin(), "flooder",
	                               TCPCHAT_PROTOCOL_VERSION, TU_CAPS2,
	                               NULL),
	                 0);
	int64_t deadline = tu_now_ms() + 1000 + TU_TIMEOUT;
	int rate_errors = 0, flooding = 0;
	while (!flooder.closed) {
		ck_assert_msg(tu_now_ms() < deadline, "not disconnected");
		if (tu_peer_send_text(&flooder, "flood") != 0)
			break; /* closed meanwhile */
		int rc = tu_peer_recv(&flooder, &m, 5);
		if (rc == 1 && m.type == TCPCHAT_MSG_ERROR) {
			ck_assert_uint_eq(m.code, TCPCHAT_WIRE_RATE);
			rate_errors++;
			if (strcmp(m.body, "flooding") == 0) {
				flooding = 1;
				ck_assert_uint_ne(
				        m.flags & TCPCHAT_MSGF_CLOSING, 0);
			}
		}
	}
	while (!flooding && tu_peer_recv(&flooder, &m, TU_TIMEOUT) == 1)
		if (m.type == TCPCHAT_MSG_ERROR &&
		    strcmp(m.body, "flooding") == 0)
			flooding = 1;
	ck_assert(flooding);
	ck_assert_int_ge(rate_errors, 1);
	if (!flooder.closed)
		ck_assert_int_eq(tu_peer_wait_closed(&flooder, TU_TIMEOUT), 1);
	ck_assert_int_eq(
	        tu_peer_expect(&reader, TCPCHAT_MSG_LEAVE, &m, TU_TIMEOUT), 1);
	ck_assert_str_eq(m.sender, "flooder");
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_ERROR);
	tu_peer_close(&flooder);
	tu_peer_close(&reader);
	tu_server_stop(srv);
}
END_TEST

/* The byte bucket alone: two texts of 900 bytes fit in 2000, a third
 * does not. */
START_TEST(byte_limit)
{
	struct chat c;
	struct tu_msg m;
	chat_open(&c, 0, 40, 100, 2000, 0);
	char text[901];
	memset(text, 'b', 900);
	text[900] = '\0';
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tu_peer_send_text(&c.alice, text), 0);
	expect_rate_error(&c.alice, &m);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(tu_peer_expect(&c.reader, TCPCHAT_MSG_TEXT, &m,
		                                TU_TIMEOUT),
		                 1);
	ck_assert(tu_wait_until(limited_seen, c.srv, TU_TIMEOUT));
	ck_assert_uint_eq(tu_stats(c.srv).limited, 1);
	chat_close(&c);
}
END_TEST

/* Both limits 0: nothing is refused. */
START_TEST(limits_off)
{
	enum { N = 500 };
	struct chat c;
	struct tu_msg m;
	chat_open(&c, 0, 1, 0, 64, 1);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(tu_peer_send_text(&c.alice, "fast"), 0);
	ck_assert_int_eq(
	        tu_peer_send(&c.alice, TCPCHAT_MSG_PING, 0, NULL, NULL, NULL),
	        0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(tu_peer_expect(&c.reader, TCPCHAT_MSG_TEXT, &m,
		                                TU_TIMEOUT),
		                 1);
	/* The PONG comes after every text was handled, and no ERROR
	 * before it. */
	do {
		ck_assert_int_eq(tu_peer_recv(&c.alice, &m, TU_TIMEOUT), 1);
		ck_assert_uint_ne(m.type, TCPCHAT_MSG_ERROR);
	} while (m.type != TCPCHAT_MSG_PONG);
	ck_assert_uint_eq(tu_stats(c.srv).limited, 0);
	chat_close(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("ratelimit");
	tcase_add_test(tc, defaults_and_ranges);
	tcase_add_test(tc, flooder_does_not_crowd_out_others);
	tcase_add_test(tc, burst_then_refill);
	tcase_add_test(tc, persistent_flooder_is_disconnected);
	tcase_add_test(tc, byte_limit);
	tcase_add_test(tc, limits_off);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
