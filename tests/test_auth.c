/* Tests of the credential a client sends in its HELLO: the JOIN event
 * carries it (binary and line codecs, and the client library's
 * tcpchat_client_set_credential()), and a hostile one (too long, control
 * characters) is refused by the server with a clear error, before the
 * application sees it, and never written to the log. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* What the handler saw: the last JOIN's credential, and whether any log
 * line held a secret. */
struct seen {
	pthread_mutex_t mu;
	int joins;
	char cred[TCPCHAT_CREDENTIAL_MAX + 1];
	size_t cred_len;
	int tls_subject_set;
	int leaked; /* a LOG line contained "SECRET" */
};

static int on_event(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct seen *s = ud;
	(void)srv;
	pthread_mutex_lock(&s->mu);
	if (ev->type == TCPCHAT_SEV_JOIN) {
		s->joins++;
		s->cred_len = ev->credential.len;
		if (ev->credential.len) /* else ptr may be NULL */
			memcpy(s->cred, ev->credential.ptr, ev->credential.len);
		s->tls_subject_set = ev->tls_subject != NULL;
	} else if (ev->type == TCPCHAT_SEV_LOG && strstr(ev->text, "SECRET")) {
		s->leaked = 1;
	}
	pthread_mutex_unlock(&s->mu);
	return TCPCHAT_ACCEPT;
}

static tcpchat_server *seen_server(struct seen *s, struct tu_ports *ports)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	tcpchat_server *srv = tu_server_new_mixed(ports);
	ck_assert_ptr_nonnull(srv);
	tcpchat_server_set_handler(srv, on_event, s);
	ck_assert_int_eq(tcpchat_server_set_option(srv, TCPCHAT_SOPT_LOG_LEVEL,
	                                           TCPCHAT_LOG_DEBUG),
	                 0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	return srv;
}

static void check_cred(struct seen *s, int joins, const char *want)
{
	pthread_mutex_lock(&s->mu);
	ck_assert_int_eq(s->joins, joins);
	ck_assert_uint_eq(s->cred_len, strlen(want));
	ck_assert_mem_eq(s->cred, want, s->cred_len);
	ck_assert_int_eq(s->tls_subject_set, 0);
	pthread_mutex_unlock(&s->mu);
}

static int hello_with(struct tu_peer *p, int port, const char *name,
                      const char *cred, size_t cred_len)
{
	ck_assert_int_eq(tu_peer_connect(p, port, NULL, 0), 0);
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
	h.code = TCPCHAT_PROTOCOL_VERSION;
	h.caps = TU_CAPS2;
	h.sender.ptr = name;
	h.sender.len = strlen(name);
	h.body.ptr = cred;
	h.body.len = cred_len;
	return tu_peer_send_msg(p, &h);
}

START_TEST(join_event_carries_the_credential)
{
	struct seen s;
	struct tu_ports ports;
	tcpchat_server *srv = seen_server(&s, &ports);
	struct tu_peer a, b, c;
	struct tu_msg m;

	/* binary: the HELLO's body */
	ck_assert_int_eq(hello_with(&a, ports.bin, "alice", "SECRET one", 10),
	                 0);
	ck_assert_int_eq(
	        tu_peer_expect(&a, TCPCHAT_MSG_WELCOME, &m, TU_TIMEOUT), 1);
	check_cred(&s, 1, "SECRET one");

	/* line: "NAME PASSWORD", the rest of the line as typed */
	ck_assert_int_eq(
	        tu_peer_connect(&b, ports.line, tcpchat_codec_line(), 0), 0);
	ck_assert_int_eq(tu_peer_expect_line(&b, TU_LINE_GREETING, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(tu_peer_send_line(&b, "bob   SECRET two \r"), 0);
	ck_assert_int_eq(tu_peer_expect_line(&b, "=== welcome bob", TU_TIMEOUT),
	                 1);
	check_cred(&s, 2, "SECRET two ");

	/* no credential: an empty one */
	ck_assert_int_eq(tu_peer_join(&c, ports.bin, NULL, "carol"), 0);
	check_cred(&s, 3, "");
	pthread_mutex_lock(&s.mu);
	ck_assert_int_eq(s.leaked, 0);
	pthread_mutex_unlock(&s.mu);
	tu_peer_close(&a);
	tu_peer_close(&b);
	tu_peer_close(&c);
	tu_server_stop(srv);
}
END_TEST

/* A hostile credential gets an ERROR REFUSED that says what is wrong,
 * the application never sees it, and no log line shows it. */
static void refused_cred(struct seen *s, int port, const char *cred, size_t len)
{
	struct tu_peer p;
	struct tu_msg m;
	ck_assert_int_eq(hello_with(&p, port, "mallory", cred, len), 0);
	ck_assert_int_eq(tu_peer_expect(&p, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT),
	                 1);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_REFUSED);
	ck_assert_ptr_nonnull(strstr(m.body, "invalid credential"));
	ck_assert_int_eq(tu_peer_wait_closed(&p, TU_TIMEOUT), 1);
	tu_peer_close(&p);
	pthread_mutex_lock(&s->mu);
	ck_assert_int_eq(s->joins, 0);
	ck_assert_int_eq(s->leaked, 0);
	pthread_mutex_unlock(&s->mu);
}

START_TEST(hostile_credentials_are_refused_unlogged)
{
	struct seen s;
	struct tu_ports ports;
	tcpchat_server *srv = seen_server(&s, &ports);
	char big[TCPCHAT_CREDENTIAL_MAX + 2];
	memset(big, 'x', sizeof big);
	memcpy(big, "SECRET", 6);
	refused_cred(&s, ports.bin, big, sizeof big - 1); /* one too many */
	refused_cred(&s, ports.bin, "SECRET\nx", 8);
	refused_cred(&s, ports.bin, "SECRET\x1b[2J", 10);
	refused_cred(&s, ports.bin, "SECRET\xff", 7); /* not UTF-8 */
	refused_cred(&s, ports.bin, "SECRET\x7f", 7);
	/* the line codec lets control bytes through to the server too */
	struct tu_peer p;
	ck_assert_int_eq(
	        tu_peer_connect(&p, ports.line, tcpchat_codec_line(), 0), 0);
	ck_assert_int_eq(tu_peer_send_line(&p, "mallory SECRET\x01"), 0);
	ck_assert_int_eq(tu_peer_wait_closed(&p, TU_TIMEOUT), 1);
	tu_peer_close(&p);
	/* exactly the maximum is fine */
	struct tu_peer ok;
	struct tu_msg m;
	big[TCPCHAT_CREDENTIAL_MAX] = '\0';
	ck_assert_int_eq(hello_with(&ok, ports.bin, "trent", big,
	                            TCPCHAT_CREDENTIAL_MAX),
	                 0);
	ck_assert_int_eq(
	        tu_peer_expect(&ok, TCPCHAT_MSG_WELCOME, &m, TU_TIMEOUT), 1);
	check_cred(&s, 1, big);
	tu_peer_close(&ok);
	tu_server_stop(srv);
	pthread_mutex_lock(&s.mu);
	ck_assert_int_eq(s.leaked, 0);
	pthread_mutex_unlock(&s.mu);
}
END_TEST

static int on_cli(tcpchat_client *cli, const tcpchat_client_event *ev, void *ud)
{
	(void)cli;
	if (ev->type == TCPCHAT_CEV_CONNECTED)
		atomic_store((atomic_int *)ud, 1);
	return 0;
}

static int is_set(void *arg)
{
	return atomic_load((atomic_int *)arg);
}

START_TEST(client_sends_its_credential)
{
	struct seen s;
	struct tu_ports ports;
	tcpchat_server *srv = seen_server(&s, &ports);
	tcpchat_client *cli;
	ck_assert_int_eq(tcpchat_client_new(&cli), 0);
	ck_assert_int_eq(tcpchat_client_set_credential(cli, "bad\x01"),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_set_credential(NULL, "x"),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_client_set_credential(cli, "first"), 0);
	ck_assert_int_eq(tcpchat_client_set_credential(cli, "SECRET three"), 0);
	atomic_int connected = 0;
	tcpchat_client_set_handler(cli, on_cli, &connected);
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", ports.bin);
	ck_assert_int_eq(tcpchat_client_connect(cli, addr, "dave"), 0);
	ck_assert_int_eq(tcpchat_client_set_credential(cli, NULL),
	                 TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_client_start(cli), 0);
	ck_assert(tu_wait_until(is_set, &connected, TU_TIMEOUT));
	check_cred(&s, 1, "SECRET three");
	tcpchat_client_destroy(cli);
	tu_server_stop(srv);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("auth");
	TCase *t = tcase_create("credential");
	tcase_add_test(t, join_event_carries_the_credential);
	tcase_add_test(t, hostile_credentials_are_refused_unlogged);
	tcase_add_test(t, client_sends_its_credential);
	suite_add_tcase(s, t);
	return tu_run_suite(s);
}
