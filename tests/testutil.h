/* Helpers for the integration tests: raw test peers speaking any codec,
 * deadlines, and a server running in its own thread. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include <tcpchat/tcpchat.h>

/* How many times slower than a plain build the tests run here: the
 * TCPCHAT_TEST_SLOW environment variable when it is set (the valgrind test
 * setup sets it to 10), else 10 under valgrind (when <valgrind/valgrind.h>
 * was there to tell), 5 under ThreadSanitizer, 2 under AddressSanitizer
 * and 1 otherwise. */
int tu_slow(void);

/* ms times tu_slow().  Every deadline of a test is scaled so, and so is
 * every timer of the server under test that a test peer has to beat. */
int tu_ms(int ms);

/* Every wait in the tests is bounded by this (milliseconds).  A wait ends
 * as soon as its condition holds: the bound only costs time on failure. */
#define TU_TIMEOUT tu_ms(5000)

int64_t tu_now_ms(void);

/* A message received by a test peer, with owned copies of its strings
 * (cut to fit, NUL-terminated; the _len fields hold the copied length). */
struct tu_msg {
	uint32_t type, code;
	uint64_t id;
	int64_t timestamp;
	char sender[64];
	char body[8192];
	size_t body_len;
	/* ---- protocol 2 ---- */
	char room[128];
	size_t room_len;
	char target[128];
	size_t target_len;
	uint32_t flags;
	uint64_t caps;
	uint64_t seq, epoch;
	uint64_t first, last, oldest; /* HISTORY end */
	char ref[80];
};

/* A raw client socket that encodes and decodes with a codec. */
struct tu_peer {
	int fd;
	const tcpchat_codec *codec;
	tcpchat_buf in;
	char *scratch;
	size_t scratch_len;
	int closed;
};

/* Connects to 127.0.0.1:port (or ::1 when ipv6) without a handshake. */
int tu_peer_connect(struct tu_peer *p, int port, const tcpchat_codec *codec,
                    int ipv6);
/* Connects, sends HELLO with name and waits for WELCOME.  Returns 0, or
 * the negative code of the ERROR the server answered with, or
 * TCPCHAT_ECLOSED / TCPCHAT_ETIMEDOUT. */
int tu_peer_join(struct tu_peer *p, int port, const tcpchat_codec *codec,
                 const char *name);
/* On a connected peer: sends HELLO with name and waits for a WELCOME
 * that names it.  Returns as tu_peer_join(). */
int tu_peer_hello(struct tu_peer *p, const char *name);

/* The capabilities of a protocol-2 peer. */
#define TU_CAPS2 (TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS)

/* Connects and logs in as name speaking protocol version (1 or 2) with
 * the capabilities caps (in HELLO.code and HELLO.caps; the line codec
 * carries neither), and waits for the WELCOME, stored in *welcome when
 * welcome is not NULL.  Returns as tu_peer_join(). */
int tu_peer_login(struct tu_peer *p, int port, const tcpchat_codec *codec,
                  const char *name, uint32_t version, uint64_t caps,
                  struct tu_msg *welcome);
/* On a connected peer: the handshake of tu_peer_login(). */
int tu_peer_hello_v(struct tu_peer *p, const char *name, uint32_t version,
                    uint64_t caps, struct tu_msg *welcome);
/* Sends a message of type with code and the strings room, target and
 * body (NULL: empty). */
int tu_peer_send(struct tu_peer *p, uint32_t type, uint32_t code,
                 const char *room, const char *target, const char *body);
int tu_peer_send_msg(struct tu_peer *p, const tcpchat_msg *m);
int tu_peer_send_text(struct tu_peer *p, const char *text);
int tu_peer_send_raw(struct tu_peer *p, const void *data, size_t len);
/* Takes the next whole message already read into p->in, without reading
 * the socket.  1: *m filled, 0: none buffered, -1: undecodable bytes. */
int tu_peer_take(struct tu_peer *p, struct tu_msg *m);
/* Waits up to timeout_ms for the next message.  Returns 1 with *m filled,
 * 0 on timeout, -1 when the connection closed (p->closed set) or failed. */
int tu_peer_recv(struct tu_peer *p, struct tu_msg *m, int timeout_ms);
/* Receives until a message of the given type arrives (others skipped).
 * Returns 1, 0 on timeout or -1 on close. */
int tu_peer_expect(struct tu_peer *p, uint32_t type, struct tu_msg *m,
                   int timeout_ms);
/* As tu_peer_recv(), and copies the raw bytes of the frame (as far as
 * cap allows) into raw[0..*raw_len). */
int tu_peer_recv_raw(struct tu_peer *p, struct tu_msg *m, void *raw, size_t cap,
                     size_t *raw_len, int timeout_ms);

/* The line a line-codec listener greets every new connection with. */
#define TU_LINE_GREETING "=== tcpchat: type your name (1-32 bytes, no spaces)"

/* Raw lines, for peers of the line codec (or JSON Lines) read as text:
 * tu_peer_send_line() sends line and a newline; tu_peer_line() waits up
 * to timeout_ms for the next line, stored without its newline (and a
 * carriage return before it) in out, cut to cap - 1 bytes: 1, 0 on
 * timeout, -1 when the connection closed.  Blank lines are returned
 * too. */
int tu_peer_send_line(struct tu_peer *p, const char *line);
int tu_peer_line(struct tu_peer *p, char *out, size_t cap, int timeout_ms);
/* Reads lines until one equal to want arrives.  1, 0 or -1 as above. */
int tu_peer_expect_line(struct tu_peer *p, const char *want, int timeout_ms);
/* Waits until the server closes the connection.  1 if it did. */
int tu_peer_wait_closed(struct tu_peer *p, int timeout_ms);
void tu_peer_close(struct tu_peer *p);

/* Sets the timers of a test server: the default handshake (10 s) and idle
 * (120 s) timeouts scaled by tu_ms(), so that a slow run does not see
 * PINGs or timeouts a plain one never does, and a shutdown timeout of
 * TU_TIMEOUT, so that a slow stop still flushes every queue; and no
 * rate limits, so that a test may send as fast as it can.  Tests of a
 * timer or of the rate limits set their own values after this.  0 or an
 * error code. */
int tu_server_timers(tcpchat_server *srv);

/* A server on 127.0.0.1 port 0 with the given codec and the timers of
 * tu_server_timers(), in its own thread. */
tcpchat_server *tu_server_start(const tcpchat_codec *codec, int *port);
void tu_server_stop(tcpchat_server *srv);

/* A server, not started, with the timers of tu_server_timers() and one
 * listener on 127.0.0.1 port 0 per codec (NULL: binary), in that order:
 * ports[i] is the port of codecs[i].  NULL on failure. */
tcpchat_server *tu_server_new_codecs(const tcpchat_codec *const *codecs, int n,
                                     int *ports);

/* The ports of a server that speaks every built-in codec. */
struct tu_ports {
	int bin, line, json;
};

/* A server, not started (set options and handler, then
 * tcpchat_server_start()), listening with the binary, line and JSON
 * codecs, in that order.  NULL on failure. */
tcpchat_server *tu_server_new_mixed(struct tu_ports *ports);
/* The same, started in its own thread. */
tcpchat_server *tu_server_start_mixed(struct tu_ports *ports);

/* Polls cond(arg) every millisecond until it is true or timeout_ms
 * passes.  Returns 1 if it became true. */
int tu_wait_until(int (*cond)(void *), void *arg, int timeout_ms);

/* Server stats snapshot. */
tcpchat_server_stats tu_stats(tcpchat_server *srv);

/* The main() of a suite: runs s (and frees it), printing the usual Check
 * summary.  EXIT_SUCCESS when every test passed, else EXIT_FAILURE. */
int tu_run_suite(Suite *s);

#endif
