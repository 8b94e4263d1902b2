/* What the server does for people at a terminal (nc on the line codec)
 * and for the operator who watches them: blank texts refused on every
 * codec, the greeting of the line codec and how clients skip it, the
 * answers to /help and to commands the codec does not know, readers who
 * never type are not closed (TCP keepalive instead), the limit in words
 * when a line is too long, and the DEBUG log lines of a session. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "roomutil.h"
#include "testutil.h"

/* ---- a server whose LOG, LEAVE and DROP events are recorded -------------- */

#define LOG_N 256

struct slog {
	pthread_mutex_t mu;
	int n; /* under mu */
	struct {
		int level;
		char text[300];
	} v[LOG_N];
	atomic_int drops, leaves;
};

static int shandler(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	struct slog *r = ud;
	(void)srv;
	if (ev->type == TCPCHAT_SEV_LOG) {
		pthread_mutex_lock(&r->mu);
		if (r->n < LOG_N) {
			r->v[r->n].level = ev->level;
			snprintf(r->v[r->n].text, sizeof r->v[r->n].text, "%s",
			         ev->text);
			r->n++;
		}
		pthread_mutex_unlock(&r->mu);
	} else if (ev->type == TCPCHAT_SEV_DROP) {
		atomic_fetch_add(&r->drops, 1);
	} else if (ev->type == TCPCHAT_SEV_LEAVE) {
		atomic_fetch_add(&r->leaves, 1);
	}
	return 0;
}

static struct slog *slog_new(void)
{
	struct slog *r = calloc(1, sizeof *r);
	ck_assert_ptr_nonnull(r);
	pthread_mutex_init(&r->mu, NULL);
	return r;
}

static void slog_free(struct slog *r)
{
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* The level of the first line that starts with prefix, or -1; the whole
 * line is copied to line (when not NULL). */
static int slog_find(struct slog *r, const char *prefix, char *line, size_t cap)
{
	int level = -1;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n && level < 0; i++) {
		if (strncmp(r->v[i].text, prefix, strlen(prefix)) == 0) {
			level = r->v[i].level;
			if (line)
				snprintf(line, cap, "%s", r->v[i].text);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return level;
}

static int slog_count_level(struct slog *r, int level)
{
	int k = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n; i++)
		k += r->v[i].level == level;
	pthread_mutex_unlock(&r->mu);
	return k;
}

struct find_arg {
	struct slog *r;
	const char *prefix;
};

static int cond_found(void *p)
{
	struct find_arg *a = p;
	return slog_find(a->r, a->prefix, NULL, 0) >= 0;
}

/* Waits for a line that starts with prefix; returns its level (and the
 * line in line[0..cap)). */
static int slog_wait(struct slog *r, const char *prefix, char *line, size_t cap)
{
	struct find_arg a = {r, prefix};
	ck_assert_msg(tu_wait_until(cond_found, &a, TU_TIMEOUT),
	              "no log line starting '%s'", prefix);
	return slog_find(r, prefix, line, cap);
}

/* A started server with the binary, line and JSON codecs. */
static tcpchat_server *mixed(struct tu_ports *ports, struct slog *r,
                             int log_level)
{
	tcpchat_server *srv = tu_server_new_mixed(ports);
	ck_assert_ptr_nonnull(srv);
	if (r)
		tcpchat_server_set_handler(srv, shandler, r);
	ru_server_option(srv, TCPCHAT_SOPT_LOG_LEVEL, log_level);
	return srv;
}

/* The local port of a test peer's socket. */
static int local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* ---- 1. blank texts ------------------------------------------------------ */

static const char blank[] = "   \t ";

START_TEST(blank_rule)
{
	ck_assert_int_eq(util__chat_text_ok("hi", 2), 1);
	ck_assert_int_eq(util__chat_text_ok(" x\t", 3), 1);
	ck_assert_int_eq(util__chat_text_ok(blank, strlen(blank)), 0);
	ck_assert_int_eq(util__chat_text_ok("", 0), 0);
	ck_assert_int_eq(util__chat_text_ok(NULL, 0), 0);
	ck_assert_int_eq(util__chat_text_ok(" \x01", 2), 0);
	/* only spaces and tabs are blanks */
	ck_assert_int_eq(util__chat_text_ok("\xc2\xa0", 2), 1);
	ck_assert_int_eq(util__blank(blank, strlen(blank)), 1);
	ck_assert_int_eq(util__blank("", 0), 1);
	ck_assert_int_eq(util__blank(" .", 2), 0);
	/* the check of reasons and topics is unchanged */
	ck_assert_int_eq(util__text_ok(blank, strlen(blank)), 1);
}
END_TEST

START_TEST(blank_text_refused)
{
	struct tu_ports ports;
	tcpchat_server *srv = mixed(&ports, NULL, TCPCHAT_LOG_INFO);
	ru_server_go(srv);
	struct tu_peer b, j, l;
	struct tu_msg m;
	ru_login_bin(&b, ports.bin, "bina");
	ru_login_json(&j, ports.json, "jay");
	ru_login_line(&l, ports.line, "lina");
	ck_assert_int_eq(ru_wait_stats(srv, 3, UINT64_MAX), 1);

	/* binary and JSON: to the current room, to a room, to a user */
	struct tu_peer *senders[] = {&b, &j};
	for (size_t i = 0; i < 2; i++) {
		struct tu_peer *p = senders[i];
		ck_assert_int_eq(tu_peer_send_text(p, blank), 0);
		ru_want_error(p, TCPCHAT_WIRE_BADMSG, &m);
		ck_assert_str_eq(m.body,
		                 "message must be UTF-8 text, not empty "
		                 "or blank, without control characters");
		/* the very same answer as to an empty text */
		ck_assert_int_eq(tu_peer_send_text(p, ""), 0);
		struct tu_msg e;
		ru_want_error(p, TCPCHAT_WIRE_BADMSG, &e);
		ck_assert_str_eq(e.body, m.body);
		ru_send_room(p, "#lobby", blank);
		ru_want_error(p, TCPCHAT_WIRE_BADMSG, &m);
		ck_assert_str_eq(m.room, "#lobby");
		ck_assert_int_eq(tu_peer_send(p, TCPCHAT_MSG_TEXT, 0, NULL,
		                              "lina", "\t"),
		                 0);
		ru_want_error(p, TCPCHAT_WIRE_BADMSG, &m);
		ck_assert_str_eq(m.target, "lina");
	}
	/* line: a blank line is skipped (no answer); a blank room or
	 * private text is refused like the others */
	ck_assert_int_eq(tu_peer_send_line(&l, blank), 0);
	ck_assert_int_eq(tu_peer_send_line(&l, "#lobby   "), 0);
	ru_next_line(&l, "-!- error 20: message must be UTF-8 text, not empty "
	                 "or blank, without control characters");
	ck_assert_int_eq(tu_peer_send_line(&l, "/msg bina \t "), 0);
	ru_next_line_prefix(&l, "-!- error 20: ");
	ck_assert_int_eq(tu_peer_send_line(&l, "/who"), 0);
	ru_next_line(&l, "=== 3 online: bina jay lina"); /* nothing else */

	/* Nobody received any of it. */
	ru_mark(srv, "mark");
	ck_assert_int_eq(ru_upto(&b, "mark"), 0);
	ck_assert_int_eq(ru_upto(&j, "mark"), 0);
	ck_assert_int_eq(ru_lines_upto(&l, "mark", ""), 0);
	/* The server's own texts follow the rule too. */
	ck_assert_int_eq(tcpchat_server_broadcast(srv, blank, strlen(blank)),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_send_to(srv, "bina", " ", 1),
	                 TCPCHAT_EINVAL);
	ck_assert_int_eq(tcpchat_server_broadcast_room(srv, "#lobby", "\t", 1),
	                 TCPCHAT_EINVAL);
	/* and text with something in it still goes */
	ck_assert_int_eq(tu_peer_send_line(&l, " hi "), 0);
	ru_want(&b, TCPCHAT_MSG_TEXT, "lina", NULL, &m);
	ck_assert_str_eq(m.body, " hi ");
	RU_FINISH(srv, &b, &j, &l);
}
END_TEST

/* ---- 2. the greeting ----------------------------------------------------- */

static int cond_connected(void *p)
{
	return atomic_load((atomic_int *)p) > 0;
}

static int chandler(tcpchat_client *cli, const tcpchat_client_event *ev,
                    void *ud)
{
	(void)cli;
	if (ev->type == TCPCHAT_CEV_CONNECTED)
		atomic_fetch_add((atomic_int *)ud, 1);
	return 0;
}

START_TEST(line_greeting)
{
	struct tu_ports ports;
	tcpchat_server *srv = mixed(&ports, NULL, TCPCHAT_LOG_INFO);
	ru_server_go(srv);
	struct tu_peer b, j, l;
	char line[512];
	ck_assert_int_eq(tu_peer_connect(&b, ports.bin, NULL, 0), 0);
	ck_assert_int_eq(
	        tu_peer_connect(&j, ports.json, tcpchat_codec_json(), 0), 0);
	ck_assert_int_eq(
	        tu_peer_connect(&l, ports.line, tcpchat_codec_line(), 0), 0);
	/* at once, before a word is typed */
	ck_assert_int_eq(tu_peer_line(&l, line, sizeof line, TU_TIMEOUT), 1);
	ck_assert_str_eq(line, TU_LINE_GREETING);
	ck_assert_uint_eq(tu_stats(srv).accepted, 3);
	/* the binary and JSON peers were accepted before the line one, and
	 * got nothing before their WELCOME */
	ck_assert_int_eq(tu_peer_hello_v(&b, "bina", 2, TU_CAPS2, NULL), 0);
	ck_assert_int_eq(tu_peer_hello_v(&j, "jay", 2, TU_CAPS2, NULL), 0);
	ck_assert_int_eq(tu_peer_send_line(&l, "lina"), 0);
	ru_next_line(&l, "=== welcome lina");

	/* libtcpchat's own client on the line codec skips the greeting */
	atomic_int connected = 0;
	tcpchat_client *cli;
	char addr[64];
	ck_assert_int_eq(tcpchat_client_new(&cli), 0);
	tcpchat_client_set_handler(cli, chandler, &connected);
	ck_assert_int_eq(tcpchat_client_set_codec(cli, tcpchat_codec_line()),
	                 0);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", ports.line);
	ck_assert_int_eq(tcpchat_client_connect(cli, addr, "clio"), 0);
	ck_assert_int_eq(tcpchat_client_start(cli), 0);
	ck_assert_int_eq(tu_wait_until(cond_connected, &connected, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(tcpchat_client_send(cli, "hi from clio", 12), 0);
	ru_next_line(&l, "--> clio joined");
	ru_next_line(&l, "clio: hi from clio");
	tcpchat_client_stop(cli);
	tcpchat_client_join(cli);
	tcpchat_client_destroy(cli);
	RU_FINISH(srv, &b, &j, &l);
}
END_TEST

/* Encodes m from the server with flags into out (NUL-terminated). */
static int encode_line(const tcpchat_msg *m, unsigned flags, char *out,
                       size_t cap)
{
	const tcpchat_codec *c = tcpchat_codec_line();
	tcpchat_buf b = {0};
	int rc = c->encode(c->codec_data, m, flags, &b);
	snprintf(out, cap, "%.*s", (int)b.len, b.len ? b.data : "");
	tcpchat_buf_free(&b);
	return rc;
}

/* Decodes one line from the server with flags: its type (0: skipped),
 * or the negative error. */
static long decode_type(const char *line, unsigned flags, tcpchat_msg *m)
{
	const tcpchat_codec *c = tcpchat_codec_line();
	char scratch[512];
	tcpchat_decode_ctx ctx = {0};
	ctx.flags = TCPCHAT_FROM_SERVER | flags;
	ctx.max_frame = 4096;
	ctx.scratch = scratch;
	ctx.scratch_len = sizeof scratch;
	memset(m, 0, sizeof *m);
	long k = c->decode(c->codec_data, line, strlen(line), m, &ctx);
	ck_assert_msg(k < 0 || k == (long)strlen(line), "'%s': %ld", line, k);
	return k < 0 ? k : (long)m->type;
}

START_TEST(line_greeting_codec)
{
	const unsigned hs = TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE;
	tcpchat_msg g = {.type = TCPCHAT_MSG_TEXT}, m;
	char out[256];
	g.body.ptr = "tcpchat: hi\x01 there";
	g.body.len = strlen(g.body.ptr);
	ck_assert_int_eq(encode_line(&g, hs, out, sizeof out), 0);
	ck_assert_str_eq(out, "=== tcpchat: hi? there\n");
	/* every client skips it, in the handshake or not */
	ck_assert_int_eq(decode_type(out, TCPCHAT_HANDSHAKE, &m), 0);
	ck_assert_int_eq(decode_type(out, 0, &m), 0);
	/* without the handshake flag it is a plain notice */
	ck_assert_int_eq(encode_line(&g, TCPCHAT_FROM_SERVER, out, sizeof out),
	                 0);
	ck_assert_str_eq(out, "*** tcpchat: hi? there\n");
	ck_assert_int_eq(decode_type(out, 0, &m), TCPCHAT_MSG_TEXT);
	/* a greeting must start with a word that ends in ':' */
	static const char *const bad[] = {"welcome bob", "3 online", "hi",
	                                  ":",           " x: y",    ""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		g.body.ptr = bad[i];
		g.body.len = strlen(bad[i]);
		ck_assert_int_eq(encode_line(&g, hs, out, sizeof out),
		                 TCPCHAT_EINVAL);
		ck_assert_str_eq(out, "");
	}
	g.body.ptr = "welcome: bob";
	g.body.len = strlen(g.body.ptr);
	ck_assert_int_eq(encode_line(&g, hs, out, sizeof out), 0);
	ck_assert_int_eq(decode_type(out, TCPCHAT_HANDSHAKE, &m), 0);
	ck_assert_int_eq(decode_type(out, 0, &m), 0);
	/* only a notice is a greeting: the rest is written as ever */
	g.sender.ptr = "alice";
	g.sender.len = 5;
	ck_assert_int_eq(encode_line(&g, hs, out, sizeof out), 0);
	ck_assert_str_eq(out, "alice: welcome: bob\n");
	/* a client in the handshake reads the welcome and errors */
	ck_assert_int_eq(
	        decode_type("=== welcome bob\n", TCPCHAT_HANDSHAKE, &m),
	        TCPCHAT_MSG_WELCOME);
	ck_assert_int_eq(decode_type("-!- error 8: name already in use\n",
	                             TCPCHAT_HANDSHAKE, &m),
	                 TCPCHAT_MSG_ERROR);
	/* after it, the other "=== " lines are as strict as ever */
	ck_assert_int_eq(decode_type("=== hello bob\n", 0, &m), TCPCHAT_EPROTO);
	ck_assert_int_eq(decode_type("=== 2 online: a b\n", 0, &m),
	                 TCPCHAT_MSG_WHO);
}
END_TEST

/* ---- 3. /help and unknown commands --------------------------------------- */

/* The answer to /help, each line after "*** ". */
static const char *const help[] = {
        "commands (any other line is said in your current room):",
        "  #room TEXT              say TEXT in #room (you must be in it)",
        "  /join #room             join #room (made if new) and talk there",
        "  /part [#room] [reason]  leave #room, or your current room",
        "  /msg NAME TEXT          a private message to NAME",
        "  /who [#room]            who is online, or in #room",
        "  /rooms                  the rooms, with their sizes and topics",
        "  /topic #room [TEXT]     set the topic of #room (no TEXT: clear it)",
        ("  /history [#room] [N]    the last N texts of #room, or your "
         "current room"),
        "  /kick #room NAME [why]  take NAME out of #room (operators)",
        "  /ban #room NAME [why]   kick NAME and keep them out of #room",
        "  /unban #room NAME       let NAME join #room again",
        "  //TEXT                  say a line that starts with '/'",
        "  /quit                   leave the chat",
        "  /help                   this list",
};

START_TEST(line_help_and_unknown_commands)
{
	static const struct {
		const char *in, *out;
	} answers[] = {
	        {"/foo", "-!- error 24: unknown command /foo: //text sends a "
	                 "line starting with '/', /help lists the commands"},
	        {"/nick bob", "-!- error 24: unknown command /nick: //text "
	                      "sends a line starting with '/', /help lists "
	                      "the commands"},
	        {"/abcdefghijklmnopqrstuvwxyz0123456789 x",
	         "-!- error 24: unknown command "
	         "/abcdefghijklmnopqrstuvwxyz01234"
	         "...: //text sends a line starting with '/', /help lists the "
	         "commands"},
	        {"/join", "-!- error 24: usage: /join #room"},
	        {"/join x", "-!- error 24: usage: /join #room"},
	        {"/msg bina", "-!- error 24: usage: /msg NAME TEXT"},
	        {"/who x", "-!- error 24: usage: /who [#room]"},
	        {"/rooms x", "-!- error 24: usage: /rooms"},
	        {"/topic", "-!- error 24: usage: /topic #room [TEXT]"},
	        {"/part #a,b", "-!- error 24: usage: /part [#room] [reason]"},
	        {"/history 0", "-!- error 24: usage: /history [ROOM] [N]"},
	};
	struct tu_ports ports;
	tcpchat_server *srv = mixed(&ports, NULL, TCPCHAT_LOG_INFO);
	ru_server_go(srv);
	struct tu_peer b, l;
	ru_login_bin(&b, ports.bin, "bina");
	ru_login_line(&l, ports.line, "lina");
	for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
		ck_assert_int_eq(tu_peer_send_line(&l, answers[i].in), 0);
		ru_next_line(&l, answers[i].out);
	}
	char want[128];
	ck_assert_int_eq(tu_peer_send_line(&l, "/help"), 0);
	for (size_t i = 0; i < sizeof help / sizeof help[0]; i++) {
		snprintf(want, sizeof want, "*** %s", help[i]);
		ru_next_line(&l, want);
	}
	ck_assert_int_eq(tu_peer_send_line(&l, "/help me"), 0);
	ru_next_line(&l, "*** commands (any other line is said in your current "
	                 "room):");
	/* the connection stays, and nobody else heard any of it */
	ru_mark(srv, "mark");
	ck_assert_int_eq(ru_lines_upto(&l, "mark", "-!- "), 0);
	struct tu_msg m;
	ru_want(&b, TCPCHAT_MSG_JOIN, "lina", NULL, &m);
	ck_assert_int_eq(ru_upto(&b, "mark"), 0);
	/* the binary and JSON codecs have no commands: an unknown type is
	 * answered as before */
	ck_assert_int_eq(tu_peer_send(&b, 200, 0, NULL, NULL, "/help"), 0);
	ru_want_error(&b, TCPCHAT_WIRE_NOTYPE, &m);
	ck_assert_str_eq(m.body, "unknown message type");
	RU_FINISH(srv, &b, &l);
}
END_TEST

/* ---- 4. a reader who never types ----------------------------------------- */

/* The server's socket of the connection whose peer is at local port
 * peer_port of a test socket, to server port port: found among this
 * process's descriptors (the server runs in this process). */
static int server_fd_of(int port, int peer_port)
{
	for (int fd = 0; fd < 4096; fd++) {
		struct sockaddr_in a, p;
		socklen_t al = sizeof a, pl = sizeof p;
		if (getsockname(fd, (struct sockaddr *)&a, &al) != 0 ||
		    getpeername(fd, (struct sockaddr *)&p, &pl) != 0 ||
		    a.sin_family != AF_INET)
			continue;
		if (ntohs(a.sin_port) == port && ntohs(p.sin_port) == peer_port)
			return fd;
	}
	return -1;
}

static int sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;
	ck_assert_int_eq(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

START_TEST(line_reader_stays)
{
	const int idle = tu_ms(300);
	struct tu_ports ports;
	tcpchat_server *srv = mixed(&ports, NULL, TCPCHAT_LOG_INFO);
	ru_server_option(srv, TCPCHAT_SOPT_IDLE_TIMEOUT, idle);
	ru_server_go(srv);
	struct tu_peer b, l;
	ru_login_line(&l, ports.line, "lina");
	ru_login_bin(&b, ports.bin, "bina");

	/* TCP keepalive watches the line peer; the binary one has PINGs */
	int lfd = server_fd_of(ports.line, local_port(l.fd));
	int bfd = server_fd_of(ports.bin, local_port(b.fd));
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_ge(bfd, 0);
	ck_assert_int_eq(sockopt(lfd, SOL_SOCKET, SO_KEEPALIVE), 1);
	ck_assert_int_eq(sockopt(bfd, SOL_SOCKET, SO_KEEPALIVE), 0);
#if defined(TCP_KEEPIDLE) && defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
	int secs = idle / 1000;
	ck_assert_int_eq(sockopt(lfd, IPPROTO_TCP, TCP_KEEPIDLE),
	                 secs / 2 > 1 ? secs / 2 : 1);
	ck_assert_int_eq(sockopt(lfd, IPPROTO_TCP, TCP_KEEPINTVL),
	                 secs / 10 > 1 ? secs / 10 : 1);
	ck_assert_int_eq(sockopt(lfd, IPPROTO_TCP, TCP_KEEPCNT), 5);
#endif
#ifdef TCP_USER_TIMEOUT
	ck_assert_int_eq(sockopt(lfd, IPPROTO_TCP, TCP_USER_TIMEOUT), idle);
#endif

	/* bina never answers its PING: closed after the idle timeout */
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_expect(&b, TCPCHAT_MSG_PING, &m, TU_TIMEOUT),
	                 1);
	ck_assert_int_eq(
	        tu_peer_expect(&b, TCPCHAT_MSG_ERROR, &m, idle + TU_TIMEOUT),
	        1);
	ck_assert_int_eq(-(int)m.code, TCPCHAT_ETIMEDOUT);
	ck_assert_int_eq(tu_peer_wait_closed(&b, TU_TIMEOUT), 1);
	/* lina, silent as long, is still here and still hears the others */
	ru_next_line(&l, "--> bina joined");
	ru_next_line(&l, "<-- bina left (timeout: idle timeout)");
	ck_assert_int_eq(ru_wait_stats(srv, 1, UINT64_MAX), 1);
	/* and stays for another two idle timeouts of silence */
	char line[256];
	ck_assert_int_eq(tu_peer_line(&l, line, sizeof line, 2 * idle), 0);
	ck_assert_uint_eq(tu_stats(srv).users, 1);
	ru_mark(srv, "still there?");
	ru_next_line(&l, "*** still there?");
	ck_assert_int_eq(tu_peer_send_line(&l, "/who"), 0);
	ru_next_line(&l, "=== 1 online: lina");
	RU_FINISH(srv, &b, &l);
}
END_TEST

/* ---- 5. too long: the limit in words ------------------------------------- */

START_TEST(too_long_says_the_limit)
{
	struct tu_ports ports;
	struct slog *r = slog_new();
	tcpchat_server *srv = mixed(&ports, r, TCPCHAT_LOG_INFO);
	ru_server_option(srv, TCPCHAT_SOPT_MAX_FRAME, 256);
	ru_server_go(srv);
	struct tu_peer obs, lobs, l, big;
	struct tu_msg m;
	char longer[301];
	memset(longer, 'x', 300);
	longer[300] = '\0';
	ru_login_bin(&obs, ports.bin, "obs");
	ru_login_line(&lobs, ports.line, "lobs");
	ru_login_line(&l, ports.line, "lina");
	ru_login_bin(&big, ports.bin, "bigb");

	ck_assert_int_eq(tu_peer_send_line(&l, longer), 0);
	ck_assert_int_eq(
	        tu_peer_expect_line(
	                &l,
	                "-!- error 5: line too long, the limit is 256 bytes",
	                TU_TIMEOUT),
	        1);
	ck_assert_int_eq(tu_peer_wait_closed(&l, TU_TIMEOUT), 1);
	ru_want(&obs, TCPCHAT_MSG_LEAVE, "lina", NULL, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_ERROR);
	ck_assert_str_eq(m.body, "line too long, the limit is 256 bytes");
	ck_assert_int_eq(
	        tu_peer_expect_line(&lobs,
	                            "<-- lina left (error: line too long, the "
	                            "limit is 256 bytes)",
	                            TU_TIMEOUT),
	        1);

	ck_assert_int_eq(tu_peer_send_text(&big, longer), 0);
	ck_assert_int_eq(
	        tu_peer_expect(&big, TCPCHAT_MSG_ERROR, &m, TU_TIMEOUT), 1);
	ck_assert_uint_eq(m.code, TCPCHAT_WIRE_MSGSIZE);
	ck_assert_str_eq(m.body, "frame too large, the limit is 256 bytes");
	ck_assert_uint_eq(m.flags & TCPCHAT_MSGF_CLOSING, TCPCHAT_MSGF_CLOSING);
	ck_assert_int_eq(tu_peer_wait_closed(&big, TU_TIMEOUT), 1);
	ru_want(&obs, TCPCHAT_MSG_LEAVE, "bigb", NULL, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_ERROR);
	ck_assert_str_eq(m.body, "frame too large, the limit is 256 bytes");
	ck_assert_int_eq(tu_peer_expect_line(
	                         &lobs,
	                         "<-- bigb left (error: frame too large, the "
	                         "limit is 256 bytes)",
	                         TU_TIMEOUT),
	                 1);
	/* a client's mistake: INFO, not WARN */
	char line[300];
	ck_assert_int_eq(slog_wait(r, "conn 3 (lina): protocol error: ", line,
	                           sizeof line),
	                 TCPCHAT_LOG_INFO);
	ck_assert_str_eq(line, "conn 3 (lina): protocol error: line too long, "
	                       "the limit is 256 bytes");
	ck_assert_int_eq(slog_count_level(r, TCPCHAT_LOG_WARN), 0);
	ck_assert_uint_eq(tu_stats(srv).proto_errors, 2);
	RU_FINISH(srv, &obs, &lobs, &l, &big);
	slog_free(r);
}
END_TEST

/* ---- 6. what an operator sees at DEBUG ----------------------------------- */

START_TEST(debug_log_of_a_session)
{
	struct tu_ports ports;
	struct slog *r = slog_new();
	tcpchat_server *srv = mixed(&ports, r, TCPCHAT_LOG_DEBUG);
	ru_server_go(srv);
	struct tu_peer l, dup;
	char want[300], line[300];
	ru_login_line(&l, ports.line, "lina");
	snprintf(want, sizeof want,
	         "conn 1: accepted from 127.0.0.1:%d on line@127.0.0.1:%d",
	         local_port(l.fd), ports.line);
	ck_assert_int_eq(slog_wait(r, want, line, sizeof line),
	                 TCPCHAT_LOG_DEBUG);
	ck_assert_str_eq(line, want);
	ck_assert_int_eq(slog_wait(r, "conn 1: lina joined", line, sizeof line),
	                 TCPCHAT_LOG_DEBUG);
	ck_assert_str_eq(line, "conn 1: lina joined (protocol 2, line)");
	ck_assert_int_eq(slog_wait(r, "conn 1 (lina): joined #lobby", NULL, 0),
	                 TCPCHAT_LOG_DEBUG);

	/* a name taken is no warning */
	ck_assert_int_eq(
	        tu_peer_connect(&dup, ports.line, tcpchat_codec_line(), 0), 0);
	ck_assert_int_eq(tu_peer_send_line(&dup, "lina"), 0);
	ck_assert_int_eq(tu_peer_wait_closed(&dup, TU_TIMEOUT), 1);
	ck_assert_int_eq(
	        slog_wait(r, "conn 2: name 'lina' refused", line, sizeof line),
	        TCPCHAT_LOG_INFO);
	ck_assert_str_eq(line, "conn 2: name 'lina' refused: name already in "
	                       "use");
	ck_assert_int_eq(slog_wait(r,
	                           "conn 2: closed (error: name already in "
	                           "use) after ",
	                           NULL, 0),
	                 TCPCHAT_LOG_DEBUG);

	/* rooms; each answer is awaited so that the counts below are known */
	ck_assert_int_eq(tu_peer_send_line(&l, "/join #dev"), 0);
	ru_next_line(&l, "--> lina joined #dev");
	ck_assert_int_eq(
	        slog_wait(r, "conn 1 (lina): joined #dev", line, sizeof line),
	        TCPCHAT_LOG_DEBUG);
	ck_assert_str_eq(line, "conn 1 (lina): joined #dev");
	ck_assert_int_eq(tu_peer_send_line(&l, "/part #dev"), 0);
	ru_next_line(&l, "<-- lina left #dev (part)");
	ck_assert_int_eq(
	        slog_wait(r, "conn 1 (lina): parted #dev", line, sizeof line),
	        TCPCHAT_LOG_DEBUG);
	ck_assert_str_eq(line, "conn 1 (lina): parted #dev");
	ck_assert_int_eq(tu_peer_send_line(&l, "/quit"), 0);
	ck_assert_int_eq(tu_peer_wait_closed(&l, TU_TIMEOUT), 1);

	/* in: "lina\n/join #dev\n/part #dev\n/quit\n"; out: the greeting,
	 * the welcome, the join and the part */
	size_t out = strlen(TU_LINE_GREETING "\n=== welcome lina\n"
	                                     "--> lina joined #dev\n"
	                                     "<-- lina left #dev (part)\n");
	ck_assert_int_eq(slog_wait(r, "conn 1 (lina): closed (quit) after ",
	                           line, sizeof line),
	                 TCPCHAT_LOG_DEBUG);
	snprintf(want, sizeof want,
	         " s; in 4 msgs / 33 B, out 4 frames / %zu B, dropped 0", out);
	ck_assert_msg(
	        strlen(line) > strlen(want) &&
	                strcmp(line + strlen(line) - strlen(want), want) == 0,
	        "'%s' does not end in '%s'", line, want);
	double secs = -1;
	ck_assert_int_eq(
	        sscanf(line, "conn 1 (lina): closed (quit) after %lf", &secs),
	        1);
	ck_assert(secs >= 0 && secs < 1000);
	tu_server_stop(srv);
	tu_peer_close(&l);
	tu_peer_close(&dup);
	slog_free(r);

	/* At INFO, none of the per-connection lines; the refusal stays. */
	r = slog_new();
	srv = mixed(&ports, r, TCPCHAT_LOG_INFO);
	ru_server_go(srv);
	ru_login_line(&l, ports.line, "lina");
	ck_assert_int_eq(
	        tu_peer_connect(&dup, ports.line, tcpchat_codec_line(), 0), 0);
	ck_assert_int_eq(tu_peer_send_line(&dup, "lina"), 0);
	ck_assert_int_eq(tu_peer_wait_closed(&dup, TU_TIMEOUT), 1);
	ck_assert_int_eq(slog_wait(r, "conn 2: name 'lina' refused", NULL, 0),
	                 TCPCHAT_LOG_INFO);
	ck_assert_int_eq(tu_peer_send_line(&l, "/quit"), 0);
	ck_assert_int_eq(tu_peer_wait_closed(&l, TU_TIMEOUT), 1);
	tu_server_stop(srv);
	ck_assert_int_eq(slog_count_level(r, TCPCHAT_LOG_DEBUG), 0);
	ck_assert_int_eq(slog_find(r, "conn 1", NULL, 0), -1);
	tu_peer_close(&l);
	tu_peer_close(&dup);
	slog_free(r);
}
END_TEST

static int cond_drops(void *p)
{
	return atomic_load(&((struct slog *)p)->drops) > 0;
}

START_TEST(debug_log_of_drops)
{
	struct tu_ports ports;
	struct slog *r = slog_new();
	tcpchat_server *srv = mixed(&ports, r, TCPCHAT_LOG_DEBUG);
	ru_server_go(srv);
	struct tu_peer fast, slow;
	/* slow reads nothing after its login, with a small buffer */
	memset(&slow, 0, sizeof slow);
	slow.codec = tcpchat_codec_binary();
	slow.scratch_len = 1 << 20;
	slow.scratch = malloc(slow.scratch_len);
	slow.fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(slow.fd, 0);
	int small = 4096;
	setsockopt(slow.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)ports.bin);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(slow.fd, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(tu_peer_hello_v(&slow, "slow", 2, TU_CAPS2, NULL), 0);
	ru_login_bin(&fast, ports.bin, "fast");

	/* far more than the socket buffers and the queue hold */
	static char body[60000];
	memset(body, 'y', sizeof body - 1);
	for (int i = 0; i < 400 && !cond_drops(r); i++)
		ck_assert_int_eq(tu_peer_send_text(&fast, body), 0);
	ck_assert_int_eq(tu_wait_until(cond_drops, r, TU_TIMEOUT), 1);
	char line[300];
	ck_assert_int_eq(
	        slog_wait(r, "conn 1 (slow): dropped ", line, sizeof line),
	        TCPCHAT_LOG_DEBUG);
	unsigned n = 0;
	unsigned long long all = 0;
	char rest[64] = "";
	ck_assert_msg(sscanf(line,
	                     "conn 1 (slow): dropped %u frames (queue full, "
	                     "drop-newest), %llu in all%63s",
	                     &n, &all, rest) == 2,
	              "'%s'", line);
	ck_assert_uint_ge(n, 1);
	ck_assert_uint_ge(all, n);
	RU_FINISH(srv, &fast, &slow);
	slog_free(r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("people");
	TCase *tc = tcase_create("people");
	tcase_set_timeout(tc, 60 * tu_slow());
	tcase_add_test(tc, blank_rule);
	tcase_add_test(tc, blank_text_refused);
	tcase_add_test(tc, line_greeting);
	tcase_add_test(tc, line_greeting_codec);
	tcase_add_test(tc, line_help_and_unknown_commands);
	tcase_add_test(tc, line_reader_stays);
	tcase_add_test(tc, too_long_says_the_limit);
	tcase_add_test(tc, debug_log_of_a_session);
	tcase_add_test(tc, debug_log_of_drops);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run_suite(suite());
}
