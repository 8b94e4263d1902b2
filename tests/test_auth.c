/* Tests of the credential a client sends in its HELLO: the JOIN event
 * carries it (binary and line codecs, and the client library's
 * tcpchat_client_set_credential()), and a hostile one (too long, control
 * characters, NUL, not UTF-8) is refused by the server in every codec
 * with a clear error, before the application sees it, and never written
 * to the log; many JOINs deferred at once are answered from several
 * threads in a random order, some after their clients left, and each
 * client gets its own answer; the greeting of the line codec
 * (tcpchat_server_set_greeting()). */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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

/* Connects with codec (NULL: binary) and sends HELLO name with
 * cred[0..cred_len) (a line codec peer: the line "NAME CRED"). */
static int hello_with_codec(struct tu_peer *p, int port,
                            const tcpchat_codec *codec, const char *name,
                            const char *cred, size_t cred_len)
{
	ck_assert_int_eq(tu_peer_connect(p, port, codec, 0), 0);
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
	h.code = TCPCHAT_PROTOCOL_VERSION;
	h.caps = TU_CAPS2;
	h.sender.ptr = name;
	h.sender.len = strlen(name);
	h.body.ptr = cred;
	h.body.len = cred_len;
	return tu_peer_send_msg(p, &h);
}

static int hello_with(struct tu_peer *p, int port, const char *name,
                      const char *cred, size_t cred_len)
{
	return hello_with_codec(p, port, NULL, name, cred, cred_len);
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

/* A hostile credential as each codec carries it, written by hand so that
 * no encoder cleans it: the line "NAME CREDENTIAL", a JSON object with
 * the credential's bytes as they are (control bytes escaped), or a
 * binary HELLO. */
static void send_hostile(struct tu_peer *p, const tcpchat_codec *codec,
                         const char *cred, size_t len)
{
	tcpchat_buf b = {0};
	if (codec == tcpchat_codec_line()) {
		ck_assert_int_eq(tcpchat_buf_append(&b, "mallory ", 8), 0);
		ck_assert_int_eq(tcpchat_buf_append(&b, cred, len), 0);
		ck_assert_int_eq(tcpchat_buf_append(&b, "\n", 1), 0);
	} else if (codec == tcpchat_codec_json()) {
		static const char head[] = "{\"type\":\"hello\",\"code\":2,"
		                           "\"caps\":3,\"sender\":\"mallory\","
		                           "\"body\":\"";
		ck_assert_int_eq(tcpchat_buf_append(&b, head, sizeof head - 1),
		                 0);
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)cred[i];
			char esc[8];
			if (c < 0x20 || c == '"' || c == '\\') {
				snprintf(esc, sizeof esc, "\\u%04x", c);
				ck_assert_int_eq(tcpchat_buf_append(&b, esc, 6),
				                 0);
			} else {
				ck_assert_int_eq(
				        tcpchat_buf_append(&b, &cred[i], 1), 0);
			}
		}
		ck_assert_int_eq(tcpchat_buf_append(&b, "\"}\n", 3), 0);
	} else {
		tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
		h.code = TCPCHAT_PROTOCOL_VERSION;
		h.caps = TU_CAPS2;
		h.sender.ptr = "mallory";
		h.sender.len = 7;
		h.body.ptr = cred;
		h.body.len = len;
		ck_assert_int_eq(codec->encode(NULL, &h, 0, &b), 0);
	}
	ck_assert_int_eq(tu_peer_send_raw(p, b.data, b.len), 0);
	tcpchat_buf_free(&b);
}

/* Every hostile credential in every codec: ERROR REFUSED "invalid
 * credential", closed, never seen by the application, never logged. */
START_TEST(hostile_credentials_in_every_codec)
{
	struct seen s;
	struct tu_ports ports;
	tcpchat_server *srv = seen_server(&s, &ports);
	static char big[TCPCHAT_CREDENTIAL_MAX + 1], huge[8000];
	memset(big, 'x', sizeof big);
	memcpy(big, "SECRET", 6);
	memset(huge, 'y', sizeof huge);
	memcpy(huge, "SECRET", 6);
	/* not_utf8: a JSON frame that holds it is no JSON, and the answer
	 * says so */
	const struct {
		const char *p;
		size_t n;
		int not_utf8;
	} creds[] = {
	        {big, sizeof big, 0},         /* one byte too many */
	        {huge, sizeof huge, 0},       /* far too many */
	        {"SECRET\x01", 7, 0},         /* a control byte */
	        {"SECRET\x1b[2J", 10, 0},     /* an escape sequence */
	        {"SECRET\x7f", 7, 0},         /* DEL */
	        {"SECRET\xc2\x9b", 8, 0},     /* C1: U+009B, a CSI */
	        {"SEC\0RET", 7, 0},           /* NUL */
	        {"SECRET\xff\xfe", 8, 1},     /* not UTF-8 */
	        {"SECRET\xc3", 7, 1},         /* a cut sequence */
	        {"\xed\xa0\x80SECRET", 9, 1}, /* a surrogate */
	        {"\xc0\xafSECRET", 8, 1},     /* an overlong '/' */
	};
	const tcpchat_codec *codecs[3] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_json(),
	                                  tcpchat_codec_line()};
	const int port[3] = {ports.bin, ports.json, ports.line};
	for (int c = 0; c < 3; c++) {
		for (size_t i = 0; i < sizeof creds / sizeof creds[0]; i++) {
			struct tu_peer p;
			struct tu_msg m;
			ck_assert_int_eq(
			        tu_peer_connect(&p, port[c], codecs[c], 0), 0);
			send_hostile(&p, codecs[c], creds[i].p, creds[i].n);
			ck_assert_msg(tu_peer_expect(&p, TCPCHAT_MSG_ERROR, &m,
			                             TU_TIMEOUT) == 1,
			              "%s: credential %zu: no ERROR",
			              codecs[c]->name, i);
			int json = codecs[c] == tcpchat_codec_json();
			ck_assert_msg(
			        json && creds[i].not_utf8
			                ? strstr(m.body, "UTF-8") != NULL
			                : m.code == TCPCHAT_WIRE_REFUSED &&
			                          strstr(m.body,
			                                 "invalid credential"),
			        "%s: credential %zu: %u %s", codecs[c]->name, i,
			        m.code, m.body);
			ck_assert_int_eq(tu_peer_wait_closed(&p, TU_TIMEOUT),
			                 1);
			tu_peer_close(&p);
		}
	}
	tu_server_stop(srv);
	pthread_mutex_lock(&s.mu);
	ck_assert_int_eq(s.joins, 0);
	ck_assert_int_eq(s.leaked, 0);
	pthread_mutex_unlock(&s.mu);
}
END_TEST

/* ---- deferred JOINs answered from several threads ------------------- */

enum { DEFERS = 48, ANSWERERS = 4 };

/* The JOINs the handler deferred: the connection id of each user uNN. */
struct defers {
	pthread_mutex_t mu;
	uint64_t id[DEFERS];
	int n;
	int leaked;
	pthread_barrier_t go;
	int order[DEFERS]; /* the order the answers go out in */
	tcpchat_server *srv;
	int round; /* 1: a second, contrary answer to everyone */
};

static int user_index(tcpchat_str name)
{
	if (name.len != 3 || name.ptr[0] != 'u')
		return -1;
	return (name.ptr[1] - '0') * 10 + (name.ptr[2] - '0');
}

static int on_defer(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct defers *d = ud;
	(void)srv;
	if (ev->type == TCPCHAT_SEV_LOG) {
		if (strstr(ev->text, "SECRET"))
			d->leaked = 1;
		return 0;
	}
	if (ev->type != TCPCHAT_SEV_JOIN)
		return TCPCHAT_ACCEPT;
	int i = user_index(ev->name);
	if (i < 0)
		return TCPCHAT_ACCEPT; /* the login after the storm */
	char want[16];
	snprintf(want, sizeof want, "SECRET-%02d", i);
	ck_assert_uint_eq(ev->credential.len, strlen(want));
	ck_assert_mem_eq(ev->credential.ptr, want, ev->credential.len);
	pthread_mutex_lock(&d->mu);
	d->id[i] = ev->conn_id;
	d->n++;
	pthread_mutex_unlock(&d->mu);
	return TCPCHAT_DEFER;
}

/* Who is accepted, and who leaves before the answer. */
static int accepted(int i)
{
	return i % 3 != 0;
}

static int leaves(int i)
{
	return i % 5 == 4;
}

static const char *refusal(int i)
{
	static char why[DEFERS][32];
	snprintf(why[i], sizeof why[i], "no room for u%02d", i);
	return why[i];
}

/* One of the threads that answer: every ANSWERERS-th entry of the
 * shuffled order, all threads at once. */
struct answerer_arg {
	struct defers *d;
	int k;
};

static void *answerer(void *arg)
{
	struct defers *d = ((struct answerer_arg *)arg)->d;
	int k = ((struct answerer_arg *)arg)->k;
	pthread_barrier_wait(&d->go);
	for (int j = k; j < DEFERS; j += ANSWERERS) {
		int i = d->order[j];
		int yes = accepted(i) != (d->round == 1);
		int rc = yes ? tcpchat_server_accept(d->srv, d->id[i])
		             : tcpchat_server_refuse(d->srv, d->id[i],
		                                     refusal(i));
		ck_assert_int_eq(rc, 0);
	}
	return NULL;
}

static int all_deferred(void *arg)
{
	struct defers *d = arg;
	pthread_mutex_lock(&d->mu);
	int n = d->n;
	pthread_mutex_unlock(&d->mu);
	return n == DEFERS;
}

static void answer_all(struct defers *d, int round)
{
	pthread_t t[ANSWERERS];
	struct answerer_arg args[ANSWERERS];
	d->round = round;
	ck_assert_int_eq(pthread_barrier_init(&d->go, NULL, ANSWERERS), 0);
	for (int k = 0; k < ANSWERERS; k++) {
		args[k].d = d;
		args[k].k = k;
		ck_assert_int_eq(
		        pthread_create(&t[k], NULL, answerer, &args[k]), 0);
	}
	for (int k = 0; k < ANSWERERS; k++)
		pthread_join(t[k], NULL);
	pthread_barrier_destroy(&d->go);
}

static int users_are(void *arg)
{
	struct defers *d = arg;
	tcpchat_server_stats st = tu_stats(d->srv);
	int want = 0;
	for (int i = 0; i < DEFERS; i++)
		want += accepted(i) && !leaves(i);
	return st.users == (uint64_t)want && st.clients == (uint64_t)want;
}

START_TEST(deferred_joins_answered_from_threads)
{
	static struct defers d;
	struct tu_ports ports;
	static struct tu_peer p[DEFERS];
	const tcpchat_codec *codecs[3] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_line(),
	                                  tcpchat_codec_json()};
	memset(&d, 0, sizeof d);
	pthread_mutex_init(&d.mu, NULL);
	d.srv = tu_server_new_mixed(&ports);
	ck_assert_ptr_nonnull(d.srv);
	const int port[3] = {ports.bin, ports.line, ports.json};
	tcpchat_server_set_handler(d.srv, on_defer, &d);
	/* all from one address, at once */
	for (int o = TCPCHAT_SOPT_ADDR_CONNS; o <= TCPCHAT_SOPT_ADDR_HANDSHAKES;
	     o++)
		if (o != TCPCHAT_SOPT_ADDR_BURST)
			ck_assert_int_eq(tcpchat_server_set_option(d.srv, o, 0),
			                 0);
	ck_assert_int_eq(tcpchat_server_set_option(d.srv,
	                                           TCPCHAT_SOPT_LOG_LEVEL,
	                                           TCPCHAT_LOG_DEBUG),
	                 0);
	ck_assert_int_eq(tcpchat_server_start(d.srv), 0);
	for (int i = 0; i < DEFERS; i++) {
		char name[8], cred[16];
		snprintf(name, sizeof name, "u%02d", i);
		snprintf(cred, sizeof cred, "SECRET-%02d", i);
		ck_assert_int_eq(hello_with_codec(&p[i], port[i % 3],
		                                  codecs[i % 3], name, cred,
		                                  strlen(cred)),
		                 0);
	}
	ck_assert_msg(tu_wait_until(all_deferred, &d, TU_TIMEOUT),
	              "%d JOINs deferred", d.n);
	/* some leave before their answer */
	for (int i = 0; i < DEFERS; i++)
		if (leaves(i))
			tu_peer_close(&p[i]);
	/* a random order, the same each run */
	unsigned seed = 12345;
	for (int j = 0; j < DEFERS; j++)
		d.order[j] = j;
	for (int j = DEFERS - 1; j > 0; j--) {
		int k = (int)(rand_r(&seed) % (unsigned)(j + 1));
		int t = d.order[j];
		d.order[j] = d.order[k];
		d.order[k] = t;
	}
	answer_all(&d, 0);
	for (int i = 0; i < DEFERS; i++) {
		struct tu_msg m;
		if (leaves(i))
			continue;
		if (accepted(i)) {
			ck_assert_int_eq(tu_peer_expect(&p[i],
			                                TCPCHAT_MSG_WELCOME, &m,
			                                TU_TIMEOUT),
			                 1);
			char name[8];
			snprintf(name, sizeof name, "u%02d", i);
			ck_assert_str_eq(m.sender, name);
			continue;
		}
		ck_assert_int_eq(tu_peer_recv(&p[i], &m, TU_TIMEOUT), 1);
		ck_assert_uint_eq(m.type, TCPCHAT_MSG_ERROR);
		ck_assert_uint_eq(m.code, TCPCHAT_WIRE_REFUSED);
		ck_assert_str_eq(m.body, refusal(i));
		ck_assert_int_eq(tu_peer_wait_closed(&p[i], TU_TIMEOUT), 1);
	}
	/* a second, contrary answer to everyone is ignored */
	answer_all(&d, 1);
	ck_assert(tu_wait_until(users_are, &d, TU_TIMEOUT));
	for (int i = 0; i < DEFERS; i++) {
		struct tu_msg m;
		if (leaves(i) || !accepted(i))
			continue;
		/* still in: a PING is answered */
		ck_assert_int_eq(tu_peer_send(&p[i], TCPCHAT_MSG_PING, 0, NULL,
		                              NULL, NULL),
		                 0);
		do
			ck_assert_int_eq(tu_peer_recv(&p[i], &m, TU_TIMEOUT),
			                 1);
		while (m.type != TCPCHAT_MSG_PONG);
	}
	struct tu_peer late;
	ck_assert_int_eq(tu_peer_join(&late, ports.bin, NULL, "late"), 0);
	tu_peer_close(&late);
	for (int i = 0; i < DEFERS; i++)
		if (!leaves(i))
			tu_peer_close(&p[i]);
	tu_server_stop(d.srv);
	ck_assert_int_eq(d.leaked, 0);
	pthread_mutex_destroy(&d.mu);
}
END_TEST

/* tcpchat_server_set_greeting(): what a line user sees first. */
START_TEST(greeting_can_be_set)
{
	struct tu_ports ports;
	tcpchat_server *srv = tu_server_new_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	char big[TCPCHAT_GREETING_MAX + 2];
	memset(big, 'x', sizeof big);
	memcpy(big, "tcpchat: ", 9);
	big[TCPCHAT_GREETING_MAX + 1] = '\0';
	const char *bad[] = {"",
	                     "log in please",
	                     ":",
	                     "tcpchat: a\nb",
	                     "tcpchat: \xff",
	                     "x :",
	                     big};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_int_eq(tcpchat_server_set_greeting(srv, bad[i]),
		                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_set_greeting(NULL, NULL),
	                 TCPCHAT_EINVAL);
	big[TCPCHAT_GREETING_MAX] = '\0';
	ck_assert_int_eq(tcpchat_server_set_greeting(srv, big), 0);
	ck_assert_int_eq(tcpchat_server_set_greeting(
	                         srv, "tcpchat: log in with NAME PASSWORD"),
	                 0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	struct tu_peer p;
	ck_assert_int_eq(
	        tu_peer_connect(&p, ports.line, tcpchat_codec_line(), 0), 0);
	char line[300];
	ck_assert_int_eq(tu_peer_line(&p, line, sizeof line, TU_TIMEOUT), 1);
	ck_assert_str_eq(line, "=== tcpchat: log in with NAME PASSWORD");
	/* and the line client library skips it */
	ck_assert_int_eq(tu_peer_hello(&p, "alice"), 0);
	tu_peer_close(&p);
	tu_server_stop(srv);
	/* NULL: the default again */
	srv = tu_server_new_mixed(&ports);
	ck_assert_ptr_nonnull(srv);
	ck_assert_int_eq(tcpchat_server_set_greeting(srv, "tcpchat: hi"), 0);
	ck_assert_int_eq(tcpchat_server_set_greeting(srv, NULL), 0);
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
	ck_assert_int_eq(
	        tu_peer_connect(&p, ports.line, tcpchat_codec_line(), 0), 0);
	ck_assert_int_eq(tu_peer_expect_line(&p, TU_LINE_GREETING, TU_TIMEOUT),
	                 1);
	tu_peer_close(&p);
	tu_server_stop(srv);
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
	tcase_add_test(t, hostile_credentials_in_every_codec);
	tcase_add_test(t, greeting_can_be_set);
	suite_add_tcase(s, t);
	t = tcase_create("deferred");
	tcase_add_test(t, deferred_joins_answered_from_threads);
	suite_add_tcase(s, t);
	return tu_run_suite(s);
}
