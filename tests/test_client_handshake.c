/* What the client says when the peer is not a tcpchat server speaking its
 * codec (a raw socket plays the peer): bytes that are not a frame end
 * the connection at once, quoted; a peer that closes or stays silent is
 * told apart; and tcpchat_client_text_fit() against the frame limits. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

/* ---- a peer that is not a tcpchat server ---------------------------- */

struct fake {
	int lfd, port;
	const char *say; /* written at accept; NULL: nothing */
	int close_after; /* close right after saying it */
	int fd;          /* the accepted connection, held open */
	pthread_t th;
};

static void *fake_run(void *arg)
{
	struct fake *f = arg;
	f->fd = accept(f->lfd, NULL, NULL);
	if (f->fd >= 0 && f->close_after) {
		/* read the HELLO first: a close with unread input would be
		 * a reset */
		char hello[256];
		(void)!recv(f->fd, hello, sizeof hello, 0);
	}
	if (f->fd >= 0 && f->say)
		(void)!write(f->fd, f->say, strlen(f->say));
	if (f->fd >= 0 && f->close_after) {
		close(f->fd);
		f->fd = -1;
	}
	return NULL;
}

static void fake_start(struct fake *f, const char *say, int close_after)
{
	memset(f, 0, sizeof *f);
	f->say = say;
	f->close_after = close_after;
	f->fd = -1;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(f->lfd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(f->lfd, 4), 0);
	socklen_t len = sizeof a;
	getsockname(f->lfd, (struct sockaddr *)&a, &len);
	f->port = ntohs(a.sin_port);
	ck_assert_int_eq(pthread_create(&f->th, NULL, fake_run, f), 0);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->th, NULL);
	if (f->fd >= 0)
		close(f->fd);
	close(f->lfd);
}

/* ---- a client run to its end ---------------------------------------- */

struct ending {
	int error, reason, connected;
	char text[512];
};

static int on_event(tcpchat_client *cli, const tcpchat_client_event *ev,
                    void *ud)
{
	(void)cli;
	struct ending *e = ud;
	if (ev->type == TCPCHAT_CEV_CONNECTED)
		e->connected = 1;
	if (ev->type == TCPCHAT_CEV_DISCONNECTED) {
		e->error = ev->error;
		e->reason = ev->reason;
		snprintf(e->text, sizeof e->text, "%s", ev->text);
	}
	return 0;
}

/* Connects with codec to the port and runs until the end. */
static struct ending run_client(int port, const tcpchat_codec *codec,
                                long long timeout_ms)
{
	struct ending e;
	memset(&e, 0, sizeof e);
	tcpchat_client *cli;
	ck_assert_int_eq(tcpchat_client_new(&cli), 0);
	tcpchat_client_set_codec(cli, codec);
	tcpchat_client_set_handler(cli, on_event, &e);
	tcpchat_client_set_option(cli, TCPCHAT_COPT_CONNECT_TIMEOUT,
	                          timeout_ms);
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	ck_assert_int_eq(tcpchat_client_connect(cli, addr, "alice"), 0);
	int rc = tcpchat_client_run(cli);
	ck_assert_int_eq(rc, e.error);
	tcpchat_client_destroy(cli);
	return e;
}

/* A peer that says `say` (and closes when close_after) ends a client of
 * codec with err, reason and exactly text, before any CONNECTED. */
static void check_end(const char *say, int close_after,
                      const tcpchat_codec *codec, long long timeout_ms, int err,
                      int reason, const char *text)
{
	struct fake f;
	fake_start(&f, say, close_after);
	struct ending e = run_client(f.port, codec, timeout_ms);
	fake_stop(&f);
	ck_assert_int_eq(e.connected, 0);
	ck_assert_int_eq(e.error, err);
	ck_assert_int_eq(e.reason, reason);
	ck_assert_str_eq(e.text, text);
}

START_TEST(http_server_is_named)
{
	check_end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 0,
	          tcpchat_codec_binary(), 60000, TCPCHAT_EPROTO,
	          TCPCHAT_REASON_ERROR,
	          "the server does not speak the binary codec: it sent "
	          "\"HTTP/1.1 400 Bad Request...\" (an HTTP server)");
}
END_TEST

START_TEST(line_greeting_to_a_json_client)
{
	check_end("=== tcpchat: type your name\n", 0, tcpchat_codec_json(),
	          60000, TCPCHAT_EPROTO, TCPCHAT_REASON_ERROR,
	          "the server does not speak the json codec: it sent "
	          "\"=== tcpchat: type your n...\"");
}
END_TEST

START_TEST(binary_bytes_to_a_line_client)
{
	/* bytes that are no text, then the peer closes: the line decoder
	 * never sees a newline */
	check_end("\x01\x02\x03\x7f\xff\x06", 1, tcpchat_codec_line(), 60000,
	          TCPCHAT_EPROTO, TCPCHAT_REASON_ERROR,
	          "the server does not speak the line codec: it sent "
	          "\"\\x01\\x02\\x03\\x7F\\xFF\\x06\"");
}
END_TEST

START_TEST(closed_during_the_handshake)
{
	check_end(NULL, 1, tcpchat_codec_binary(), 60000, TCPCHAT_ECLOSED,
	          TCPCHAT_REASON_CLOSED,
	          "the server closed the connection during the handshake "
	          "(does it speak the binary codec?)");
}
END_TEST

START_TEST(silent_peer_times_out)
{
	check_end(NULL, 0, tcpchat_codec_binary(), 300, TCPCHAT_ETIMEDOUT,
	          TCPCHAT_REASON_TIMEOUT,
	          "the server accepted the connection but did not answer the "
	          "handshake within 300 ms (does it speak the binary codec?)");
}
END_TEST

START_TEST(refused_connect_says_so)
{
	struct fake f;
	fake_start(&f, NULL, 1);
	int port = f.port;
	/* connect once so the thread ends, then nobody listens there */
	struct ending e = run_client(port, tcpchat_codec_binary(), 60000);
	fake_stop(&f);
	e = run_client(port, tcpchat_codec_binary(), 60000);
	ck_assert_int_eq(e.error, TCPCHAT_ESYS);
	ck_assert_str_eq(e.text, "Connection refused");
}
END_TEST

/* ---- text_fit ------------------------------------------------------- */

static size_t encoded(const tcpchat_codec *c, const char *room,
                      const char *text, size_t n)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT};
	m.body.ptr = text;
	m.body.len = n;
	m.room.ptr = room;
	m.room.len = room ? strlen(room) : 0;
	tcpchat_buf b = {0};
	ck_assert_int_eq(c->encode(c->codec_data, &m, 0, &b), 0);
	size_t len = b.len;
	tcpchat_buf_free(&b);
	return len;
}

START_TEST(text_fit_before_the_welcome)
{
	const tcpchat_codec *codecs[] = {tcpchat_codec_binary(),
	                                 tcpchat_codec_json(),
	                                 tcpchat_codec_line()};
	char text[600];
	for (size_t i = 0; i < 300; i++)
		memcpy(text + 2 * i, "\xc3\xa9", 2); /* 300 times U+00E9 */
	for (int c = 0; c < 3; c++) {
		tcpchat_client *cli;
		ck_assert_int_eq(tcpchat_client_new(&cli), 0);
		tcpchat_client_set_codec(cli, codecs[c]);
		ck_assert_int_eq(tcpchat_client_set_option(
		                         cli, TCPCHAT_COPT_MAX_FRAME, 201),
		                 0);
		size_t k = tcpchat_client_text_fit(cli, "#dev", NULL, text,
		                                   sizeof text);
		ck_assert_uint_gt(k, 0);
		ck_assert_uint_eq(k % 2, 0); /* a character boundary */
		ck_assert_uint_le(encoded(codecs[c], "#dev", text, k), 201);
		ck_assert_uint_gt(encoded(codecs[c], "#dev", text, k + 2), 201);
		/* what fits whole is returned whole */
		ck_assert_uint_eq(
		        tcpchat_client_text_fit(cli, NULL, NULL, text, 10), 10);
		/* bad arguments */
		ck_assert_uint_eq(
		        tcpchat_client_text_fit(cli, "#dev", "bob", text, 10),
		        0);
		ck_assert_uint_eq(
		        tcpchat_client_text_fit(cli, "dev", NULL, text, 10), 0);
		ck_assert_uint_eq(tcpchat_client_text_fit(
		                          cli, NULL, "two words", text, 10),
		                  0);
		ck_assert_uint_eq(
		        tcpchat_client_text_fit(cli, NULL, NULL, text, 0), 0);
		ck_assert_uint_eq(
		        tcpchat_client_text_fit(NULL, NULL, NULL, text, 10), 0);
		tcpchat_client_destroy(cli);
	}
}
END_TEST

static int is_connected(void *arg)
{
	return tcpchat_client_is_connected(arg);
}

START_TEST(text_fit_uses_the_server_limit)
{
	/* the server's limit is below the client's own */
	tcpchat_server *srv;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	ck_assert_int_eq(
	        tcpchat_server_set_option(srv, TCPCHAT_SOPT_MAX_FRAME, 150), 0);
	ck_assert_int_eq(tcpchat_server_listen(srv, "127.0.0.1:0",
	                                       tcpchat_codec_binary()),
	                 0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	int port = tcpchat_server_port(srv, 0);
	tcpchat_client *cli;
	ck_assert_int_eq(tcpchat_client_new(&cli), 0);
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	ck_assert_int_eq(tcpchat_client_connect(cli, addr, "fit"), 0);
	ck_assert_int_eq(tcpchat_client_start(cli), 0);
	ck_assert(tu_wait_until(is_connected, cli, tu_ms(10000)));
	char text[400];
	memset(text, 'x', sizeof text);
	size_t k = tcpchat_client_text_fit(cli, NULL, "fit", text, sizeof text);
	ck_assert_uint_gt(k, 0);
	ck_assert_uint_lt(k, 150);
	ck_assert_int_eq(tcpchat_client_send_private(cli, "fit", text, k), 0);
	ck_assert_int_eq(tcpchat_client_send_private(cli, "fit", text, k + 1),
	                 TCPCHAT_EMSGSIZE);
	tcpchat_client_stop(cli);
	tcpchat_client_join(cli);
	tcpchat_client_destroy(cli);
	tu_server_stop(srv);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("client_handshake");
	TCase *tc = tcase_create("peer");
	tcase_add_test(tc, http_server_is_named);
	tcase_add_test(tc, line_greeting_to_a_json_client);
	tcase_add_test(tc, binary_bytes_to_a_line_client);
	tcase_add_test(tc, closed_during_the_handshake);
	tcase_add_test(tc, silent_peer_times_out);
	tcase_add_test(tc, refused_connect_says_so);
	suite_add_tcase(s, tc);
	tc = tcase_create("fit");
	tcase_add_test(tc, text_fit_before_the_welcome);
	tcase_add_test(tc, text_fit_uses_the_server_limit);
	suite_add_tcase(s, tc);
	return tu_run_suite(s);
}
