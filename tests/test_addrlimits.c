/* Integration tests of the per-address limits, over loopback: every peer
 * here comes from 127.0.0.1, so they all count against one address. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include "server/server_int.h"
#include "testutil.h"

static const tcpchat_codec *bin(void)
{
	return tcpchat_codec_binary();
}

/* The LOG lines of refusals, counted by the loop thread. */
struct logs {
	pthread_mutex_t mu;
	int refusing;
};

static int on_event(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct logs *l = ud;
	(void)srv;
	if (ev->type == TCPCHAT_SEV_LOG && ev->text &&
	    strstr(ev->text, "refusing connections from")) {
		pthread_mutex_lock(&l->mu);
		l->refusing++;
		pthread_mutex_unlock(&l->mu);
	}
	return 0;
}

static void srv_opt(tcpchat_server *srv, int opt, long long v)
{
	ck_assert_int_eq(tcpchat_server_set_option(srv, opt, v), 0);
}

/* A server, not started, with the limits given (-1: the default) and a
 * handler counting into l (NULL: none). */
static tcpchat_server *srv_new(int *port, long long conns, long long rate,
                               long long burst, long long hs, struct logs *l)
{
	const tcpchat_codec *codecs[1] = {NULL};
	tcpchat_server *srv = tu_server_new_codecs(codecs, 1, port);
	ck_assert_ptr_nonnull(srv);
	if (conns >= 0)
		srv_opt(srv, TCPCHAT_SOPT_ADDR_CONNS, conns);
	if (rate >= 0)
		srv_opt(srv, TCPCHAT_SOPT_ADDR_RATE, rate);
	if (burst >= 0)
		srv_opt(srv, TCPCHAT_SOPT_ADDR_BURST, burst);
	if (hs >= 0)
		srv_opt(srv, TCPCHAT_SOPT_ADDR_HANDSHAKES, hs);
	if (l) {
		pthread_mutex_init(&l->mu, NULL);
		l->refusing = 0;
		tcpchat_server_set_handler(srv, on_event, l);
	}
	return srv;
}

struct clients_cond {
	tcpchat_server *srv;
	uint64_t clients;
};

static int clients_are(void *arg)
{
	struct clients_cond *c = arg;
	return tu_stats(c->srv).clients == c->clients;
}

static void wait_clients(tcpchat_server *srv, uint64_t n)
{
	struct clients_cond c = {srv, n};
	ck_assert_int_eq(tu_wait_until(clients_are, &c, TU_TIMEOUT), 1);
}

/* The server refuses p at once: an ERROR EFULL, then the close. */
static void expect_refused(struct tu_peer *p)
{
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_expect(p, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_EFULL);
	ck_assert_ptr_nonnull(strstr(m.body, "your address"));
	ck_assert_int_eq(tu_peer_wait_closed(p, TU_TIMEOUT), 1);
}

/* alice says something, bob hears it: the chat goes on. */
static void still_chatting(struct tu_peer *alice, struct tu_peer *bob,
                           const char *text)
{
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_send_text(alice, text), 0);
	ck_assert_int_eq(tu_peer_expect(bob, TCPCHAT_MSG_TEXT, &m, TU_TIMEOUT),
	                 1);
	ck_assert_str_eq(m.body, text);
}

static void join_two(int port, struct tu_peer *a, struct tu_peer *b)
{
	ck_assert_int_eq(tu_peer_join(a, port, bin(), "alice"), 0);
	ck_assert_int_eq(tu_peer_join(b, port, bin(), "bob"), 0);
}

/* ---- handshakes ---------------------------------------------------------- */

enum { HS = 8 };

/* Eight connections that never say HELLO: the ninth is refused, the
 * users chat on; once one of the eight logs in, a new one is taken. */
START_TEST(handshakes_finish)
{
	int port;
	tcpchat_server *srv = srv_new(&port, -1, 0, -1, -1, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer alice, bob, slow[HS], extra;
	join_two(port, &alice, &bob);
	for (int i = 0; i < HS; i++)
		ck_assert_int_eq(tu_peer_connect(&slow[i], port, bin(), 0), 0);
	wait_clients(srv, 2 + HS);

	ck_assert_int_eq(tu_peer_connect(&extra, port, bin(), 0), 0);
	expect_refused(&extra);
	tu_peer_close(&extra);
	ck_assert_uint_eq(tu_stats(srv).refused_addr, 1);
	ck_assert_uint_eq(tu_stats(srv).refused, 1);
	still_chatting(&alice, &bob, "still here");

	ck_assert_int_eq(tu_peer_hello(&slow[0], "carol"), 0);
	ck_assert_int_eq(tu_peer_join(&extra, port, bin(), "dave"), 0);
	ck_assert_uint_eq(tu_stats(srv).refused_addr, 1);
	still_chatting(&bob, &alice, "and again");

	tu_peer_close(&extra);
	for (int i = 0; i < HS; i++)
		tu_peer_close(&slow[i]);
	tu_peer_close(&alice);
	tu_peer_close(&bob);
	tu_server_stop(srv);
}
END_TEST

/* The same eight time out: then new connections are taken again. */
START_TEST(handshakes_time_out)
{
	int port;
	tcpchat_server *srv = srv_new(&port, -1, 0, -1, -1, NULL);
	srv_opt(srv, TCPCHAT_SOPT_HANDSHAKE_TIMEOUT, tu_ms(1500));
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer slow[HS], extra;
	for (int i = 0; i < HS; i++)
		ck_assert_int_eq(tu_peer_connect(&slow[i], port, bin(), 0), 0);
	wait_clients(srv, HS);
	ck_assert_int_eq(tu_peer_connect(&extra, port, bin(), 0), 0);
	expect_refused(&extra);
	tu_peer_close(&extra);

	for (int i = 0; i < HS; i++) {
		struct tu_msg m;
		ck_assert_int_eq(tu_peer_expect(&slow[i], TCPCHAT_MSG_ERROR, &m,
		                                TU_TIMEOUT),
		                 1);
		ck_assert_int_eq(-(int)m.code, TCPCHAT_ETIMEDOUT);
		tu_peer_close(&slow[i]);
	}
	wait_clients(srv, 0);
	ck_assert_int_eq(tu_peer_join(&extra, port, bin(), "late"), 0);
	tu_peer_close(&extra);
	tu_server_stop(srv);
}
END_TEST

/* ---- connection rate ----------------------------------------------------- */

enum { BURST = 10, RATE = 1 };

static struct timespec ms_ts(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	return ts;
}

/* BURST + 10 connections at once: about BURST taken (the bucket refills
 * RATE a second meanwhile), the rest refused with one log line or two;
 * later the bucket has refilled and a new one is taken. */
START_TEST(rate_burst)
{
	int port;
	struct logs l;
	tcpchat_server *srv = srv_new(&port, 0, RATE, BURST, 0, &l);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer alice, bob, p[BURST + 10];
	int64_t t0 = tu_now_ms();
	join_two(port, &alice, &bob);
	int taken = 2, refused = 0;
	for (int i = 0; i < BURST + 10; i++) {
		char name[16];
		snprintf(name, sizeof name, "u%d", i);
		int rc = tu_peer_join(&p[i], port, bin(), name);
		if (rc == 0)
			taken++;
		else {
			ck_assert_int_eq(rc, TCPCHAT_EFULL);
			refused++;
		}
	}
	int64_t spent = tu_now_ms() - t0;
	/* What the bucket may have gained while they came. */
	int refill = (int)(spent * RATE / 1000) + 1;
	ck_assert_int_ge(taken, BURST);
	ck_assert_int_le(taken, BURST + refill);
	ck_assert_int_ge(refused, 10 + 2 - refill);
	ck_assert_uint_eq(tu_stats(srv).refused_addr, (uint64_t)refused);
	still_chatting(&alice, &bob, "during the burst");
	pthread_mutex_lock(&l.mu);
	int lines = l.refusing;
	pthread_mutex_unlock(&l.mu);
	ck_assert_int_ge(lines, 1);
	ck_assert_int_le(lines, (int)(spent / 1000) + 1);

	/* Refilled: taken again (each refused try costs no token). */
	struct tu_peer again;
	int64_t deadline = tu_now_ms() + TU_TIMEOUT;
	int rc;
	while ((rc = tu_peer_join(&again, port, bin(), "again")) != 0) {
		ck_assert_int_eq(rc, TCPCHAT_EFULL);
		tu_peer_close(&again);
		ck_assert_int_lt(tu_now_ms(), deadline);
		struct timespec ts = ms_ts(50);
		nanosleep(&ts, NULL);
	}
	still_chatting(&bob, &again, "after the refill");
	tu_peer_close(&again);
	for (int i = 0; i < BURST + 10; i++)
		tu_peer_close(&p[i]);
	tu_peer_close(&alice);
	tu_peer_close(&bob);
	tu_server_stop(srv);
}
END_TEST

/* ---- concurrent connections ---------------------------------------------- */

enum { CONNS = 5 };

START_TEST(concurrent_cap)
{
	int port;
	tcpchat_server *srv = srv_new(&port, CONNS, 0, -1, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer alice, bob, p[CONNS], extra;
	join_two(port, &alice, &bob);
	for (int i = 0; i < CONNS - 2; i++) {
		char name[16];
		snprintf(name, sizeof name, "u%d", i);
		ck_assert_int_eq(tu_peer_join(&p[i], port, bin(), name), 0);
	}
	ck_assert_int_eq(tu_peer_join(&extra, port, bin(), "extra"),
	                 TCPCHAT_EFULL);
	tu_peer_close(&extra);
	ck_assert_uint_eq(tu_stats(srv).refused_addr, 1);
	still_chatting(&alice, &bob, "five of us");

	tu_peer_close(&p[0]);
	wait_clients(srv, CONNS - 1);
	ck_assert_int_eq(tu_peer_join(&extra, port, bin(), "extra"), 0);
	still_chatting(&extra, &alice, "my turn");
	tu_peer_close(&extra);
	for (int i = 1; i < CONNS - 2; i++)
		tu_peer_close(&p[i]);
	tu_peer_close(&alice);
	tu_peer_close(&bob);
	tu_server_stop(srv);
}
END_TEST

/* IPv6 loopback is another address than 127.0.0.1. */
START_TEST(ipv6_counts_apart)
{
	tcpchat_server *srv = NULL;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	ck_assert_int_eq(tu_server_timers(srv), 0);
	srv_opt(srv, TCPCHAT_SOPT_ADDR_CONNS, 1);
	if (tcpchat_server_listen(srv, "[::1]:0", NULL) != 0) {
		tcpchat_server_destroy(srv);
		return; /* no IPv6 here */
	}
	int port6 = tcpchat_server_port(srv, 0);
	ck_assert_int_eq(tcpchat_server_listen(srv, "127.0.0.1:0", NULL), 0);
	int port4 = tcpchat_server_port(srv, 1);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer a, b, c;
	ck_assert_int_eq(tu_peer_connect(&a, port6, bin(), 1), 0);
	ck_assert_int_eq(tu_peer_hello(&a, "six"), 0);
	ck_assert_int_eq(tu_peer_join(&b, port4, bin(), "four"), 0);
	ck_assert_int_eq(tu_peer_connect(&c, port6, bin(), 1), 0);
	expect_refused(&c);
	tu_peer_close(&c);
	tu_peer_close(&a);
	tu_peer_close(&b);
	tu_server_stop(srv);
}
END_TEST

/* All off: nothing is counted, nothing refused. */
START_TEST(limits_off)
{
	int port;
	tcpchat_server *srv = srv_new(&port, 0, 0, -1, 0, NULL);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	enum { N = 70 };
	struct tu_peer *p = calloc(N, sizeof *p);
	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(tu_peer_connect(&p[i], port, bin(), 0), 0);
	wait_clients(srv, N);
	ck_assert_uint_eq(tu_stats(srv).refused, 0);
	for (int i = 0; i < N; i++)
		tu_peer_close(&p[i]);
	free(p);
	tu_server_stop(srv);
}
END_TEST

/* Bad values keep the old one. */
START_TEST(options)
{
	tcpchat_server *srv = NULL;
	long long v;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	ck_assert_int_eq(
	        tcpchat_server_get_option(srv, TCPCHAT_SOPT_ADDR_CONNS, &v), 0);
	ck_assert_int_eq(v, 64);
	ck_assert_int_eq(
	        tcpchat_server_get_option(srv, TCPCHAT_SOPT_ADDR_RATE, &v), 0);
	ck_assert_int_eq(v, 20);
	ck_assert_int_eq(
	        tcpchat_server_get_option(srv, TCPCHAT_SOPT_ADDR_BURST, &v), 0);
	ck_assert_int_eq(v, 40);
	ck_assert_int_eq(tcpchat_server_get_option(
	                         srv, TCPCHAT_SOPT_ADDR_HANDSHAKES, &v),
	                 0);
	ck_assert_int_eq(v, 8);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_ADDR_BURST, 0),
	        TCPCHAT_EINVAL);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_ADDR_CONNS, -1),
	        TCPCHAT_EINVAL);
	tcpchat_server_destroy(srv);
}
END_TEST

/* ---- the table of addresses, driven directly ------------------------------ */

static union net_addr v4(uint32_t host)
{
	union net_addr a;
	memset(&a, 0, sizeof a);
	a.in4.sin_family = AF_INET;
	a.in4.sin_addr.s_addr = htonl(host);
	return a;
}

static union net_addr v6(const char *text)
{
	union net_addr a;
	memset(&a, 0, sizeof a);
	a.in6.sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, text, &a.in6.sin6_addr), 1);
	return a;
}

/* Admits a connection from a: 1 when taken (and counted), 0 refused. */
static int admit(tcpchat_server *srv, const union net_addr *a)
{
	int counted = 0;
	const char *why = srv__peer_admit(srv, a, &counted);
	return why == NULL && counted;
}

/* Entries go once their address has no connection and a full bucket. */
START_TEST(table_frees)
{
	tcpchat_server *srv = NULL;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	srv_opt(srv, TCPCHAT_SOPT_ADDR_RATE, 10);
	srv_opt(srv, TCPCHAT_SOPT_ADDR_BURST, 20);
	srv->loop.now = 1000;
	union net_addr a = v4(0x0a000001);
	ck_assert_int_eq(admit(srv, &a), 1);
	ck_assert_uint_eq(srv->npeers, 1);
	srv__peer_handshake_done(srv, &a);
	srv__peer_gone(srv, &a, 0);
	/* One token short: kept, on the idle list. */
	ck_assert_uint_eq(srv->npeers, 1);
	srv->loop.now += 100; /* refilled: the next accept sweeps it */
	union net_addr b = v4(0x0a000002);
	ck_assert_int_eq(admit(srv, &b), 1);
	ck_assert_uint_eq(srv->npeers, 1);
	srv__peer_gone(srv, &b, 1);
	srv->loop.now += 2000;
	/* A gone connection with a full bucket frees its entry at once. */
	ck_assert_int_eq(admit(srv, &b), 1);
	srv->loop.now += 2000;
	srv__peer_gone(srv, &b, 1);
	ck_assert_uint_eq(srv->npeers, 0);
	tcpchat_server_destroy(srv);
}
END_TEST

/* A scan of more addresses than the table holds, each draining its
 * bucket: the table stays bounded and new addresses are still taken. */
START_TEST(table_bounded)
{
	tcpchat_server *srv = NULL;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	srv_opt(srv, TCPCHAT_SOPT_ADDR_BURST, 1);
	srv_opt(srv, TCPCHAT_SOPT_ADDR_RATE, 1);
	srv->loop.now = 1000;
	enum { SCAN = 70000 };
	for (uint32_t i = 0; i < SCAN; i++) {
		union net_addr a = v4(0x0b000000 + i);
		ck_assert_int_eq(admit(srv, &a), 1);
		srv__peer_gone(srv, &a, 1); /* bucket empty: kept */
		if (srv->npeers > 65536)
			ck_abort_msg("table grew to %zu", srv->npeers);
	}
	ck_assert_uint_eq(srv->npeers, 65536);
	/* The newest are remembered: refused at once. */
	union net_addr last = v4(0x0b000000 + SCAN - 1);
	int counted;
	ck_assert_ptr_nonnull(srv__peer_admit(srv, &last, &counted));
	ck_assert_uint_eq(srv->st.refused_addr, 1);
	/* Refilled: every entry goes, a few per accept. */
	for (uint32_t i = 0; i < 30000 && srv->npeers > 1; i++) {
		srv->loop.now += 1000;
		union net_addr a = v4(0x0c000000 + i);
		ck_assert_int_eq(admit(srv, &a), 1);
		srv__peer_gone(srv, &a, 1);
	}
	ck_assert_uint_le(srv->npeers, 1);
	tcpchat_server_destroy(srv);
}
END_TEST

/* IPv6 by /64; IPv4-mapped as IPv4. */
START_TEST(table_keys)
{
	tcpchat_server *srv = NULL;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	srv_opt(srv, TCPCHAT_SOPT_ADDR_CONNS, 1);
	srv->loop.now = 1000;
	union net_addr a = v6("2001:db8:1:2::1");
	union net_addr same64 = v6("2001:db8:1:2:ffff::9");
	union net_addr other64 = v6("2001:db8:1:3::1");
	union net_addr v4a = v4(0x7f000001);
	union net_addr mapped = v6("::ffff:127.0.0.1");
	int counted;
	ck_assert_int_eq(admit(srv, &a), 1);
	ck_assert_ptr_nonnull(srv__peer_admit(srv, &same64, &counted));
	ck_assert_int_eq(admit(srv, &other64), 1);
	ck_assert_int_eq(admit(srv, &v4a), 1);
	ck_assert_ptr_nonnull(srv__peer_admit(srv, &mapped, &counted));
	srv__peer_gone(srv, &a, 1);
	ck_assert_int_eq(admit(srv, &same64), 1);
	srv__peer_gone(srv, &same64, 1);
	srv__peer_gone(srv, &other64, 1);
	srv__peer_gone(srv, &v4a, 1);
	tcpchat_server_destroy(srv);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("addrlimits");
	TCase *tc = tcase_create("addrlimits");
	tcase_set_timeout(tc, 30 * tu_slow());
	tcase_add_test(tc, handshakes_finish);
	tcase_add_test(tc, handshakes_time_out);
	tcase_add_test(tc, rate_burst);
	tcase_add_test(tc, concurrent_cap);
	tcase_add_test(tc, ipv6_counts_apart);
	tcase_add_test(tc, limits_off);
	tcase_add_test(tc, options);
	suite_add_tcase(s, tc);
	tc = tcase_create("table");
	tcase_set_timeout(tc, 60 * tu_slow());
	tcase_add_test(tc, table_frees);
	tcase_add_test(tc, table_bounded);
	tcase_add_test(tc, table_keys);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run_suite(suite());
}
