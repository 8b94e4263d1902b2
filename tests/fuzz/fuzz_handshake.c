/* libFuzzer harness for the server's handshake with credentials.  See
 * README in this folder.
 *
 * One tcpchat_server, made at the first input and kept, runs in
 * host-driven mode (tcpchat_server_step) with a binary, a line and a
 * JSON listener on 127.0.0.1 port 0.  Its handler decides each JOIN from
 * the credential: "secret" is accepted, one that starts with "later" is
 * deferred, anything else refused.  The harness answers the deferred
 * JOINs itself between steps, with tcpchat_server_accept() or
 * tcpchat_server_refuse(), either while the client waits or after it has
 * hung up, and sometimes also answers connections that are long gone.
 *
 * The first input byte picks the codec (byte % 3) and the mode (byte / 3,
 * bits): 1 the bytes are written in chunks (the next byte seeds their
 * sizes), 2 a deferred JOIN is accepted (else refused), 4 it is answered
 * after the client hung up, 8 answers also go to connections that are
 * gone and twice to this one.  The rest is written to a fresh
 * connection.  The harness decodes the same bytes with the same codec
 * to know what the server must make of the first message, steps the
 * server until it has answered or closed (bounded), decodes what came
 * back, and checks:
 *   - what the server sends decodes with the connection's codec;
 *   - a HELLO with a bad version or name, or a credential that is too
 *     long, not UTF-8 or holds control characters, gets an ERROR (for
 *     the credential REFUSED "invalid credential ...") and is closed,
 *     and the handler never sees it; a frame that does not decode, or
 *     a first message that is no HELLO, gets an ERROR and is closed;
 *   - otherwise the JOIN event carries exactly the name and credential
 *     sent; an accepted JOIN gets a WELCOME, a refused one an ERROR
 *     REFUSED and is closed;
 *   - no LOG event ever holds the credential (see watch_log());
 *   - every connection closed by the client is gone from the server soon
 *     after, and every 16th input a well-formed login still succeeds.
 * AddressSanitizer finds crashes and leaks; the server is destroyed at
 * exit, so that everything it holds must be freed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tcpchat/tcpchat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			        __LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

#define MAX_FRAME 65536     /* the server's default TCPCHAT_SOPT_MAX_FRAME */
#define RX_MAX (256 * 1024) /* what the harness keeps of the answer */
#define ANSWER_MS 3000      /* the longest wait for an answer */
#define GONE_MS 3000        /* the longest wait for a close to be seen */
#define GOOD_EVERY 16       /* inputs between two well-formed logins */
#define STALE_IDS 8         /* connection ids kept for late answers */

/* What the server must make of the input's first message. */
enum outcome {
	O_NONE,        /* no whole message: nothing to check */
	O_BAD_FRAME,   /* the codec refuses the bytes */
	O_NOT_HELLO,   /* a first message that is no HELLO */
	O_BAD_VERSION, /* HELLO with code 0 */
	O_BAD_NAME,    /* tcpchat_name_check() fails */
	O_BAD_CRED,    /* too long, not UTF-8, control characters */
	O_JOIN         /* the handler decides */
};

struct expect {
	enum outcome outcome;
	char name[MAX_FRAME];
	size_t name_len;
	char cred[MAX_FRAME];
	size_t cred_len;
};

/* What the handler saw of one input's connection. */
struct seen {
	const struct expect *want; /* NULL: the handler checks nothing */
	int joins;
	int verdict;
	uint64_t join_id;
	uint64_t deferred; /* 0: no JOIN waits for an answer */
	/* the credential no LOG event may hold, and the name it may */
	const char *secret;
	size_t secret_len;
	const char *name;
	size_t name_len;
};

/* The harness's state, shared with the handler. */
static struct {
	tcpchat_server *srv;
	const tcpchat_codec *codecs[3];
	int ports[3];
	unsigned long inputs;
	struct seen cur; /* this input */
	/* connections that are gone, for late answers */
	uint64_t stale[STALE_IDS];
	unsigned nstale;
} h;

static struct expect want_buf;

/* ---- what the server must do ------------------------------------------ */

/* The rules of tcpchat_server_event.credential: at most
 * TCPCHAT_CREDENTIAL_MAX bytes of UTF-8 without control characters (C0
 * but TAB, DEL, C1), or empty. */
static int cred_ok(const char *p, size_t n)
{
	if (n == 0)
		return 1;
	if (n > TCPCHAT_CREDENTIAL_MAX || !tcpchat_utf8_valid(p, n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7F)
			return 0;
		if (c == 0xC2 && (unsigned char)p[i + 1] < 0xA0)
			return 0; /* U+0080..U+009F */
	}
	return 1;
}

/* Decodes the first message of data[0..n) as the server does (from a
 * client, during the handshake) and says what must follow. */
static void predict(const tcpchat_codec *c, const uint8_t *data, size_t n,
                    struct expect *w)
{
	static char scratch[MAX_FRAME];
	size_t off = 0;

	w->outcome = O_NONE;
	w->name_len = w->cred_len = 0;
	for (;;) {
		tcpchat_msg m;
		tcpchat_decode_ctx ctx;
		memset(&m, 0, sizeof m);
		memset(&ctx, 0, sizeof ctx);
		ctx.flags = TCPCHAT_HANDSHAKE;
		ctx.max_frame = MAX_FRAME;
		ctx.scratch = scratch;
		ctx.scratch_len = sizeof scratch;
		long rc = c->decode(c->codec_data, (const char *)data + off,
		                    n - off, &m, &ctx);
		if (rc < 0) {
			w->outcome = O_BAD_FRAME;
			return;
		}
		if (rc == 0)
			return; /* O_NONE */
		off += (size_t)rc;
		if (m.type == 0)
			continue; /* skipped, e.g. a blank line */
		if (m.type != TCPCHAT_MSG_HELLO) {
			w->outcome = O_NOT_HELLO;
			return;
		}
		if (m.sender.len)
			memcpy(w->name, m.sender.ptr, m.sender.len);
		w->name_len = m.sender.len;
		if (m.body.len)
			memcpy(w->cred, m.body.ptr, m.body.len);
		w->cred_len = m.body.len;
		if (m.code < 1)
			w->outcome = O_BAD_VERSION;
		else if (tcpchat_name_check(m.sender.ptr, m.sender.len) != 0)
			w->outcome = O_BAD_NAME;
		else if (!cred_ok(m.body.ptr, m.body.len))
			w->outcome = O_BAD_CRED;
		else
			w->outcome = O_JOIN;
		return;
	}
}

/* ---- the handler ------------------------------------------------------ */

static int starts_with(tcpchat_str s, const char *p)
{
	size_t n = strlen(p);
	return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

/* Blanks every copy of p[0..n) in text[0..len) (with 0x01 bytes, which no
 * credential the check looks for can match). */
static void blank_out(char *text, size_t len, const char *p, size_t n)
{
	if (n == 0)
		return;
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(text + i, p, n) == 0)
			memset(text + i, 1, n);
}

/* A LOG event must not hold the credential.  A log line legitimately
 * holds the name (the first TCPCHAT_NAME_MAX bytes of it, control bytes
 * shown as '?', for a refused name) and English words, numbers and
 * addresses, which a short printable credential may happen to spell; so
 * those copies of the name are blanked first, and a credential is looked
 * for when it has at least 4 bytes and a byte no log text of the server's
 * own holds (a control byte, DEL or a byte of a UTF-8 sequence) or the
 * word "SECRET". */
static void watch_log(const char *text)
{
	static char buf[8192];
	size_t len = strlen(text);

	if (!h.cur.secret || len >= sizeof buf)
		return;
	memcpy(buf, text, len);
	blank_out(buf, len, h.cur.name, h.cur.name_len);
	char shown[TCPCHAT_NAME_MAX];
	size_t n =
	        h.cur.name_len < sizeof shown ? h.cur.name_len : sizeof shown;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h.cur.name[i];
		shown[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
	}
	blank_out(buf, len, shown, n);
	for (size_t i = 0; i + h.cur.secret_len <= len; i++) {
		if (memcmp(buf + i, h.cur.secret, h.cur.secret_len) == 0) {
			fprintf(stderr, "credential in a LOG event: %s\n",
			        text);
			abort();
		}
	}
}

/* Whether a credential is one watch_log() looks for. */
static int watched(const char *p, size_t n)
{
	if (n < 4)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c >= 0x7F)
			return 1;
	}
	for (size_t i = 0; i + 6 <= n; i++)
		if (memcmp(p + i, "SECRET", 6) == 0)
			return 1;
	return 0;
}

static int on_event(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	(void)srv;
	(void)ud;
	if (ev->type == TCPCHAT_SEV_LOG) {
		CHECK(ev->text != NULL);
		watch_log(ev->text);
		return 0;
	}
	if (ev->type != TCPCHAT_SEV_JOIN)
		return 0;
	/* the promises of tcpchat_server_event.credential */
	CHECK(cred_ok(ev->credential.ptr, ev->credential.len));
	CHECK(tcpchat_name_check(ev->name.ptr, ev->name.len) == 0);
	if (!h.cur.want) /* the well-formed login */
		return TCPCHAT_ACCEPT;
	CHECK(h.cur.joins == 0);
	CHECK(h.cur.want->outcome == O_JOIN);
	CHECK(ev->name.len == h.cur.want->name_len &&
	      memcmp(ev->name.ptr, h.cur.want->name, ev->name.len) == 0);
	CHECK(ev->credential.len == h.cur.want->cred_len &&
	      (ev->credential.len == 0 ||
	       memcmp(ev->credential.ptr, h.cur.want->cred,
	              ev->credential.len) == 0));
	h.cur.joins++;
	h.cur.join_id = ev->conn_id;
	tcpchat_str s = ev->credential;
	if (s.len == 6 && memcmp(s.ptr, "secret", 6) == 0)
		h.cur.verdict = TCPCHAT_ACCEPT;
	else if (starts_with(s, "later"))
		h.cur.verdict = TCPCHAT_DEFER;
	else
		h.cur.verdict = TCPCHAT_REFUSE;
	if (h.cur.verdict == TCPCHAT_DEFER)
		h.cur.deferred = ev->conn_id;
	else if (h.cur.verdict == TCPCHAT_REFUSE)
		ev->refuse_reason = "wrong password";
	return h.cur.verdict;
}

/* ---- the server ------------------------------------------------------- */

static void destroy(void)
{
	tcpchat_server_destroy(h.srv);
	h.srv = NULL;
}

static void setup(void)
{
	static const long long opts[][2] = {
	        {TCPCHAT_SOPT_LOG_LEVEL, TCPCHAT_LOG_DEBUG},
	        /* one address connects thousands of times a second */
	        {TCPCHAT_SOPT_ADDR_CONNS, 0},
	        {TCPCHAT_SOPT_ADDR_RATE, 0},
	        {TCPCHAT_SOPT_ADDR_HANDSHAKES, 0},
	        {TCPCHAT_SOPT_RATE_MSGS, 0},
	        {TCPCHAT_SOPT_RATE_BYTES, 0},
	};
	if (h.srv)
		return;
	h.codecs[0] = tcpchat_codec_binary();
	h.codecs[1] = tcpchat_codec_line();
	h.codecs[2] = tcpchat_codec_json();
	CHECK(tcpchat_server_new(&h.srv) == 0);
	tcpchat_server_set_handler(h.srv, on_event, NULL);
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		CHECK(tcpchat_server_set_option(h.srv, (int)opts[i][0],
		                                opts[i][1]) == 0);
	for (int i = 0; i < 3; i++) {
		CHECK(tcpchat_server_listen(h.srv, "127.0.0.1:0",
		                            h.codecs[i]) == 0);
		h.ports[i] = tcpchat_server_port(h.srv, i);
		CHECK(h.ports[i] > 0);
	}
	CHECK(tcpchat_server_step(h.srv) == 0); /* starts the listeners */
	atexit(destroy);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A client connection and what it received. */
struct peer {
	int fd;
	int closed; /* the server closed it (or reset it) */
	const tcpchat_codec *codec;
	char *rx;
	size_t rx_len;
	/* what it decoded so far */
	size_t decoded;
	int welcome, error, bad;
	uint32_t error_code;
	char error_body[128];
};

static void peer_connect(struct peer *p, int ci)
{
	struct sockaddr_in sa;
	memset(p, 0, sizeof *p);
	p->codec = h.codecs[ci];
	p->rx = malloc(RX_MAX);
	CHECK(p->rx);
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(p->fd >= 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)h.ports[ci]);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = connect(p->fd, (struct sockaddr *)&sa, sizeof sa);
	CHECK(rc == 0 || errno == EINPROGRESS);
}

static void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	free(p->rx);
	p->rx = NULL;
}

/* Decodes what arrived: WELCOME, ERROR, and whether anything does not
 * decode. */
static void peer_decode(struct peer *p)
{
	static char scratch[RX_MAX];
	while (!p->bad && p->decoded < p->rx_len) {
		tcpchat_msg m;
		tcpchat_decode_ctx ctx;
		memset(&m, 0, sizeof m);
		memset(&ctx, 0, sizeof ctx);
		ctx.flags = TCPCHAT_FROM_SERVER |
		            (p->welcome ? 0 : TCPCHAT_HANDSHAKE);
		ctx.max_frame = RX_MAX;
		ctx.scratch = scratch;
		ctx.scratch_len = sizeof scratch;
		long rc = p->codec->decode(p->codec->codec_data,
		                           p->rx + p->decoded,
		                           p->rx_len - p->decoded, &m, &ctx);
		if (rc < 0) {
			fprintf(stderr, "undecodable answer (%s): %.*s\n",
			        ctx.error ? ctx.error : "?",
			        (int)(p->rx_len - p->decoded),
			        p->rx + p->decoded);
			p->bad = 1;
			return;
		}
		if (rc == 0)
			return;
		p->decoded += (size_t)rc;
		if (m.type == TCPCHAT_MSG_WELCOME)
			p->welcome = 1;
		if (m.type == TCPCHAT_MSG_ERROR && !p->error) {
			size_t n = m.body.len < sizeof p->error_body - 1
			                   ? m.body.len
			                   : sizeof p->error_body - 1;
			p->error = 1;
			p->error_code = m.code;
			if (n)
				memcpy(p->error_body, m.body.ptr, n);
			p->error_body[n] = '\0';
		}
	}
}

/* Waits up to ms for the server's fd (and the peer's), steps the server
 * and reads what the peer got. */
static void pump(struct peer *p, int ms)
{
	struct pollfd pf[2] = {
	        {.fd = tcpchat_server_fd(h.srv), .events = POLLIN},
	        {.fd = p && p->fd >= 0 && !p->closed ? p->fd : -1,
	         .events = POLLIN}};
	int t = tcpchat_server_timeout_ms(h.srv);
	if (t < 0 || t > ms)
		t = ms;
	poll(pf, 2, t);
	CHECK(tcpchat_server_step(h.srv) == 0);
	while (p && p->fd >= 0 && !p->closed) {
		if (p->rx_len == RX_MAX)
			p->rx_len = p->decoded = 0; /* keep reading; forget */
		ssize_t n = recv(p->fd, p->rx + p->rx_len, RX_MAX - p->rx_len,
		                 MSG_DONTWAIT);
		if (n > 0) {
			p->rx_len += (size_t)n;
			continue;
		}
		if (n == 0 ||
		    (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			p->closed = 1;
		break;
	}
	if (p)
		peer_decode(p);
}

static uint64_t clients(void)
{
	tcpchat_server_stats st = {.size = sizeof st};
	CHECK(tcpchat_server_stats_get(h.srv, &st) == 0);
	return st.clients;
}

/* Closes the client side and waits until the server has let go of every
 * connection. */
static void hang_up(struct peer *p)
{
	int64_t end = now_ms() + GONE_MS;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	while (clients() != 0) {
		if (now_ms() > end) {
			fprintf(stderr,
			        "%llu connections still open after "
			        "their clients hung up\n",
			        (unsigned long long)clients());
			abort();
		}
		pump(NULL, 1);
	}
}

/* Writes data[0..n) to the peer, in chunks when seed is not 0, stepping
 * the server between them.  Stops when the server closed the connection
 * or stopped reading (a deferred JOIN holds the input back). */
static void peer_write(struct peer *p, const uint8_t *data, size_t n,
                       unsigned seed)
{
	size_t off = 0;
	int stuck = 0;
	while (off < n && !p->closed && stuck < 50) {
		size_t len = n - off;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			len = 1 + (seed >> 16) % 64;
			if (len > n - off)
				len = n - off;
		}
		ssize_t w = send(p->fd, data + off, len,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			stuck = 0;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		                     errno == EINTR || errno == ENOTCONN)) {
			stuck++;
		} else {
			break; /* reset: the server closed it */
		}
		pump(p, seed || stuck ? 1 : 0);
	}
}

static void remember_gone(uint64_t id)
{
	h.stale[h.nstale++ % STALE_IDS] = id;
}

/* Answers the deferred JOINs of this input (and, with extra, the gone
 * connections and this one a second time). */
static void answer(int accept, int extra)
{
	uint64_t id = h.cur.deferred;
	if (id) {
		CHECK((accept ? tcpchat_server_accept(h.srv, id)
		              : tcpchat_server_refuse(h.srv, id,
		                                      "wrong password")) == 0);
		if (extra)
			CHECK(tcpchat_server_accept(h.srv, id) == 0);
	}
	if (extra)
		for (unsigned i = 0; i < h.nstale && i < STALE_IDS; i++)
			CHECK(tcpchat_server_refuse(h.srv, h.stale[i], NULL) ==
			      0);
	h.cur.deferred = 0;
}

/* A login every codec must still take: HELLO "fuzzok" with "secret". */
static void good_login(int ci)
{
	struct peer p;
	tcpchat_buf b = {0};
	tcpchat_msg m = {.type = TCPCHAT_MSG_HELLO};
	m.code = TCPCHAT_PROTOCOL_VERSION;
	m.caps = TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS;
	m.sender.ptr = "fuzzok";
	m.sender.len = 6;
	m.body.ptr = "secret";
	m.body.len = 6;
	CHECK(h.codecs[ci]->encode(h.codecs[ci]->codec_data, &m, 0, &b) == 0);
	peer_connect(&p, ci);
	memset(&h.cur, 0, sizeof h.cur);
	peer_write(&p, (const uint8_t *)b.data, b.len, 0);
	tcpchat_buf_free(&b);
	int64_t end = now_ms() + ANSWER_MS;
	while (!p.welcome && !p.closed && !p.bad && now_ms() < end)
		pump(&p, 1);
	if (!p.welcome) {
		fprintf(stderr, "a well-formed login on %s failed%s%s\n",
		        h.codecs[ci]->name, p.error ? ": " : "",
		        p.error ? p.error_body : "");
		abort();
	}
	hang_up(&p);
	peer_close(&p);
}

/* Steps until the server has answered the first message (or closed the
 * connection), or, when there is nothing to answer, until it has been
 * quiet for a few steps. */
static void await_answer(struct peer *p, const struct expect *w, int accept,
                         int late, int extra)
{
	int64_t end = now_ms() + ANSWER_MS;
	int quiet = 0;
	while (!p->closed && !p->bad && now_ms() < end) {
		size_t before = p->rx_len;
		pump(p, 1);
		int waits = h.cur.deferred != 0;
		if (waits && !late)
			answer(accept, extra);
		if (p->welcome || p->error)
			break;
		if (w->outcome == O_NONE || (waits && late)) {
			quiet = p->rx_len == before ? quiet + 1 : 0;
			if (quiet >= 3)
				break;
		}
	}
	/* what follows an ERROR: the close */
	while (p->error && !p->closed && now_ms() < end)
		pump(p, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct peer p;
	if (size < 1)
		return 0;
	setup();
	int ci = data[0] % 3;
	unsigned mode = data[0] / 3u;
	int accept = (mode & 2) != 0, late = (mode & 4) != 0,
	    extra = (mode & 8) != 0;
	unsigned seed = 0;
	data++;
	size--;
	if ((mode & 1) && size) {
		seed = 1u + data[0];
		data++;
		size--;
	}
	struct expect *w = &want_buf;
	predict(h.codecs[ci], data, size, w);

	memset(&h.cur, 0, sizeof h.cur);
	h.cur.want = w;
	h.cur.name = w->name;
	h.cur.name_len = w->name_len;
	if (w->outcome != O_NONE && watched(w->cred, w->cred_len)) {
		h.cur.secret = w->cred;
		h.cur.secret_len = w->cred_len;
	}
	peer_connect(&p, ci);
	peer_write(&p, data, size, seed);
	await_answer(&p, w, accept, late, extra);
	CHECK(!p.bad);

	int answered_in_time = h.cur.verdict == TCPCHAT_DEFER && !late;
	switch (w->outcome) {
	case O_NONE:
		break;
	case O_JOIN:
		CHECK(h.cur.joins == 1);
		if (h.cur.verdict == TCPCHAT_ACCEPT ||
		    (answered_in_time && accept)) {
			CHECK(p.welcome);
			CHECK(!p.error || p.error_code != TCPCHAT_WIRE_REFUSED);
		} else if (h.cur.verdict == TCPCHAT_REFUSE ||
		           answered_in_time) {
			CHECK(!p.welcome);
			CHECK(p.error && p.error_code == TCPCHAT_WIRE_REFUSED);
			CHECK(strstr(p.error_body, "wrong password"));
			CHECK(p.closed);
		}
		break;
	case O_BAD_CRED:
		CHECK(p.error && p.error_code == TCPCHAT_WIRE_REFUSED);
		CHECK(strstr(p.error_body, "invalid credential"));
		/* fall through */
	default:
		CHECK(h.cur.joins == 0);
		CHECK(!p.welcome);
		CHECK(p.error);
		CHECK(p.closed);
		break;
	}
	if (late && h.cur.deferred) {
		/* the client hangs up first; a paused connection may only
		 * notice when the answer is written */
		close(p.fd);
		p.fd = -1;
		for (int i = 0; i < 20 && clients() != 0; i++)
			pump(NULL, 1);
	}
	answer(accept, extra);
	hang_up(&p);
	for (int i = 0; i < 3; i++)
		pump(NULL, 0);
	if (h.cur.join_id)
		remember_gone(h.cur.join_id);
	peer_close(&p);
	memset(&h.cur, 0, sizeof h.cur);
	if (++h.inputs % GOOD_EVERY == 0)
		good_login((int)(h.inputs / GOOD_EVERY % 3));
	return 0;
}
