/* TLS: certificates made at run time by tls_certs.sh (the path in the
 * TCPCHAT_TLS_CERTS environment variable); loading errors; a server and
 * clients chatting over TLS with every codec and in every run mode; large
 * messages and bursts through a reader that does not keep up; client
 * certificates (the JOIN's subject, REQUIRE_CERT); every failed check
 * reported as TCPCHAT_ETLS with its reason; plain peers on TLS listeners
 * and TLS clients on plain ones; the configuration replaced while
 * connected. */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "clientutil.h"
#include "tcpchat_config.h"
#include "testutil.h"

/* ---- the certificates ------------------------------------------------- */

static char certdir[256];

static void certs_make(void)
{
	const char *script = getenv("TCPCHAT_TLS_CERTS");
	ck_assert_msg(script && *script, "TCPCHAT_TLS_CERTS is not set");
	const char *tmp = getenv("TMPDIR");
	snprintf(certdir, sizeof certdir, "%s/tcpchat-tls-XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(certdir));
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "sh '%s' '%s'", script, certdir);
	ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

static void certs_remove(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", certdir);
	if (certdir[0] && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", certdir);
}

/* The path of a file of the certificate directory (NULL: NULL).  The
 * result lives until the 32nd call after this one. */
static const char *cf(const char *name)
{
	static char ring[32][320];
	static int at;
	if (!name)
		return NULL;
	char *p = ring[at++ % 32];
	snprintf(p, sizeof ring[0], "%s/%s", certdir, name);
	return p;
}

/* A file of the certificate directory with the given contents. */
static const char *cf_write(const char *name, const char *text)
{
	const char *p = cf(name);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return p;
}

/* ---- a TLS server ------------------------------------------------------ */

#define MAX_JOINS 32

struct tsrv {
	tcpchat_server *srv;
	int tls[3];      /* TLS listeners: binary, line, JSON */
	int plain, line; /* plain listeners: binary, line */
	pthread_mutex_t mu;
	int joins; /* under mu */
	char who[MAX_JOINS][40], subject[MAX_JOINS][128];
};

static int srv_handler(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct tsrv *s = ud;
	if (ev->type != TCPCHAT_SEV_JOIN)
		return 0;
	pthread_mutex_lock(&s->mu);
	if (s->joins < MAX_JOINS) {
		snprintf(s->who[s->joins], sizeof s->who[0], "%.*s",
		         (int)ev->name.len, ev->name.ptr);
		snprintf(s->subject[s->joins], sizeof s->subject[0], "%s",
		         ev->tls_subject ? ev->tls_subject : "(none)");
		s->joins++;
	}
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* The subject the JOIN of name carried ("(none)" without one), or NULL
 * when name did not join. */
static const char *srv_subject(struct tsrv *s, const char *name)
{
	const char *found = NULL;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->joins; i++)
		if (strcmp(s->who[i], name) == 0)
			found = s->subject[i];
	pthread_mutex_unlock(&s->mu);
	return found;
}

static tcpchat_tls_config scfg(const char *cert, const char *ca, int flags)
{
	char key[64];
	snprintf(key, sizeof key, "%.*s.key", (int)(strlen(cert) - 4), cert);
	tcpchat_tls_config c = {0};
	c.cert_file = cf(cert);
	c.key_file = cf(key);
	c.ca_file = cf(ca);
	c.flags = flags;
	return c;
}

/* Loads cert (NAME.pem with NAME.key) and ca (NULL: none) into s->srv. */
static void srv_tls(struct tsrv *s, const char *cert, const char *ca, int flags)
{
	tcpchat_tls_config c = scfg(cert, ca, flags);
	char err[256] = "";
	int rc = tcpchat_server_set_tls(s->srv, &c, err, sizeof err);
	ck_assert_msg(rc == 0, "set_tls %s: %d %s", cert, rc, err);
}

/* A server, not started, with cert and ca, TLS listeners for the three
 * codecs and plain binary and line ones. */
static void srv_new(struct tsrv *s, const char *cert, const char *ca, int flags)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	ck_assert_int_eq(tcpchat_server_new(&s->srv), 0);
	ck_assert_int_eq(tu_server_timers(s->srv), 0);
	tcpchat_server_set_handler(s->srv, srv_handler, s);
	srv_tls(s, cert, ca, flags);
	const tcpchat_codec *codecs[3] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_line(),
	                                  tcpchat_codec_json()};
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tcpchat_server_listen_tls(
		                         s->srv, "127.0.0.1:0", codecs[i]),
		                 0);
	ck_assert_int_eq(tcpchat_server_listen(s->srv, "127.0.0.1:0", NULL), 0);
	ck_assert_int_eq(tcpchat_server_listen(s->srv, "127.0.0.1:0",
	                                       tcpchat_codec_line()),
	                 0);
	for (int i = 0; i < 3; i++)
		s->tls[i] = tcpchat_server_port(s->srv, i);
	s->plain = tcpchat_server_port(s->srv, 3);
	s->line = tcpchat_server_port(s->srv, 4);
}

static void srv_start(struct tsrv *s, const char *cert, const char *ca,
                      int flags)
{
	srv_new(s, cert, ca, flags);
	ck_assert_int_eq(tcpchat_server_start(s->srv), 0);
}

static void srv_free(struct tsrv *s)
{
	tcpchat_server_destroy(s->srv);
	pthread_mutex_destroy(&s->mu);
}

static void srv_stop(struct tsrv *s)
{
	tcpchat_server_stop(s->srv);
	ck_assert_int_eq(tcpchat_server_join(s->srv), 0);
	srv_free(s);
}

/* ---- TLS clients of the library ------------------------------------------ */

/* What a client trusts and shows: ca and cert (NAME.pem with NAME.key)
 * are files of the certificate directory, NULL for none. */
static tcpchat_tls_config ccfg(const char *ca, const char *cert,
                               const char *server_name)
{
	tcpchat_tls_config c = {0};
	if (cert)
		c = scfg(cert, NULL, 0);
	c.ca_file = cf(ca);
	c.server_name = server_name;
	return c;
}

/* A recording client with codec, over TLS with cfg (NULL: plain TCP). */
static void cli_new(struct cu_rec *r, const tcpchat_codec *codec,
                    const tcpchat_tls_config *cfg)
{
	cu_init(r, NULL);
	ck_assert_int_eq(tcpchat_client_set_codec(r->cli, codec), 0);
	if (cfg) {
		char err[256] = "";
		int rc = tcpchat_client_set_tls(r->cli, cfg, err, sizeof err);
		ck_assert_msg(rc == 0, "client set_tls: %d %s", rc, err);
	}
}

/* Connects a client of cli_new() as name to host:port and starts it. */
static void cli_launch(struct cu_rec *r, const char *host, int port,
                       const char *name)
{
	char addr[64];
	snprintf(addr, sizeof addr, "%s:%d", host, port);
	ck_assert_int_eq(tcpchat_client_connect(r->cli, addr, name), 0);
	ck_assert_int_eq(tcpchat_client_start(r->cli), 0);
}

/* Starts a client as name to 127.0.0.1:port with codec, over TLS with cfg
 * (NULL: plain TCP), without waiting. */
static void cli_go(struct cu_rec *r, int port, const tcpchat_codec *codec,
                   const tcpchat_tls_config *cfg, const char *name)
{
	cli_new(r, codec, cfg);
	cli_launch(r, "127.0.0.1", port, name);
}

/* Waits for r's CONNECTED event. */
static void cli_connected(struct cu_rec *r, const char *name)
{
	struct cu_want w = {.type = TCPCHAT_CEV_CONNECTED};
	if (!cu_wait(r, &w, 1))
		cu_dump(r);
	ck_assert_msg(cu_count(r, &w) == 1, "%s did not connect", name);
}

/* As cli_go(), and waits for CONNECTED. */
static void cli_join(struct cu_rec *r, int port, const tcpchat_codec *codec,
                     const tcpchat_tls_config *cfg, const char *name)
{
	cli_go(r, port, codec, cfg, name);
	cli_connected(r, name);
}

static void cli_done(struct cu_rec *r)
{
	cu_stop(r);
	cu_fini(r);
}

/* Stops and frees two clients and the server. */
static void all_done(struct tsrv *s, struct cu_rec *a, struct cu_rec *b)
{
	cli_done(a);
	cli_done(b);
	srv_stop(s);
}

/* Connects as cli_go() and waits for the DISCONNECTED event, which it
 * returns (the client is freed). */
static struct cu_ev cli_fail(int port, const tcpchat_codec *codec,
                             const tcpchat_tls_config *cfg, const char *name)
{
	struct cu_rec r;
	cli_go(&r, port, codec, cfg, name);
	struct cu_want w = {.type = TCPCHAT_CEV_DISCONNECTED};
	if (!cu_wait(&r, &w, 1))
		cu_dump(&r);
	struct cu_ev e = cu_get(&r, &w, 0);
	fprintf(stderr, "%s: error %d: %s\n", name, e.error, e.text);
	struct cu_want c = {.type = TCPCHAT_CEV_CONNECTED};
	ck_assert_msg(cu_count(&r, &c) == 0, "%s connected", name);
	tcpchat_client_join(r.cli);
	cu_fini(&r);
	return e;
}

/* A TLS connection that must fail with TCPCHAT_ETLS and a text holding
 * reason (NULL: any). */
static void cli_refused(int port, const tcpchat_tls_config *cfg,
                        const char *name, const char *reason)
{
	struct cu_ev e = cli_fail(port, NULL, cfg, name);
	ck_assert_msg(e.error == TCPCHAT_ETLS, "%s: error %d (%s), not ETLS",
	              name, e.error, e.text);
	ck_assert_msg(!reason || strstr(e.text, reason),
	              "%s: '%s' does not say '%s'", name, e.text, reason);
}

/* a and b say something to each other (texts tagged with tag). */
static void chat(struct cu_rec *a, struct cu_rec *b, const char *tag)
{
	char t1[96], t2[96];
	snprintf(t1, sizeof t1, "%s: there", tag);
	snprintf(t2, sizeof t2, "%s: and back", tag);
	ck_assert_int_eq(tcpchat_client_send(a->cli, t1, strlen(t1)), 0);
	cu_wait_text(b, t1);
	ck_assert_int_eq(tcpchat_client_send(b->cli, t2, strlen(t2)), 0);
	cu_wait_text(a, t2);
}

/* from sends n texts; to receives them all, in order. */
static void burst(struct cu_rec *from, struct cu_rec *to, const char *name,
                  int n)
{
	struct cu_want w = {.type = TCPCHAT_CEV_MESSAGE,
	                    .mtype = TCPCHAT_MSG_TEXT,
	                    .sender = name};
	int before = cu_count(to, &w);
	for (int i = 0; i < n; i++) {
		char t[48];
		snprintf(t, sizeof t, "burst %s %04d", name, i);
		ck_assert_int_eq(tcpchat_client_send(from->cli, t, strlen(t)),
		                 0);
	}
	ck_assert_msg(cu_wait(to, &w, before + n), "%d of %d texts",
	              cu_count(to, &w) - before, n);
	for (int i = 0; i < n; i++) {
		char t[48];
		snprintf(t, sizeof t, "burst %s %04d", name, i);
		ck_assert_str_eq(cu_get(to, &w, before + i).body, t);
	}
}

/* ---- a TLS peer of the test's own (OpenSSL, blocking) ----------------- */

struct tpeer {
	struct tu_peer p;
	SSL_CTX *ctx;
	SSL *ssl;
	size_t last_len; /* the length of the last frame taken */
};

/* Connects to 127.0.0.1:port over TLS trusting ca.pem, checking the name
 * localhost; rcvbuf: the socket's receive buffer (0: the default);
 * version: the only TLS version spoken (0: any); cert: the certificate
 * shown (NAME.pem with NAME.key; NULL: none).  Returns 0 or -1 (the
 * handshake failed). */
static int tpeer_connect(struct tpeer *t, int port, const tcpchat_codec *codec,
                         int rcvbuf, int version, const char *cert)
{
	memset(t, 0, sizeof *t);
	t->p.codec = codec ? codec : tcpchat_codec_binary();
	t->p.scratch_len = 1 << 20;
	t->p.scratch = malloc(t->p.scratch_len);
	ck_assert_ptr_nonnull(t->p.scratch);
	t->p.fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(t->p.fd, 0);
	if (rcvbuf)
		setsockopt(t->p.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		           sizeof rcvbuf);
	struct timeval tv = {TU_TIMEOUT / 1000, 0};
	setsockopt(t->p.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(t->p.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(t->p.fd, (struct sockaddr *)&a, sizeof a), 0);
	t->ctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(t->ctx);
	ck_assert_int_eq(
	        SSL_CTX_load_verify_locations(t->ctx, cf("ca.pem"), NULL), 1);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	if (version) {
		SSL_CTX_set_security_level(t->ctx, 0); /* TLS 1.1 too */
		SSL_CTX_set_min_proto_version(t->ctx, version);
		SSL_CTX_set_max_proto_version(t->ctx, version);
	}
	if (cert) {
		tcpchat_tls_config c = scfg(cert, NULL, 0);
		ck_assert_int_eq(
		        SSL_CTX_use_certificate_chain_file(t->ctx, c.cert_file),
		        1);
		ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(t->ctx, c.key_file,
		                                             SSL_FILETYPE_PEM),
		                 1);
	}
	t->ssl = SSL_new(t->ctx);
	ck_assert_ptr_nonnull(t->ssl);
	ck_assert_int_eq(SSL_set1_host(t->ssl, "localhost"), 1);
	SSL_set_fd(t->ssl, t->p.fd);
	if (SSL_connect(t->ssl) != 1) {
		ERR_print_errors_fp(stderr);
		return -1;
	}
	return 0;
}

static void tpeer_close(struct tpeer *t)
{
	if (t->ssl)
		SSL_free(t->ssl);
	if (t->ctx)
		SSL_CTX_free(t->ctx);
	tu_peer_close(&t->p);
}

/* The common name of the server's certificate, in buf. */
static void tpeer_cn(struct tpeer *t, char *buf, int size)
{
	X509 *x = SSL_get1_peer_certificate(t->ssl);
	ck_assert_ptr_nonnull(x);
	buf[0] = '\0';
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf,
	                          size);
	X509_free(x);
}

static void tpeer_send(struct tpeer *t, const tcpchat_msg *m)
{
	tcpchat_buf b = {0};
	ck_assert_int_eq(t->p.codec->encode(t->p.codec->codec_data, m, 0, &b),
	                 0);
	ck_assert_int_eq(SSL_write(t->ssl, b.data, (int)b.len), (int)b.len);
	tcpchat_buf_free(&b);
}

static void tpeer_text(struct tpeer *t, const char *text, size_t len)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT};
	m.body.ptr = text;
	m.body.len = len;
	tpeer_send(t, &m);
}

/* The next message: 1, or -1 when the connection closed, failed or
 * stayed silent for TU_TIMEOUT. */
static int tpeer_recv(struct tpeer *t, struct tu_msg *m)
{
	for (;;) {
		size_t before = t->p.in.len;
		int rc = tu_peer_take(&t->p, m);
		if (rc < 0)
			return -1;
		if (rc) {
			t->last_len = before - t->p.in.len;
			return 1;
		}
		ck_assert_int_eq(tcpchat_buf_reserve(&t->p.in, 65536), 0);
		int n = SSL_read(t->ssl, t->p.in.data + t->p.in.len, 65536);
		if (n <= 0)
			return -1;
		t->p.in.len += (size_t)n;
	}
}

/* The next message of type (others skipped): 1 or -1. */
static int tpeer_expect(struct tpeer *t, uint32_t type, struct tu_msg *m)
{
	int rc;
	while ((rc = tpeer_recv(t, m)) == 1 && m->type != type)
		;
	return rc;
}

/* Sends HELLO with name; 1 when the WELCOME came, -1 if not. */
static int tpeer_hello(struct tpeer *t, const char *name)
{
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
	h.code = TCPCHAT_PROTOCOL_VERSION;
	h.sender.ptr = name;
	h.sender.len = strlen(name);
	tpeer_send(t, &h);
	struct tu_msg m;
	return tpeer_expect(t, TCPCHAT_MSG_WELCOME, &m);
}

static void tpeer_join(struct tpeer *t, int port, int rcvbuf, const char *name)
{
	ck_assert_int_eq(tpeer_connect(t, port, NULL, rcvbuf, 0, NULL), 0);
	ck_assert_int_eq(tpeer_hello(t, name), 1);
}

/* ---- fixture ----------------------------------------------------------- */

static void setup(void)
{
	certs_make();
}

static void teardown(void)
{
	certs_remove();
}

/* ---- loading errors ----------------------------------------------------- */

START_TEST(test_set_tls_errors)
{
	ck_assert_int_eq(tcpchat_tls_available(), 1);
	tcpchat_server *srv;
	ck_assert_int_eq(tcpchat_server_new(&srv), 0);
	char err[256];
	/* nothing loaded yet: no TLS listener */
	ck_assert_int_eq(tcpchat_server_listen_tls(srv, "127.0.0.1:0", NULL),
	                 TCPCHAT_ESTATE);
	ck_assert_int_eq(tcpchat_server_set_tls(srv, NULL, err, sizeof err),
	                 TCPCHAT_EINVAL);
	tcpchat_tls_config c = {0};
	ck_assert_int_eq(tcpchat_server_set_tls(srv, &c, err, sizeof err),
	                 TCPCHAT_EINVAL);
	c = scfg("server.pem", NULL, 0);
	c.flags = 0x100;
	ck_assert_int_eq(tcpchat_server_set_tls(srv, &c, err, sizeof err),
	                 TCPCHAT_EINVAL);

	/* each bad file: ETLS and a sentence that names it */
	const char *garbage = cf_write("garbage.pem", "not a certificate\n");
	struct {
		const char *cert, *key, *ca, *named;
	} bad[] = {
	        {cf("missing.pem"), cf("server.key"), NULL, "missing.pem"},
	        {cf("server.pem"), cf("missing.key"), NULL, "missing.key"},
	        {cf("server.pem"), cf("client.key"), NULL, "client.key"},
	        {garbage, cf("server.key"), NULL, "garbage.pem"},
	        {cf("server.pem"), garbage, NULL, "garbage.pem"},
	        {cf("server.pem"), cf("server.key"), cf("missing-ca.pem"),
	         "missing-ca.pem"},
	        {cf("server.pem"), cf("server.key"), garbage, "garbage.pem"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tcpchat_tls_config b = {bad[i].cert, bad[i].key, bad[i].ca,
		                        NULL, 0};
		err[0] = '\0';
		int rc = tcpchat_server_set_tls(srv, &b, err, sizeof err);
		ck_assert_msg(rc == TCPCHAT_ETLS, "case %zu: %d", i, rc);
		ck_assert_msg(strstr(err, bad[i].named),
		              "case %zu: '%s' does not name %s", i, err,
		              bad[i].named);
	}
	/* a client too */
	tcpchat_client *cli;
	ck_assert_int_eq(tcpchat_client_new(&cli), 0);
	tcpchat_tls_config cc = ccfg("missing-ca.pem", NULL, NULL);
	err[0] = '\0';
	ck_assert_int_eq(tcpchat_client_set_tls(cli, &cc, err, sizeof err),
	                 TCPCHAT_ETLS);
	ck_assert_msg(strstr(err, "missing-ca.pem"), "'%s'", err);
	cc = ccfg("ca.pem", "client.pem", NULL);
	cc.key_file = cf("server.key");
	err[0] = '\0';
	ck_assert_int_eq(tcpchat_client_set_tls(cli, &cc, err, sizeof err),
	                 TCPCHAT_ETLS);
	ck_assert_msg(strstr(err, "server.key"), "'%s'", err);
	cc = ccfg("ca.pem", NULL, NULL);
	ck_assert_int_eq(tcpchat_client_set_tls(cli, &cc, err, sizeof err), 0);
	ck_assert_int_eq(tcpchat_client_set_tls(cli, NULL, err, sizeof err), 0);
	tcpchat_client_destroy(cli);
	tcpchat_server_destroy(srv);

	/* a failed replacement changes nothing: the old one still serves */
	struct tsrv s;
	srv_start(&s, "server.pem", NULL, 0);
	tcpchat_tls_config w = scfg("wronghost.pem", NULL, 0);
	w.key_file = cf("server.key"); /* not its key */
	ck_assert_int_eq(tcpchat_server_set_tls(s.srv, &w, err, sizeof err),
	                 TCPCHAT_ETLS);
	w = scfg("wronghost.pem", NULL, 0);
	w.ca_file = garbage;
	ck_assert_int_eq(tcpchat_server_set_tls(s.srv, &w, err, sizeof err),
	                 TCPCHAT_ETLS);
	tcpchat_tls_config cl = ccfg("ca.pem", NULL, "localhost");
	struct cu_rec a, b;
	cli_join(&a, s.tls[0], NULL, &cl, "alice");
	cli_join(&b, s.tls[0], NULL, &cl, "bob");
	chat(&a, &b, "old config");
	all_done(&s, &a, &b);
}
END_TEST

/* ---- chatting ------------------------------------------------------------ */

START_TEST(test_codecs)
{
	struct tsrv s;
	srv_start(&s, "server.pem", NULL, 0);
	tcpchat_tls_config cl = ccfg("ca.pem", NULL, NULL); /* 127.0.0.1 */
	const tcpchat_codec *codecs[3] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_line(),
	                                  tcpchat_codec_json()};
	/* a plain client in the same chat */
	struct cu_rec plain;
	cli_join(&plain, s.plain, NULL, NULL, "plain");
	for (int i = 0; i < 3; i++) {
		struct cu_rec a, b;
		char na[16], nb[16];
		snprintf(na, sizeof na, "a%d", i);
		snprintf(nb, sizeof nb, "b%d", i);
		cli_join(&a, s.tls[i], codecs[i], &cl, na);
		cli_join(&b, s.tls[i], codecs[i], &cl, nb);
		chat(&a, &b, codecs[i]->name);
		char t[64];
		snprintf(t, sizeof t, "%s to plain", na);
		ck_assert_int_eq(tcpchat_client_send(a.cli, t, strlen(t)), 0);
		cu_wait_text(&plain, t);
		snprintf(t, sizeof t, "plain to %s", nb);
		ck_assert_int_eq(tcpchat_client_send(plain.cli, t, strlen(t)),
		                 0);
		cu_wait_text(&b, t);
		ck_assert_str_eq(srv_subject(&s, na), "(none)");
		cli_done(&a);
		cli_done(&b);
	}
	ck_assert_str_eq(srv_subject(&s, "plain"), "(none)");
	cli_done(&plain);
	srv_stop(&s);
}
END_TEST

static void *run_thread(void *arg)
{
	return (void *)(intptr_t)tcpchat_server_run(arg);
}

struct stepper {
	tcpchat_server *srv;
	atomic_int rc;
};

static void *step_thread(void *arg)
{
	struct stepper *st = arg;
	int fd = tcpchat_server_fd(st->srv);
	int rc;
	do {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		poll(&p, 1, tcpchat_server_timeout_ms(st->srv));
		rc = tcpchat_server_step(st->srv);
	} while (rc == 0);
	atomic_store(&st->rc, rc);
	return NULL;
}

/* mode 0: own thread, 1: run() on a thread, 2: step() driven by a host
 * loop on its fd. */
static void chat_in_mode(int mode)
{
	struct tsrv s;
	srv_new(&s, "server.pem", "ca.pem", 0);
	pthread_t th;
	struct stepper st = {s.srv, 0};
	if (mode == 0)
		ck_assert_int_eq(tcpchat_server_start(s.srv), 0);
	else if (mode == 1)
		ck_assert_int_eq(pthread_create(&th, NULL, run_thread, s.srv),
		                 0);
	else
		ck_assert_int_eq(pthread_create(&th, NULL, step_thread, &st),
		                 0);
	tcpchat_tls_config cl = ccfg("ca.pem", "client.pem", "localhost");
	struct cu_rec a, b;
	cli_join(&a, s.tls[0], NULL, &cl, "alice");
	cli_join(&b, s.tls[1], tcpchat_codec_line(), &cl, "bob");
	chat(&a, &b, mode == 0 ? "thread" : mode == 1 ? "run" : "step");
	/* a burst each way: records the loop must drain without the fd
	 * telling it */
	burst(&a, &b, "alice", 300);
	burst(&b, &a, "bob", 300);
	ck_assert_str_eq(srv_subject(&s, "bob"), "CN=alice");
	cli_done(&a);
	cli_done(&b);
	if (mode == 0) {
		srv_stop(&s);
		return;
	}
	tcpchat_server_stop(s.srv);
	void *ret;
	ck_assert_int_eq(pthread_join(th, &ret), 0);
	if (mode == 1)
		ck_assert_int_eq((int)(intptr_t)ret, 0);
	else
		ck_assert_int_eq(atomic_load(&st.rc), 1);
	srv_free(&s);
}

START_TEST(test_run_modes)
{
	chat_in_mode(0);
	chat_in_mode(1);
#if TCPCHAT_USE_EPOLL
	chat_in_mode(2);
#endif
}
END_TEST

/* ---- large messages and bursts ------------------------------------------- */

/* More than the socket buffers hold (tcp_wmem's largest is 4 MiB): the
 * server's writes to a reader that does not read must stop half-way. */
#define BIG_N 96
#define SMALL_N 3000

/* buf[0..cap): "big-NNN:" then letters, not NUL-terminated. */
static void big_text(char *buf, size_t cap, int i)
{
	char head[16];
	int n = snprintf(head, sizeof head, "big-%03d:", i);
	memset(buf, 'a' + i % 26, cap);
	memcpy(buf, head, (size_t)n);
}

/* Queues text, waiting while the client's queue is full. */
static void send_retry(tcpchat_client *cli, const char *text, size_t len)
{
	int rc;
	int64_t end = tu_now_ms() + TU_TIMEOUT;
	while ((rc = tcpchat_client_send(cli, text, len)) ==
	               TCPCHAT_EQUEUEFULL &&
	       tu_now_ms() < end)
		sched_yield();
	ck_assert_int_eq(rc, 0);
}

/* Waits until the counter at offset field of the server's stats reaches
 * want; 1 if it did within TU_TIMEOUT. */
struct stat_arg {
	tcpchat_server *srv;
	size_t field;
	uint64_t want;
};

static int cond_stat(void *p)
{
	struct stat_arg *a = p;
	tcpchat_server_stats st = tu_stats(a->srv);
	uint64_t v;
	memcpy(&v, (const char *)&st + a->field, sizeof v);
	return v >= a->want;
}

static int wait_stat(tcpchat_server *srv, size_t field, uint64_t want)
{
	struct stat_arg a = {srv, field, want};
	return tu_wait_until(cond_stat, &a, TU_TIMEOUT);
}

#define WAIT_STAT(srv, name, want)                                             \
	wait_stat((srv), offsetof(tcpchat_server_stats, name), (want))

START_TEST(test_large_and_burst)
{
	struct tsrv s;
	srv_new(&s, "server.pem", NULL, 0);
	/* the reader's queue holds everything: only TLS writes are partial */
	ck_assert_int_eq(tcpchat_server_set_option(
	                         s.srv, TCPCHAT_SOPT_QUEUE_BYTES, 64 << 20),
	                 0);
	ck_assert_int_eq(tcpchat_server_set_option(
	                         s.srv, TCPCHAT_SOPT_QUEUE_FRAMES, 1 << 16),
	                 0);
	ck_assert_int_eq(tcpchat_server_start(s.srv), 0);

	struct tpeer rd;
	tpeer_join(&rd, s.tls[0], 4096, "reader");
	tcpchat_tls_config cl = ccfg("ca.pem", NULL, "localhost");
	struct cu_rec w;
	cli_join(&w, s.tls[0], NULL, &cl, "writer");

	static char big[70000];
	size_t fit = 0;
	tcpchat_server_stats st0 = tu_stats(s.srv);
	for (int i = 0; i < BIG_N; i++) {
		big_text(big, sizeof big, i);
		fit = tcpchat_client_text_fit(w.cli, NULL, NULL, big,
		                              sizeof big);
		ck_assert_uint_gt(fit, 60000);
		send_retry(w.cli, big, fit);
	}
	for (int i = 0; i < SMALL_N; i++) {
		char t[32];
		snprintf(t, sizeof t, "small-%05d", i);
		send_retry(w.cli, t, strlen(t));
	}
	/* the server has everything while the reader has read nothing */
	ck_assert_msg(
	        WAIT_STAT(s.srv, msgs_in, st0.msgs_in + BIG_N + SMALL_N),
	        "the server got %llu texts",
	        (unsigned long long)(tu_stats(s.srv).msgs_in - st0.msgs_in));
	uint64_t out = tu_stats(s.srv).bytes_out - st0.bytes_out;
	ck_assert_msg(out < (uint64_t)BIG_N * fit,
	              "%llu bytes written to a reader that reads nothing",
	              (unsigned long long)out);
	struct tu_msg m;
	for (int i = 0; i < BIG_N + SMALL_N; i++) {
		ck_assert_msg(tpeer_expect(&rd, TCPCHAT_MSG_TEXT, &m) == 1,
		              "text %d never came", i);
		char want[32];
		if (i < BIG_N) {
			snprintf(want, sizeof want, "big-%03d:", i);
			ck_assert_msg(strncmp(m.body, want, strlen(want)) == 0,
			              "text %d: %.20s", i, m.body);
			ck_assert_uint_gt(rd.last_len, fit);
		} else {
			snprintf(want, sizeof want, "small-%05d", i - BIG_N);
			ck_assert_str_eq(m.body, want);
		}
		ck_assert_str_eq(m.sender, "writer");
	}

	/* the other way: a burst from the peer to the library's client */
	for (int i = 0; i < BIG_N; i++) {
		big_text(big, sizeof big, i);
		tpeer_text(&rd, big, 60000);
	}
	for (int i = 0; i < SMALL_N; i++) {
		char t[32];
		snprintf(t, sizeof t, "back-%05d", i);
		tpeer_text(&rd, t, strlen(t));
	}
	struct cu_want from = {.type = TCPCHAT_CEV_MESSAGE,
	                       .mtype = TCPCHAT_MSG_TEXT,
	                       .sender = "reader"};
	ck_assert_msg(cu_wait(&w, &from, BIG_N + SMALL_N), "got %d texts",
	              cu_count(&w, &from));
	for (int i = 0; i < BIG_N + SMALL_N; i++) {
		struct cu_ev e = cu_get(&w, &from, i);
		char want[32];
		if (i < BIG_N) {
			snprintf(want, sizeof want, "big-%03d:", i);
			ck_assert_msg(strncmp(e.body, want, strlen(want)) == 0,
			              "text %d: %.20s", i, e.body);
		} else {
			snprintf(want, sizeof want, "back-%05d", i - BIG_N);
			ck_assert_str_eq(e.body, want);
		}
	}
	tpeer_close(&rd);
	cli_done(&w);
	srv_stop(&s);
}
END_TEST

/* The slow-consumer policies drop frames from the queue of a reader
 * whose TLS writes are stuck half-way: what it reads still decodes, in
 * order, with gaps. */
static void drop_policy(int policy)
{
	struct tsrv s;
	srv_new(&s, "server.pem", NULL, 0);
	ck_assert_int_eq(
	        tcpchat_server_set_option(s.srv, TCPCHAT_SOPT_QUEUE_FRAMES, 32),
	        0);
	ck_assert_int_eq(tcpchat_server_set_option(
	                         s.srv, TCPCHAT_SOPT_SLOW_POLICY, policy),
	                 0);
	ck_assert_int_eq(tcpchat_server_start(s.srv), 0);
	struct tpeer rd;
	tpeer_join(&rd, s.tls[0], 4096, "reader");
	tcpchat_tls_config cl = ccfg("ca.pem", NULL, "localhost");
	struct cu_rec w;
	cli_join(&w, s.tls[0], NULL, &cl, "writer");
	tcpchat_server_stats st0 = tu_stats(s.srv);
	enum { N = 3000 };
	static char text[2000];
	for (int i = 0; i < N; i++) {
		memset(text, 'x', sizeof text);
		memcpy(text, "n-", 2);
		char num[8];
		snprintf(num, sizeof num, "%05d", i);
		memcpy(text + 2, num, 5);
		send_retry(w.cli, text, sizeof text);
	}
	ck_assert(WAIT_STAT(s.srv, msgs_in, st0.msgs_in + N));
	/* the snapshot that counts the texts in counts their drops */
	uint64_t dropped = tu_stats(s.srv).dropped - st0.dropped;
	ck_assert_uint_gt(dropped, 0);
	int last = -1, got = 0;
	struct tu_msg m;
	while (got < N - (int)dropped) {
		ck_assert_msg(tpeer_expect(&rd, TCPCHAT_MSG_TEXT, &m) == 1,
		              "policy %d: stopped after %d (%d texts of %d)",
		              policy, last, got, N - (int)dropped);
		ck_assert_uint_eq(m.body_len, sizeof text);
		int n = atoi(m.body + 2);
		ck_assert_msg(n > last, "policy %d: %d after %d", policy, n,
		              last);
		last = n;
		got++;
	}
	if (policy == TCPCHAT_SLOW_DROP_OLDEST)
		ck_assert_int_eq(last, N - 1);
	ck_assert_int_lt(got, N);
	tpeer_close(&rd);
	cli_done(&w);
	srv_stop(&s);
}

START_TEST(test_drops_under_tls)
{
	drop_policy(TCPCHAT_SLOW_DROP_NEWEST);
	drop_policy(TCPCHAT_SLOW_DROP_OLDEST);
}
END_TEST

/* ---- client certificates ----------------------------------------------- */

START_TEST(test_client_cert_subject)
{
	struct tsrv s;
	srv_start(&s, "server.pem", "ca.pem", 0);
	tcpchat_tls_config with = ccfg("ca.pem", "client.pem", "localhost");
	tcpchat_tls_config without = ccfg("ca.pem", NULL, "localhost");
	struct cu_rec a, b, p;
	cli_join(&a, s.tls[0], NULL, &with, "alice");
	cli_join(&b, s.tls[2], tcpchat_codec_json(), &without, "bob");
	cli_join(&p, s.plain, NULL, NULL, "plain");
	ck_assert_str_eq(srv_subject(&s, "alice"), "CN=alice");
	ck_assert_str_eq(srv_subject(&s, "bob"), "(none)");
	ck_assert_str_eq(srv_subject(&s, "plain"), "(none)");
	chat(&a, &b, "optional certificate");
	/* without REQUIRE_CERT a certificate that does not verify is still
	 * refused */
	tcpchat_tls_config bad = ccfg("ca.pem", "badclient.pem", "localhost");
	cli_refused(s.tls[0], &bad, "mallory", NULL);
	ck_assert_ptr_null(srv_subject(&s, "mallory"));
	chat(&b, &p, "after mallory");
	cli_done(&a);
	cli_done(&b);
	cli_done(&p);
	srv_stop(&s);
}
END_TEST

START_TEST(test_require_cert)
{
	struct tsrv s;
	srv_start(&s, "server.pem", "ca.pem", TCPCHAT_TLS_REQUIRE_CERT);
	tcpchat_tls_config with = ccfg("ca.pem", "client.pem", "localhost");
	struct cu_rec a, b;
	cli_join(&a, s.tls[0], NULL, &with, "alice");
	cli_join(&b, s.tls[0], NULL, &with, "bob");
	chat(&a, &b, "before");
	tcpchat_tls_config none = ccfg("ca.pem", NULL, "localhost");
	cli_refused(s.tls[0], &none, "nocert", "certificate required");
	tcpchat_tls_config bad = ccfg("ca.pem", "badclient.pem", "localhost");
	cli_refused(s.tls[0], &bad, "mallory", "unknown ca");
	ck_assert_ptr_null(srv_subject(&s, "nocert"));
	ck_assert_ptr_null(srv_subject(&s, "mallory"));
	chat(&a, &b, "after");
	ck_assert_str_eq(srv_subject(&s, "bob"), "CN=alice");
	all_done(&s, &a, &b);
}
END_TEST

/* ---- failed checks --------------------------------------------------- */

START_TEST(test_verify_failures)
{
	struct tsrv s;
	srv_start(&s, "server.pem", NULL, 0);
	struct cu_rec keep, other;
	tcpchat_tls_config good = ccfg("ca.pem", NULL, "localhost");
	cli_join(&keep, s.tls[0], NULL, &good, "keep");
	cli_join(&other, s.plain, NULL, NULL, "other");

	tcpchat_tls_config wrong_ca = ccfg("other-ca.pem", NULL, "localhost");
	cli_refused(s.tls[0], &wrong_ca, "wrongca",
	            "certificate verify failed");
	tcpchat_tls_config name = ccfg("ca.pem", NULL, "other.example");
	cli_refused(s.tls[0], &name, "wrongname", "hostname mismatch");

	srv_tls(&s, "expired.pem", NULL, 0);
	cli_refused(s.tls[0], &good, "expired", "certificate has expired");

	srv_tls(&s, "wronghost.pem", NULL, 0);
	cli_refused(s.tls[0], &good, "wronghost", "hostname mismatch");
	tcpchat_tls_config by_ip = ccfg("ca.pem", NULL, NULL);
	cli_refused(s.tls[0], &by_ip, "wrongip", "IP address mismatch");
	/* the name the certificate has is fine */
	tcpchat_tls_config right = ccfg("ca.pem", NULL, "other.example");
	struct cu_rec ok;
	cli_join(&ok, s.tls[0], NULL, &right, "right");
	chat(&ok, &keep, "wronghost.pem as other.example");
	cli_done(&ok);

	/* NO_VERIFY takes anything */
	srv_tls(&s, "expired.pem", NULL, 0);
	tcpchat_tls_config any = ccfg(NULL, NULL, NULL);
	any.flags = TCPCHAT_TLS_NO_VERIFY;
	cli_join(&ok, s.tls[0], NULL, &any, "noverify");
	chat(&ok, &other, "no verify");
	cli_done(&ok);

	chat(&keep, &other, "still there");
	ck_assert_ptr_null(srv_subject(&s, "wrongca"));
	ck_assert_ptr_null(srv_subject(&s, "expired"));
	cli_done(&keep);
	cli_done(&other);
	srv_stop(&s);
}
END_TEST

/* ---- plain and TLS mixed up -------------------------------------------- */

START_TEST(test_plain_on_tls)
{
	struct tsrv s;
	srv_start(&s, "server.pem", NULL, 0);
	tcpchat_tls_config good = ccfg("ca.pem", NULL, NULL);
	struct cu_rec a, b;
	cli_join(&a, s.tls[0], NULL, &good, "alice");

	/* a raw plain peer: one line that speaks of TLS, then closed */
	for (int i = 0; i < 3; i++) {
		struct tu_peer p;
		ck_assert_int_eq(tu_peer_connect(&p, s.tls[i], NULL, 0), 0);
		if (i == 1) {
			tu_peer_send_line(&p, "bob");
		} else {
			tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
			h.code = TCPCHAT_PROTOCOL_VERSION;
			h.sender.ptr = "bob";
			h.sender.len = 3;
			tu_peer_send_msg(&p, &h);
		}
		char line[512] = "";
		int rc = tu_peer_line(&p, line, sizeof line, TU_TIMEOUT);
		ck_assert_msg(rc == 1 && strstr(line, "TLS"),
		              "listener %d: %d '%s'", i, rc, line);
		ck_assert_msg(tu_peer_wait_closed(&p, TU_TIMEOUT),
		              "listener %d: not closed", i);
		tu_peer_close(&p);
	}
	/* the library's plain client fails, and clearly */
	for (int i = 0; i < 3; i++) {
		const tcpchat_codec *codecs[3] = {tcpchat_codec_binary(),
		                                  tcpchat_codec_line(),
		                                  tcpchat_codec_json()};
		struct cu_ev e = cli_fail(s.tls[i], codecs[i], NULL, "plain");
		ck_assert_msg(e.error < 0 && e.text[0],
		              "listener %d: error %d '%s'", i, e.error, e.text);
		/* the notice is not a frame of these codecs: the client
		 * recognises it (the line codec reads it as a line) */
		if (codecs[i] != tcpchat_codec_line())
			ck_assert_msg(strstr(e.text, "TLS"),
			              "listener %d: '%s'", i, e.text);
	}
	cli_join(&b, s.tls[0], NULL, &good, "bob");
	chat(&a, &b, "after the plain ones");

	/* a TLS client on a plain listener */
	cli_refused(s.plain, &good, "tls-on-binary", NULL);
	cli_refused(s.line, &good, "tls-on-line", "wrong version number");
	chat(&a, &b, "after the TLS ones");
	ck_assert_ptr_null(srv_subject(&s, "plain"));
	all_done(&s, &a, &b);
}
END_TEST

/* ---- replacing the configuration --------------------------------------- */

START_TEST(test_replace_while_connected)
{
	struct tsrv s;
	srv_start(&s, "server.pem", NULL, 0);
	tcpchat_tls_config good = ccfg("ca.pem", NULL, "localhost");
	struct cu_rec a, b;
	cli_join(&a, s.tls[0], NULL, &good, "alice");
	struct tpeer t;
	char cn[64];
	ck_assert_int_eq(tpeer_connect(&t, s.tls[0], NULL, 0, 0, NULL), 0);
	tpeer_cn(&t, cn, sizeof cn);
	ck_assert_str_eq(cn, "localhost");
	tpeer_close(&t);

	/* a certificate for another name: new connections see it */
	srv_tls(&s, "wronghost.pem", NULL, 0);
	cli_refused(s.tls[0], &good, "late", "hostname mismatch");
	/* another one for the right names */
	srv_tls(&s, "server2.pem", NULL, 0);
	ck_assert_int_eq(
	        tpeer_connect(&t, s.tls[1], tcpchat_codec_line(), 0, 0, NULL),
	        0);
	tpeer_cn(&t, cn, sizeof cn);
	ck_assert_str_eq(cn, "localhost-2");
	tpeer_close(&t);
	cli_join(&b, s.tls[0], NULL, &good, "bob");
	/* alice, connected before, kept her connection */
	chat(&a, &b, "across replacements");
	struct cu_want d = {.type = TCPCHAT_CEV_DISCONNECTED};
	ck_assert_int_eq(cu_count(&a, &d), 0);
	all_done(&s, &a, &b);
}
END_TEST

/* ---- versions, key updates ------------------------------------------- */

/* t sends a text that a receives, a one that t receives. */
static void tpeer_chat(struct tpeer *t, const char *tname, struct cu_rec *a,
                       const char *tag)
{
	char t1[64], t2[64];
	snprintf(t1, sizeof t1, "%s from %s", tag, tname);
	snprintf(t2, sizeof t2, "%s to %s", tag, tname);
	tpeer_text(t, t1, strlen(t1));
	cu_wait_text(a, t1);
	ck_assert_int_eq(tcpchat_client_send(a->cli, t2, strlen(t2)), 0);
	struct tu_msg m;
	ck_assert_int_eq(tpeer_expect(t, TCPCHAT_MSG_TEXT, &m), 1);
	ck_assert_str_eq(m.body, t2);
}

START_TEST(test_versions_and_key_updates)
{
	struct tsrv s;
	srv_start(&s, "server.pem", "ca.pem", TCPCHAT_TLS_REQUIRE_CERT);
	tcpchat_tls_config with = ccfg("ca.pem", "client.pem", "localhost");
	struct cu_rec a;
	cli_join(&a, s.tls[0], NULL, &with, "alice");
	uint64_t failed0 = tu_stats(s.srv).tls_failed;

	struct tpeer t;
	ck_assert_int_eq(tpeer_connect(&t, s.tls[0], NULL, 0, TLS1_2_VERSION,
	                               "client.pem"),
	                 0);
	ck_assert_str_eq(SSL_get_version(t.ssl), "TLSv1.2");
	ck_assert_int_eq(tpeer_hello(&t, "t12"), 1);
	ck_assert_str_eq(srv_subject(&s, "t12"), "CN=alice");
	tpeer_chat(&t, "t12", &a, "TLS 1.2");
	tpeer_close(&t);
	/* TLS 1.2 without a certificate fails in the handshake itself */
	ck_assert_int_eq(
	        tpeer_connect(&t, s.tls[0], NULL, 0, TLS1_2_VERSION, NULL), -1);
	tpeer_close(&t);
	/* TLS 1.1: not spoken */
	ck_assert_int_eq(tpeer_connect(&t, s.tls[0], NULL, 0, TLS1_1_VERSION,
	                               "client.pem"),
	                 -1);
	tpeer_close(&t);

	/* TLS 1.3 key updates, asked of the server too, both ways */
	ck_assert_int_eq(tpeer_connect(&t, s.tls[0], NULL, 0, TLS1_3_VERSION,
	                               "client.pem"),
	                 0);
	ck_assert_int_eq(tpeer_hello(&t, "t13"), 1);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(
		        SSL_key_update(t.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
		char tag[32];
		snprintf(tag, sizeof tag, "key update %d", i);
		tpeer_chat(&t, "t13", &a, tag);
	}
	tpeer_close(&t);

	ck_assert_msg(WAIT_STAT(s.srv, tls_failed, failed0 + 2),
	              "tls_failed went from %llu to %llu",
	              (unsigned long long)failed0,
	              (unsigned long long)tu_stats(s.srv).tls_failed);
	cli_done(&a);
	srv_stop(&s);
}
END_TEST

/* ---- hostile and broken peers, counted -------------------------------- */

START_TEST(test_broken_handshakes)
{
	struct tsrv s;
	srv_new(&s, "server.pem", "ca.pem", 0);
	ck_assert_int_eq(
	        tcpchat_server_set_option(s.srv, TCPCHAT_SOPT_HANDSHAKE_TIMEOUT,
	                                  tu_ms(500)),
	        0);
	ck_assert_int_eq(tcpchat_server_start(s.srv), 0);
	tcpchat_tls_config good = ccfg("ca.pem", "client.pem", "localhost");
	struct cu_rec a, b;
	cli_join(&a, s.tls[0], NULL, &good, "alice");
	uint64_t failed0 = tu_stats(s.srv).tls_failed;

	/* a handshake record of garbage */
	struct tu_peer p;
	ck_assert_int_eq(tu_peer_connect(&p, s.tls[0], NULL, 0), 0);
	static const unsigned char junk[] = {0x16, 0x03, 0x01, 0x00, 0x08,
	                                     0xde, 0xad, 0xbe, 0xef, 0x00,
	                                     0x11, 0x22, 0x33};
	tu_peer_send_raw(&p, junk, sizeof junk);
	ck_assert_msg(tu_peer_wait_closed(&p, TU_TIMEOUT), "junk: not closed");
	tu_peer_close(&p);
	/* half a record, then silence: the handshake timeout ends it */
	ck_assert_int_eq(tu_peer_connect(&p, s.tls[1], NULL, 0), 0);
	tu_peer_send_raw(&p, junk, 3);
	ck_assert_msg(tu_peer_wait_closed(&p, TU_TIMEOUT), "stall: not closed");
	tu_peer_close(&p);
	/* nothing at all */
	ck_assert_int_eq(tu_peer_connect(&p, s.tls[2], NULL, 0), 0);
	ck_assert_msg(tu_peer_wait_closed(&p, TU_TIMEOUT),
	              "silent: not closed");
	tu_peer_close(&p);
	/* a TLS peer that leaves in the middle of the handshake: its
	 * ClientHello goes out, the server answers, nothing more */
	ck_assert_int_eq(tu_peer_connect(&p, s.tls[0], NULL, 0), 0);
	{
		SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
		SSL *ssl = SSL_new(ctx);
		BIO *wbio = BIO_new(BIO_s_mem());
		SSL_set_bio(ssl, BIO_new(BIO_s_mem()), wbio);
		SSL_set_connect_state(ssl);
		ck_assert_int_eq(SSL_do_handshake(ssl), -1);
		char *hello;
		long n = BIO_get_mem_data(wbio, &hello);
		ck_assert_int_gt(n, 0);
		tu_peer_send_raw(&p, hello, (size_t)n);
		struct pollfd pfd = {.fd = p.fd, .events = POLLIN};
		ck_assert_int_eq(poll(&pfd, 1, TU_TIMEOUT), 1);
		SSL_free(ssl);
		SSL_CTX_free(ctx);
	}
	tu_peer_close(&p);
	/* a certificate of another CA */
	tcpchat_tls_config bad = ccfg("ca.pem", "badclient.pem", "localhost");
	cli_refused(s.tls[0], &bad, "mallory", "unknown ca");

	/* the garbage and the certificate at least (timeouts may count as
	 * such or not) */
	ck_assert_msg(WAIT_STAT(s.srv, tls_failed, failed0 + 2),
	              "tls_failed went from %llu to %llu",
	              (unsigned long long)failed0,
	              (unsigned long long)tu_stats(s.srv).tls_failed);
	cli_join(&b, s.tls[2], tcpchat_codec_json(), &good, "bob");
	chat(&a, &b, "after the broken ones");
	all_done(&s, &a, &b);
}
END_TEST

/* ---- reconnecting, IPv6, shutting down ---------------------------------- */

static void set_reconnect(tcpchat_client *c)
{
	ck_assert_int_eq(
	        tcpchat_client_set_option(c, TCPCHAT_COPT_RECONNECT, 1), 0);
	ck_assert_int_eq(
	        tcpchat_client_set_option(c, TCPCHAT_COPT_RECONNECT_MIN, 20),
	        0);
	ck_assert_int_eq(
	        tcpchat_client_set_option(c, TCPCHAT_COPT_RECONNECT_MAX, 100),
	        0);
}

START_TEST(test_reconnect)
{
	struct tsrv s;
	srv_start(&s, "server.pem", NULL, 0);
	struct cu_proxy px;
	cu_proxy_start(&px, s.tls[0]);
	tcpchat_tls_config good = ccfg("ca.pem", NULL, "localhost");
	struct cu_rec a, b;
	cli_new(&a, NULL, &good);
	set_reconnect(a.cli);
	cli_launch(&a, "127.0.0.1", px.port, "alice");
	cli_connected(&a, "alice");
	cli_join(&b, s.tls[0], NULL, &good, "bob");
	chat(&a, &b, "before the cut");
	cu_proxy_cut(&px);
	struct cu_want ok = {.type = TCPCHAT_CEV_RECONNECTED};
	if (!cu_wait(&a, &ok, 1))
		cu_dump(&a);
	ck_assert_msg(cu_count(&a, &ok) >= 1, "alice did not reconnect");
	chat(&a, &b, "after the cut");

	/* a certificate that fails to verify is not tried again */
	struct cu_rec c;
	tcpchat_tls_config wrong = ccfg("other-ca.pem", NULL, "localhost");
	cli_new(&c, NULL, &wrong);
	set_reconnect(c.cli);
	cli_launch(&c, "127.0.0.1", s.tls[0], "carol");
	struct cu_want d = {.type = TCPCHAT_CEV_DISCONNECTED};
	if (!cu_wait(&c, &d, 1))
		cu_dump(&c);
	struct cu_ev e = cu_get(&c, &d, 0);
	ck_assert_int_eq(e.error, TCPCHAT_ETLS);
	ck_assert_msg(strstr(e.text, "certificate verify failed"), "'%s'",
	              e.text);
	struct cu_want again = {.type = TCPCHAT_CEV_RECONNECTING};
	ck_assert_int_eq(cu_count(&c, &again), 0);
	tcpchat_client_join(c.cli);
	cu_fini(&c);

	cli_done(&a);
	cli_done(&b);
	cu_proxy_stop(&px);
	srv_stop(&s);
}
END_TEST

/* ::1 where the system has IPv6 (the certificate names it). */
START_TEST(test_ipv6)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a6 = {0};
	a6.sin6_family = AF_INET6;
	a6.sin6_addr = in6addr_loopback;
	int have = fd >= 0 && bind(fd, (struct sockaddr *)&a6, sizeof a6) == 0;
	if (fd >= 0)
		close(fd);
	if (!have)
		return;
	struct tsrv s;
	srv_new(&s, "server.pem", NULL, 0);
	ck_assert_int_eq(tcpchat_server_listen_tls(s.srv, "[::1]:0", NULL), 0);
	int port6 = tcpchat_server_port(s.srv, 5);
	ck_assert_int_gt(port6, 0);
	ck_assert_int_eq(tcpchat_server_start(s.srv), 0);
	tcpchat_tls_config by_ip = ccfg("ca.pem", NULL, NULL);
	struct cu_rec a, b;
	cli_new(&a, NULL, &by_ip);
	cli_launch(&a, "[::1]", port6, "alice");
	cli_connected(&a, "alice");
	cli_join(&b, s.tls[0], NULL, &by_ip, "bob");
	chat(&a, &b, "IPv6");
	all_done(&s, &a, &b);
}
END_TEST

START_TEST(test_shutdown)
{
	struct tsrv s;
	srv_start(&s, "server.pem", NULL, 0);
	tcpchat_tls_config good = ccfg("ca.pem", NULL, "localhost");
	struct cu_rec a, b;
	cli_join(&a, s.tls[0], NULL, &good, "alice");
	cli_join(&b, s.tls[1], tcpchat_codec_line(), &good, "bob");
	chat(&a, &b, "before the end");
	tcpchat_server_stop(s.srv);
	struct cu_want d = {.type = TCPCHAT_CEV_DISCONNECTED};
	ck_assert(cu_wait(&a, &d, 1));
	ck_assert(cu_wait(&b, &d, 1));
	/* the closing ERROR came through TLS */
	ck_assert_int_eq(cu_get(&a, &d, 0).error, TCPCHAT_ESHUTDOWN);
	ck_assert_int_eq(cu_get(&b, &d, 0).error, TCPCHAT_ESHUTDOWN);
	ck_assert_int_eq(tcpchat_server_join(s.srv), 0);
	tcpchat_client_join(a.cli);
	tcpchat_client_join(b.cli);
	cu_fini(&a);
	cu_fini(&b);
	srv_free(&s);
}
END_TEST

static Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("tls");
	tcase_add_unchecked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_set_tls_errors);
	tcase_add_test(tc, test_codecs);
	tcase_add_test(tc, test_run_modes);
	tcase_add_test(tc, test_large_and_burst);
	tcase_add_test(tc, test_drops_under_tls);
	tcase_add_test(tc, test_client_cert_subject);
	tcase_add_test(tc, test_require_cert);
	tcase_add_test(tc, test_verify_failures);
	tcase_add_test(tc, test_plain_on_tls);
	tcase_add_test(tc, test_replace_while_connected);
	tcase_add_test(tc, test_versions_and_key_updates);
	tcase_add_test(tc, test_broken_handshakes);
	tcase_add_test(tc, test_reconnect);
	tcase_add_test(tc, test_ipv6);
	tcase_add_test(tc, test_shutdown);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run_suite(tls_suite());
}
