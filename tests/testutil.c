/* Helpers for the integration tests. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

int tu_slow(void)
{
	const char *env = getenv("TCPCHAT_TEST_SLOW");
	if (env && *env) {
		long v = strtol(env, NULL, 10);
		return v < 1 ? 1 : v > 100 ? 100 : (int)v;
	}
#ifdef RUNNING_ON_VALGRIND
	if (RUNNING_ON_VALGRIND)
		return 10;
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
	return 5;
#elif defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
	return 2;
#else
	return 1;
#endif
}

int tu_ms(int ms)
{
	int64_t v = (int64_t)ms * tu_slow();
	return v > INT32_MAX ? INT32_MAX : (int)v;
}

int64_t tu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tu_peer_connect(struct tu_peer *p, int port, const tcpchat_codec *codec,
                    int ipv6)
{
	memset(p, 0, sizeof *p);
	p->codec = codec ? codec : tcpchat_codec_binary();
	p->scratch_len = 1 << 20;
	p->scratch = malloc(p->scratch_len);
	p->fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (p->fd < 0 || !p->scratch)
		return TCPCHAT_ESYS;
	int one = 1;
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int rc;
	if (ipv6) {
		struct sockaddr_in6 a = {0};
		a.sin6_family = AF_INET6;
		a.sin6_port = htons((uint16_t)port);
		a.sin6_addr = in6addr_loopback;
		rc = connect(p->fd, (struct sockaddr *)&a, sizeof a);
	} else {
		struct sockaddr_in a = {0};
		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = connect(p->fd, (struct sockaddr *)&a, sizeof a);
	}
	return rc == 0 ? 0 : TCPCHAT_ESYS;
}

int tu_peer_send_raw(struct tu_peer *p, const void *data, size_t len)
{
	const char *c = data;
	while (len) {
		ssize_t n = send(p->fd, c, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return TCPCHAT_ESYS;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

int tu_peer_send_msg(struct tu_peer *p, const tcpchat_msg *m)
{
	tcpchat_buf b = {0};
	int rc = p->codec->encode(p->codec->codec_data, m, 0, &b);
	if (rc == 0)
		rc = tu_peer_send_raw(p, b.data, b.len);
	tcpchat_buf_free(&b);
	return rc;
}

int tu_peer_send_text(struct tu_peer *p, const char *text)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT};
	m.body.ptr = text;
	m.body.len = strlen(text);
	return tu_peer_send_msg(p, &m);
}

static void copy_str(char *dst, size_t cap, tcpchat_str s, size_t *len)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	if (n)
		memcpy(dst, s.ptr, n);
	dst[n] = '\0';
	if (len)
		*len = n;
}

/* Takes the next whole message buffered in p->in, copying its raw bytes
 * into raw (when not NULL).  As tu_peer_take(). */
static int take_frame(struct tu_peer *p, struct tu_msg *out, void *raw,
                      size_t cap, size_t *raw_len)
{
	while (p->in.len) {
		tcpchat_msg m;
		memset(&m, 0, sizeof m);
		tcpchat_decode_ctx ctx = {0};
		ctx.flags = TCPCHAT_FROM_SERVER;
		ctx.max_frame = 1 << 20;
		ctx.scratch = p->scratch;
		ctx.scratch_len = p->scratch_len;
		long k = p->codec->decode(p->codec->codec_data, p->in.data,
		                          p->in.len, &m, &ctx);
		if (k < 0)
			return -1;
		if (k == 0)
			return 0;
		memset(out, 0, sizeof *out);
		out->type = m.type;
		out->code = m.code;
		out->id = m.id;
		out->timestamp = m.timestamp;
		out->flags = m.flags;
		out->caps = m.caps;
		out->seq = m.seq;
		out->epoch = m.epoch;
		out->first = m.first;
		out->last = m.last;
		out->oldest = m.oldest;
		copy_str(out->ref, sizeof out->ref, m.ref, NULL);
		copy_str(out->sender, sizeof out->sender, m.sender, NULL);
		copy_str(out->body, sizeof out->body, m.body, &out->body_len);
		copy_str(out->room, sizeof out->room, m.room, &out->room_len);
		copy_str(out->target, sizeof out->target, m.target,
		         &out->target_len);
		if (raw && out->type) {
			size_t n = (size_t)k < cap ? (size_t)k : cap;
			memcpy(raw, p->in.data, n);
			*raw_len = n;
		}
		memmove(p->in.data, p->in.data + k, p->in.len - (size_t)k);
		p->in.len -= (size_t)k;
		if (out->type)
			return 1;
	}
	return 0;
}

int tu_peer_take(struct tu_peer *p, struct tu_msg *out)
{
	return take_frame(p, out, NULL, 0, NULL);
}

/* Waits up to the deadline for more bytes.  1: some were read (or the
 * connection closed: p->closed), 0: timeout, -1: poll failed. */
static int read_more(struct tu_peer *p, int64_t deadline)
{
	int64_t left = deadline - tu_now_ms();
	if (left < 0)
		return 0;
	struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
	int n = poll(&pfd, 1, (int)left);
	if (n < 0 && errno != EINTR)
		return -1;
	if (n <= 0)
		return tu_now_ms() > deadline ? 0 : 1;
	if (tcpchat_buf_reserve(&p->in, 65536))
		return -1;
	ssize_t r = recv(p->fd, p->in.data + p->in.len, 65536, 0);
	if (r <= 0)
		p->closed = 1;
	else
		p->in.len += (size_t)r;
	return 1;
}

int tu_peer_recv_raw(struct tu_peer *p, struct tu_msg *m, void *raw, size_t cap,
                     size_t *raw_len, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	for (;;) {
		int rc = take_frame(p, m, raw, cap, raw_len);
		if (rc)
			return rc;
		if (p->closed)
			return -1;
		rc = read_more(p, deadline);
		if (rc <= 0)
			return rc;
	}
}

int tu_peer_send_line(struct tu_peer *p, const char *line)
{
	int rc = tu_peer_send_raw(p, line, strlen(line));
	return rc ? rc : tu_peer_send_raw(p, "\n", 1);
}

int tu_peer_line(struct tu_peer *p, char *out, size_t cap, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	for (;;) {
		char *nl =
		        p->in.len ? memchr(p->in.data, '\n', p->in.len) : NULL;
		if (nl) {
			size_t k = (size_t)(nl - p->in.data);
			size_t n = k;
			if (n && p->in.data[n - 1] == '\r')
				n--;
			if (n > cap - 1)
				n = cap - 1;
			memcpy(out, p->in.data, n);
			out[n] = '\0';
			memmove(p->in.data, p->in.data + k + 1,
			        p->in.len - k - 1);
			p->in.len -= k + 1;
			return 1;
		}
		if (p->closed)
			return -1;
		int rc = read_more(p, deadline);
		if (rc <= 0)
			return rc;
	}
}

int tu_peer_expect_line(struct tu_peer *p, const char *want, int timeout_ms)
{
	char line[8192];
	int64_t deadline = tu_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - tu_now_ms();
		int rc = tu_peer_line(p, line, sizeof line,
		                      left > 0 ? (int)left : 0);
		if (rc != 1 || strcmp(line, want) == 0)
			return rc;
	}
}

int tu_peer_recv(struct tu_peer *p, struct tu_msg *m, int timeout_ms)
{
	return tu_peer_recv_raw(p, m, NULL, 0, NULL, timeout_ms);
}

int tu_peer_expect(struct tu_peer *p, uint32_t type, struct tu_msg *m,
                   int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - tu_now_ms();
		int rc = tu_peer_recv(p, m, left > 0 ? (int)left : 0);
		if (rc != 1 || m->type == type)
			return rc;
	}
}

int tu_peer_wait_closed(struct tu_peer *p, int timeout_ms)
{
	struct tu_msg m;
	int64_t deadline = tu_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - tu_now_ms();
		int rc = tu_peer_recv(p, &m, left > 0 ? (int)left : 0);
		if (rc < 0)
			return 1;
		if (rc == 0)
			return 0;
	}
}

int tu_peer_join(struct tu_peer *p, int port, const tcpchat_codec *codec,
                 const char *name)
{
	int rc = tu_peer_connect(p, port, codec, 0);
	return rc ? rc : tu_peer_hello(p, name);
}

int tu_peer_hello(struct tu_peer *p, const char *name)
{
	return tu_peer_hello_v(p, name, TCPCHAT_PROTOCOL_VERSION, 0, NULL);
}

int tu_peer_hello_v(struct tu_peer *p, const char *name, uint32_t version,
                    uint64_t caps, struct tu_msg *welcome)
{
	int rc;
	tcpchat_msg h = {.type = TCPCHAT_MSG_HELLO};
	h.code = version;
	h.caps = caps;
	h.sender.ptr = name;
	h.sender.len = strlen(name);
	rc = tu_peer_send_msg(p, &h);
	if (rc)
		return rc;
	struct tu_msg m;
	rc = tu_peer_recv(p, &m, TU_TIMEOUT);
	if (rc == 0)
		return TCPCHAT_ETIMEDOUT;
	if (rc < 0)
		return TCPCHAT_ECLOSED;
	if (welcome)
		*welcome = m;
	if (m.type == TCPCHAT_MSG_WELCOME)
		return strcmp(m.sender, name) == 0 ? 0 : TCPCHAT_EPROTO;
	if (m.type == TCPCHAT_MSG_ERROR)
		return -(int)m.code;
	return TCPCHAT_EPROTO;
}

int tu_peer_login(struct tu_peer *p, int port, const tcpchat_codec *codec,
                  const char *name, uint32_t version, uint64_t caps,
                  struct tu_msg *welcome)
{
	int rc = tu_peer_connect(p, port, codec, 0);
	return rc ? rc : tu_peer_hello_v(p, name, version, caps, welcome);
}

static void set_view(tcpchat_str *s, const char *v)
{
	s->ptr = v;
	s->len = v ? strlen(v) : 0;
}

int tu_peer_send(struct tu_peer *p, uint32_t type, uint32_t code,
                 const char *room, const char *target, const char *body)
{
	tcpchat_msg m = {.type = type};
	m.code = code;
	set_view(&m.room, room);
	set_view(&m.target, target);
	set_view(&m.body, body);
	return tu_peer_send_msg(p, &m);
}

void tu_peer_close(struct tu_peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	tcpchat_buf_free(&p->in);
	free(p->scratch);
	p->scratch = NULL;
}

int tu_server_timers(tcpchat_server *srv)
{
	int rc = tcpchat_server_set_option(srv, TCPCHAT_SOPT_SHUTDOWN_TIMEOUT,
	                                   TU_TIMEOUT);
	if (rc == 0)
		rc = tcpchat_server_set_option(
		        srv, TCPCHAT_SOPT_HANDSHAKE_TIMEOUT, tu_ms(10000));
	if (rc == 0)
		rc = tcpchat_server_set_option(srv, TCPCHAT_SOPT_IDLE_TIMEOUT,
		                               tu_ms(120000));
	if (rc == 0)
		rc = tcpchat_server_set_option(srv, TCPCHAT_SOPT_RATE_MSGS, 0);
	if (rc == 0)
		rc = tcpchat_server_set_option(srv, TCPCHAT_SOPT_RATE_BYTES, 0);
	return rc;
}

tcpchat_server *tu_server_start(const tcpchat_codec *codec, int *port)
{
	tcpchat_server *srv;
	if (tcpchat_server_new(&srv))
		return NULL;
	if (tu_server_timers(srv) ||
	    tcpchat_server_listen(srv, "127.0.0.1:0", codec) ||
	    tcpchat_server_start(srv)) {
		tcpchat_server_destroy(srv);
		return NULL;
	}
	*port = tcpchat_server_port(srv, 0);
	return srv;
}

tcpchat_server *tu_server_new_codecs(const tcpchat_codec *const *codecs, int n,
                                     int *ports)
{
	tcpchat_server *srv;
	if (tcpchat_server_new(&srv))
		return NULL;
	if (tu_server_timers(srv))
		goto fail;
	for (int i = 0; i < n; i++) {
		if (tcpchat_server_listen(srv, "127.0.0.1:0", codecs[i]))
			goto fail;
		ports[i] = tcpchat_server_port(srv, i);
		if (ports[i] <= 0)
			goto fail;
	}
	return srv;
fail:
	tcpchat_server_destroy(srv);
	return NULL;
}

tcpchat_server *tu_server_new_mixed(struct tu_ports *ports)
{
	const tcpchat_codec *codecs[3] = {tcpchat_codec_binary(),
	                                  tcpchat_codec_line(),
	                                  tcpchat_codec_json()};
	int p[3];
	tcpchat_server *srv = tu_server_new_codecs(codecs, 3, p);
	if (srv) {
		ports->bin = p[0];
		ports->line = p[1];
		ports->json = p[2];
	}
	return srv;
}

tcpchat_server *tu_server_start_mixed(struct tu_ports *ports)
{
	tcpchat_server *srv = tu_server_new_mixed(ports);
	if (srv && tcpchat_server_start(srv)) {
		tcpchat_server_destroy(srv);
		return NULL;
	}
	return srv;
}

void tu_server_stop(tcpchat_server *srv)
{
	if (!srv)
		return;
	tcpchat_server_stop(srv);
	tcpchat_server_join(srv);
	tcpchat_server_destroy(srv);
}

int tu_wait_until(int (*cond)(void *), void *arg, int timeout_ms)
{
	int64_t deadline = tu_now_ms() + timeout_ms;
	while (!cond(arg)) {
		if (tu_now_ms() > deadline)
			return 0;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return 1;
}

tcpchat_server_stats tu_stats(tcpchat_server *srv)
{
	tcpchat_server_stats s;
	memset(&s, 0, sizeof s);
	s.size = sizeof s;
	tcpchat_server_stats_get(srv, &s);
	return s;
}

int tu_run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
