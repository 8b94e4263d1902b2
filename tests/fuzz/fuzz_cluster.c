/* libFuzzer harness for what a server in a cluster reads from its bus.
 * See README in this folder.
 *
 * One tcpchat_server, made at the first input and kept, runs in
 * host-driven mode (tcpchat_server_step) with a binary listener on
 * 127.0.0.1 port 0.  Before it first runs it joins a cluster through a
 * bus made here (struct hbus): no engine, the harness plays it.  The
 * bus records what the server asks (posts, fetches, claims, follows,
 * broadcasts, direct records) and answers the requests between steps,
 * as the fuzz input says, never from inside the call that made them.
 * A client, "probe", logs in over a plain socket and joins "#fz".
 *
 * Each input is a list of records: a selector byte, a 2-byte length
 * (big-endian) and that many bytes.  The selector (mod 12) says what the
 * bytes become: a note() (raw, or a valid record built from them), a
 * room() text of "#fz" or "#lobby" (raw or built), an answer to the
 * oldest pending post, fetch or claim, the bus going down or coming
 * back, a few steps of the server (waiting for its timers or not), one of the server's own records
 * handed back to it, or every pending request answered.
 *
 * Checks: every record the server gives the bus decodes with the binary
 * codec, as one whole frame, with this node's id as its origin; what
 * the probe receives decodes; every 16th input the probe still gets an
 * answer to WHO and its TEXT to "#fz" reaches the bus as a post(). */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <tcpchat/tcpchat.h>

#include "bus.h"
#include "server/server_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			        __LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

#define RX_MAX (1024 * 1024) /* the probe's receive buffer */
#define WAIT_MS 5000         /* the longest wait for the probe's answers */
#define CHECK_EVERY 16       /* inputs between two checks of the probe */
#define RECORDS_MAX 512      /* records of one input used at most */
#define HROOMS 32            /* rooms the bus keeps a counter for */
#define DRAIN_MAX 10000      /* answers given by one drain at most */
/* 1: what the probe gets must carry no field a server would not send
 * (probe_check_msg()); 0: such messages are only counted. */
#define STRICT_FIELDS 1

/* ---- the bus --------------------------------------------------------- */

enum { P_POST = 1, P_FETCH, P_CLAIM };

/* A request the bus has not answered yet. */
struct pend {
	struct pend *next;
	int kind;
	void *token;
	uint64_t after; /* P_FETCH: seq after which; P_POST: the floor */
	uint8_t rlen;
	char room[TCPCHAT_ROOM_MAX + 1];
	size_t len; /* P_POST: the record */
	uint8_t *rec;
};

/* A room the bus has seen: its counter, whether it is followed. */
struct hroom {
	uint8_t len;
	char name[TCPCHAT_ROOM_MAX + 1];
	int followed;
	uint64_t seq;
};

struct hbus {
	struct bus b; /* first: the server sees this */
	struct pend *head, *tail;
	struct hroom rooms[HROOMS];
	size_t nrooms;
};

/* The harness's state. */
static struct {
	tcpchat_server *srv;
	struct hbus *bus; /* NULL once destroyed */
	int port;
	unsigned long inputs;
	/* the probe */
	int fd;
	uint8_t *rx;
	size_t rx_len;
	int welcome;
	unsigned long whos, fz_joins;
	/* the probe's TEXT the bus must see posted, and whether it did */
	char want_body[64];
	int posted_seen;
	/* the last record the server gave the bus, to hand back */
	uint8_t last_out[BUS_REC_MAX];
	size_t last_len;
	/* counters, for the summary */
	unsigned long posts, fetches, claims, broadcasts, sends, follows;
	tcpchat_buf enc;   /* a record built from the input */
	unsigned long odd; /* see STRICT_FIELDS */
} h = {.fd = -1};

static char scratch[BUS_REC_MAX];

/* A record the server gives the bus: one whole binary frame, from this
 * node. */
static void check_rec(const void *rec, size_t len)
{
	const tcpchat_codec *c = tcpchat_codec_binary();
	tcpchat_decode_ctx ctx;
	tcpchat_msg m;
	memset(&ctx, 0, sizeof ctx);
	memset(&m, 0, sizeof m);
	ctx.flags = TCPCHAT_FROM_SERVER;
	ctx.max_frame = BUS_REC_MAX;
	ctx.scratch = scratch;
	ctx.scratch_len = sizeof scratch;
	CHECK(rec && len > 0 && len <= BUS_REC_MAX);
	long rc = c->decode(c->codec_data, rec, len, &m, &ctx);
	if (rc < 0 || (size_t)rc != len)
		fprintf(stderr, "the server gave the bus a bad record (%s)\n",
		        ctx.error ? ctx.error : "not one whole frame");
	CHECK(rc > 0 && (size_t)rc == len);
	CHECK(m.type != 0);
	CHECK(h.bus && m.cursor.len == h.bus->b.node_len &&
	      memcmp(m.cursor.ptr, h.bus->b.node, m.cursor.len) == 0);
	memcpy(h.last_out, rec, len);
	h.last_len = len;
}

static struct hroom *hroom(struct hbus *hb, const char *room, size_t rlen)
{
	CHECK(rlen <= TCPCHAT_ROOM_MAX);
	for (size_t i = 0; i < hb->nrooms; i++)
		if (hb->rooms[i].len == rlen &&
		    memcmp(hb->rooms[i].name, room, rlen) == 0)
			return &hb->rooms[i];
	if (hb->nrooms == HROOMS)
		return NULL;
	struct hroom *r = &hb->rooms[hb->nrooms++];
	memset(r, 0, sizeof *r);
	r->len = (uint8_t)rlen;
	memcpy(r->name, room, rlen);
	return r;
}

static struct pend *pend_add(struct hbus *hb, int kind, void *token,
                             const char *room, size_t rlen)
{
	struct pend *p = calloc(1, sizeof *p);
	CHECK(p);
	CHECK(token);
	CHECK(rlen <= TCPCHAT_ROOM_MAX);
	p->kind = kind;
	p->token = token;
	p->rlen = (uint8_t)rlen;
	if (rlen)
		memcpy(p->room, room, rlen);
	if (hb->tail)
		hb->tail->next = p;
	else
		hb->head = p;
	hb->tail = p;
	return p;
}

/* Takes the oldest pending request of that kind (0: any) off the list. */
static struct pend *pend_take(struct hbus *hb, int kind)
{
	struct pend **pp = &hb->head, *prev = NULL;
	while (*pp && kind && (*pp)->kind != kind) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	struct pend *p = *pp;
	if (!p)
		return NULL;
	*pp = p->next;
	if (hb->tail == p)
		hb->tail = prev;
	p->next = NULL;
	return p;
}

static void pend_free(struct pend *p)
{
	free(p->rec);
	free(p);
}

static int hb_post(struct bus *b, const char *room, size_t rlen, uint64_t floor,
                   const void *rec, size_t len, void *token)
{
	struct hbus *hb = (struct hbus *)b;
	CHECK(tcpchat_room_check(room, rlen) == 0);
	check_rec(rec, len);
	if (!b->up)
		return TCPCHAT_EBUS;
	h.posts++;
	/* the probe's TEXT of a check */
	tcpchat_decode_ctx ctx = {0};
	tcpchat_msg m = {0};
	const tcpchat_codec *c = tcpchat_codec_binary();
	ctx.flags = TCPCHAT_FROM_SERVER;
	ctx.max_frame = BUS_REC_MAX;
	ctx.scratch = scratch;
	ctx.scratch_len = sizeof scratch;
	if (c->decode(c->codec_data, rec, len, &m, &ctx) > 0 &&
	    m.type == TCPCHAT_MSG_TEXT && h.want_body[0] &&
	    m.body.len == strlen(h.want_body) &&
	    memcmp(m.body.ptr, h.want_body, m.body.len) == 0 &&
	    m.sender.len == 5 && memcmp(m.sender.ptr, "probe", 5) == 0)
		h.posted_seen = 1;
	struct pend *p = pend_add(hb, P_POST, token, room, rlen);
	p->after = floor;
	p->rec = malloc(len);
	CHECK(p->rec);
	memcpy(p->rec, rec, len);
	p->len = len;
	return 0;
}

static int hb_follow(struct bus *b, const char *room, size_t rlen)
{
	CHECK(tcpchat_room_check(room, rlen) == 0);
	if (!b->up)
		return TCPCHAT_EBUS;
	struct hroom *r = hroom((struct hbus *)b, room, rlen);
	if (r)
		r->followed = 1;
	h.follows++;
	return 0;
}

static void hb_unfollow(struct bus *b, const char *room, size_t rlen)
{
	CHECK(tcpchat_room_check(room, rlen) == 0);
	struct hroom *r = hroom((struct hbus *)b, room, rlen);
	if (r)
		r->followed = 0;
}

static int hb_fetch(struct bus *b, const char *room, size_t rlen,
                    uint64_t after, uint32_t max, void *token)
{
	CHECK(tcpchat_room_check(room, rlen) == 0);
	CHECK(max > 0);
	if (!b->up)
		return TCPCHAT_EBUS;
	h.fetches++;
	pend_add((struct hbus *)b, P_FETCH, token, room, rlen)->after = after;
	return 0;
}

static int hb_broadcast(struct bus *b, const void *rec, size_t len)
{
	check_rec(rec, len);
	if (!b->up)
		return TCPCHAT_EBUS;
	h.broadcasts++;
	return 0;
}

static int hb_send(struct bus *b, const char *node, size_t nlen,
                   const void *rec, size_t len)
{
	CHECK(node && nlen > 0 && nlen <= BUS_NODE_MAX);
	check_rec(rec, len);
	if (!b->up)
		return TCPCHAT_EBUS;
	h.sends++;
	return 0;
}

static int hb_claim(struct bus *b, const char *name, size_t nlen,
                    const char *stale, size_t slen, void *token)
{
	CHECK(tcpchat_name_check(name, nlen) == 0);
	CHECK(slen <= BUS_NODE_MAX && (stale || !slen));
	if (!b->up)
		return TCPCHAT_EBUS;
	h.claims++;
	pend_add((struct hbus *)b, P_CLAIM, token, NULL, 0);
	return 0;
}

static void hb_release(struct bus *b, const char *name, size_t nlen)
{
	(void)b;
	CHECK(tcpchat_name_check(name, nlen) == 0);
}

static void hb_reap(struct bus *b)
{
	(void)b;
}

static void hb_destroy(struct bus *b)
{
	struct hbus *hb = (struct hbus *)b;
	struct pend *p;
	while ((p = pend_take(hb, 0)) != NULL)
		pend_free(p);
	if (h.bus == hb)
		h.bus = NULL;
	free(hb);
}

static const struct bus_ops hb_ops = {
        .name = "harness",
        .post = hb_post,
        .follow = hb_follow,
        .unfollow = hb_unfollow,
        .fetch = hb_fetch,
        .broadcast = hb_broadcast,
        .send = hb_send,
        .claim = hb_claim,
        .release = hb_release,
        .reap = hb_reap,
        .destroy = hb_destroy,
};

/* The constructor srv__cluster_join() is given. */
static int hb_new(struct bus **out, struct loop *loop, const char *url,
                  const char *node, uint64_t epoch, int timeout_ms,
                  const struct bus_events *ev, char *err, size_t errlen)
{
	(void)url;
	(void)timeout_ms;
	(void)err;
	(void)errlen;
	struct hbus *hb = calloc(1, sizeof *hb);
	CHECK(hb);
	CHECK(strlen(node) <= BUS_NODE_MAX);
	hb->b.ops = &hb_ops;
	hb->b.loop = loop;
	hb->b.ev = *ev;
	hb->b.epoch = epoch ? epoch : 1;
	hb->b.node_len = strlen(node);
	memcpy(hb->b.node, node, hb->b.node_len + 1);
	hb->b.up = 1;
	h.bus = hb;
	*out = &hb->b;
	return 0;
}

/* ---- answers ---------------------------------------------------------- */

static void answer_post(struct pend *p, int err)
{
	struct hbus *hb = h.bus;
	struct hroom *r = hroom(hb, p->room, p->rlen);
	uint64_t seq = 0;
	if (!err) {
		seq = (r ? r->seq : 0) > p->after ? r->seq : p->after;
		seq++;
		if (r)
			r->seq = seq;
	}
	hb->b.ev.posted(hb->b.ev.data, p->token, err, seq);
	/* the engine hands it to every follower, this server included */
	if (!err && h.bus && h.bus->b.up && r && r->followed)
		hb->b.ev.room(hb->b.ev.data, p->room, p->rlen, seq, p->rec,
		              p->len);
	pend_free(p);
}

static void answer_fetch(struct pend *p, int err, const struct bus_rec *recs,
                         size_t n, uint64_t last)
{
	struct hbus *hb = h.bus;
	struct hroom *r = hroom(hb, p->room, p->rlen);
	if (r && last > r->seq)
		r->seq = last;
	hb->b.ev.fetched(hb->b.ev.data, p->token, err, recs, n, last);
	pend_free(p);
}

static void answer_claim(struct pend *p, int err, const char *holder,
                         size_t hlen)
{
	h.bus->b.ev.claimed(h.bus->b.ev.data, p->token, err, holder, hlen);
	pend_free(p);
}

/* Answers one request the usual way: posted, nothing more to read,
 * claimed. */
static void answer_ok(struct pend *p)
{
	struct hroom *r;
	switch (p->kind) {
	case P_POST:
		answer_post(p, 0);
		break;
	case P_FETCH:
		r = hroom(h.bus, p->room, p->rlen);
		answer_fetch(p, 0, NULL, 0,
		             r && r->seq > p->after ? r->seq : p->after);
		break;
	default:
		answer_claim(p, 0, NULL, 0);
		break;
	}
}

/* Answers every pending request, and those the answers bring. */
static void drain(void)
{
	struct pend *p;
	for (int i = 0; i < DRAIN_MAX && h.bus && (p = pend_take(h.bus, 0));
	     i++)
		answer_ok(p);
}

static void bus_down(void)
{
	struct hbus *hb = h.bus;
	struct pend *p;
	if (!hb->b.up)
		return;
	hb->b.up = 0;
	hb->b.st.losses++;
	hb->b.ev.down(hb->b.ev.data, "the harness says so");
	while (h.bus && (p = pend_take(h.bus, 0)) != NULL) {
		if (p->kind == P_POST)
			answer_post(p, TCPCHAT_EBUS);
		else if (p->kind == P_FETCH)
			answer_fetch(p, TCPCHAT_EBUS, NULL, 0, 0);
		else
			answer_claim(p, TCPCHAT_EBUS, NULL, 0);
	}
}

static void bus_up(void)
{
	struct hbus *hb = h.bus;
	if (hb->b.up)
		return;
	hb->b.up = 1;
	hb->b.ev.up(hb->b.ev.data);
}

/* ---- the server and the probe ------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the probe may get from records of other servers: it never asks
 * for history, sends no private message and no ref, so a live TEXT,
 * JOIN, LEAVE or TOPIC carries no flag but DEFAULT_ROOM, no ref, and a
 * TEXT has a room or a target, not both. */
static void probe_check_msg(const tcpchat_msg *m)
{
	if (m->type != TCPCHAT_MSG_TEXT && m->type != TCPCHAT_MSG_JOIN &&
	    m->type != TCPCHAT_MSG_LEAVE && m->type != TCPCHAT_MSG_TOPIC)
		return;
	if ((m->flags & ~(uint32_t)TCPCHAT_MSGF_DEFAULT_ROOM) || m->ref.len ||
	    (m->type == TCPCHAT_MSG_TEXT && m->room.len && m->target.len)) {
		h.odd++;
		if (!STRICT_FIELDS)
			return;
		fprintf(stderr,
		        "the probe got a type %u with flags 0x%x, ref %zu "
		        "bytes, room %zu bytes, target %zu bytes\n",
		        (unsigned)m->type, (unsigned)m->flags, m->ref.len,
		        m->room.len, m->target.len);
		abort();
	}
}

/* Decodes what the probe received: every frame must decode. */
static void probe_decode(void)
{
	static char dscratch[RX_MAX];
	size_t off = 0;
	while (off < h.rx_len) {
		tcpchat_msg m;
		tcpchat_decode_ctx ctx;
		const tcpchat_codec *c = tcpchat_codec_binary();
		memset(&m, 0, sizeof m);
		memset(&ctx, 0, sizeof ctx);
		ctx.flags = TCPCHAT_FROM_SERVER |
		            (h.welcome ? 0 : TCPCHAT_HANDSHAKE);
		ctx.max_frame = RX_MAX;
		ctx.scratch = dscratch;
		ctx.scratch_len = sizeof dscratch;
		long rc = c->decode(c->codec_data, (const char *)h.rx + off,
		                    h.rx_len - off, &m, &ctx);
		if (rc < 0)
			fprintf(stderr, "the probe got a bad frame (%s)\n",
			        ctx.error ? ctx.error : "?");
		CHECK(rc >= 0);
		if (rc == 0)
			break;
		off += (size_t)rc;
		probe_check_msg(&m);
		if (m.type == TCPCHAT_MSG_WELCOME)
			h.welcome = 1;
		else if (m.type == TCPCHAT_MSG_WHO)
			h.whos++;
		else if (m.type == TCPCHAT_MSG_JOIN && m.room.len == 3 &&
		         memcmp(m.room.ptr, "#fz", 3) == 0 &&
		         m.sender.len == 5 &&
		         memcmp(m.sender.ptr, "probe", 5) == 0)
			h.fz_joins++;
		else if (m.type == TCPCHAT_MSG_ERROR && !h.welcome) {
			fprintf(stderr, "the probe was refused: %.*s\n",
			        (int)m.body.len, m.body.ptr);
			abort();
		}
	}
	memmove(h.rx, h.rx + off, h.rx_len - off);
	h.rx_len -= off;
}

/* Waits up to ms for the server (or the probe's socket), steps the
 * server once and reads what the probe got. */
static void pump(int ms)
{
	struct pollfd pf[2] = {
	        {.fd = tcpchat_server_fd(h.srv), .events = POLLIN},
	        {.fd = h.fd, .events = POLLIN}};
	int t = tcpchat_server_timeout_ms(h.srv);
	if (t < 0 || t > ms)
		t = ms;
	poll(pf, 2, t);
	CHECK(tcpchat_server_step(h.srv) == 0);
	for (;;) {
		CHECK(h.rx_len < RX_MAX);
		ssize_t n = recv(h.fd, h.rx + h.rx_len, RX_MAX - h.rx_len,
		                 MSG_DONTWAIT);
		if (n > 0) {
			h.rx_len += (size_t)n;
			probe_decode();
			continue;
		}
		/* the server must never close the probe */
		CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		                errno == EINTR));
		break;
	}
}

static void probe_send(tcpchat_msg *m)
{
	const tcpchat_codec *c = tcpchat_codec_binary();
	tcpchat_buf b = {0};
	CHECK(c->encode(c->codec_data, m, 0, &b) == 0);
	size_t off = 0;
	int64_t end = now_ms() + WAIT_MS;
	while (off < b.len) {
		ssize_t w = send(h.fd, b.data + off, b.len - off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0)
			off += (size_t)w;
		else
			CHECK(errno == EAGAIN || errno == EWOULDBLOCK ||
			      errno == EINTR);
		CHECK(now_ms() < end);
		if (off < b.len)
			pump(1);
	}
	tcpchat_buf_free(&b);
}

/* Steps the server, answering the bus's requests, until *flag moves
 * past `from` (or was set), at most WAIT_MS. */
static void await(const unsigned long *count, unsigned long from,
                  const int *flag, const char *what)
{
	int64_t end = now_ms() + WAIT_MS;
	while ((count && *count <= from) || (flag && !*flag)) {
		if (now_ms() > end) {
			fprintf(stderr, "the probe waited in vain for %s\n",
			        what);
			abort();
		}
		pump(1);
		drain();
	}
}

static int on_event(tcpchat_server *srv, tcpchat_server_event *ev, void *ud)
{
	(void)srv;
	(void)ud;
	static int show = -1;
	if (show < 0)
		show = getenv("FUZZ_CLUSTER_LOG") != NULL;
	if (ev->type == TCPCHAT_SEV_LOG) {
		CHECK(ev->text != NULL);
		if (show)
			fprintf(stderr, "log: %s\n", ev->text);
	}
	return ev->type == TCPCHAT_SEV_JOIN ? TCPCHAT_ACCEPT : 0;
}

static void destroy(void)
{
	fprintf(stderr,
	        "the bus saw %lu posts, %lu fetches, %lu claims, %lu "
	        "follows, %lu broadcasts, %lu direct records\n",
	        h.posts, h.fetches, h.claims, h.follows, h.broadcasts, h.sends);
	if (h.odd)
		fprintf(stderr,
		        "the probe got %lu messages with a field no server "
		        "sends (not checked: STRICT_FIELDS is 0)\n",
		        h.odd);
	tcpchat_server_destroy(h.srv);
	h.srv = NULL;
	CHECK(h.bus == NULL); /* the server destroyed its bus */
	if (h.fd >= 0)
		close(h.fd);
	h.fd = -1;
	free(h.rx);
	h.rx = NULL;
	tcpchat_buf_free(&h.enc);
}

/* The server, joined to the harness's bus, and the probe in "#fz". */
static void setup(void)
{
	static const long long opts[][2] = {
	        {TCPCHAT_SOPT_LOG_LEVEL, TCPCHAT_LOG_DEBUG},
	        {TCPCHAT_SOPT_RATE_MSGS, 0},
	        {TCPCHAT_SOPT_RATE_BYTES, 0},
	};
	char err[256];
	if (h.srv)
		return;
	CHECK(tcpchat_server_new(&h.srv) == 0);
	tcpchat_server_set_handler(h.srv, on_event, NULL);
	for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
		CHECK(tcpchat_server_set_option(h.srv, (int)opts[i][0],
		                                opts[i][1]) == 0);
	CHECK(tcpchat_server_listen(h.srv, "127.0.0.1:0",
	                            tcpchat_codec_binary()) == 0);
	h.port = tcpchat_server_port(h.srv, 0);
	CHECK(h.port > 0);
	int rc = srv__cluster_join(h.srv, hb_new, "harness://", "fz", err,
	                           sizeof err);
	if (rc)
		fprintf(stderr, "cannot join: %s\n", err);
	CHECK(rc == 0 && h.bus);
	atexit(destroy);
	CHECK(tcpchat_server_step(h.srv) == 0); /* starts the listener */

	h.rx = malloc(RX_MAX);
	CHECK(h.rx);
	h.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(h.fd >= 0);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)h.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(h.fd, (struct sockaddr *)&sa, sizeof sa) == 0);

	tcpchat_msg m = {.type = TCPCHAT_MSG_HELLO};
	m.code = TCPCHAT_PROTOCOL_VERSION;
	m.caps = TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS;
	m.sender.ptr = "probe";
	m.sender.len = 5;
	probe_send(&m);
	/* the name claim and the lobby's fetch are answered by drain() */
	await(NULL, 0, &h.welcome, "its WELCOME");
	memset(&m, 0, sizeof m);
	m.type = TCPCHAT_MSG_JOIN;
	m.room.ptr = "#fz";
	m.room.len = 3;
	probe_send(&m);
	await(&h.fz_joins, 0, NULL, "its JOIN of #fz");
}

/* Every CHECK_EVERY inputs: the probe still gets an answer to WHO, and
 * its TEXT to "#fz" reaches the bus. */
static void probe_check(void)
{
	bus_up();
	drain();
	tcpchat_msg m = {.type = TCPCHAT_MSG_WHO};
	probe_send(&m);
	await(&h.whos, h.whos, NULL, "an answer to WHO");
	snprintf(h.want_body, sizeof h.want_body, "check %lu", h.inputs);
	h.posted_seen = 0;
	memset(&m, 0, sizeof m);
	m.type = TCPCHAT_MSG_TEXT;
	m.room.ptr = "#fz";
	m.room.len = 3;
	m.body.ptr = h.want_body;
	m.body.len = strlen(h.want_body);
	probe_send(&m);
	await(NULL, 0, &h.posted_seen, "its TEXT posted to the bus");
	h.want_body[0] = '\0';
	drain();
}

/* ---- records built from the input ------------------------------------------ */

static uint8_t at(const uint8_t *d, size_t n, size_t i)
{
	return i < n ? d[i] : 0;
}

static tcpchat_str str(const char *p)
{
	tcpchat_str s = {p, strlen(p)};
	return s;
}

/* A record built from d[0..n): a known type (or `type`), an origin, a
 * sender, room and target from lists, code and flags from the bytes,
 * the rest the body.  Returns its length in *out, 0 when not made. */
static size_t build(const uint8_t *d, size_t n, uint32_t type, const char *room,
                    tcpchat_buf *out)
{
	static const uint32_t types[] = {TCPCHAT_MSG_JOIN,  TCPCHAT_MSG_LEAVE,
	                                 TCPCHAT_MSG_TOPIC, TCPCHAT_MSG_TEXT,
	                                 TCPCHAT_MSG_ERROR, TCPCHAT_MSG_WHO,
	                                 TCPCHAT_MSG_ROOMS, TCPCHAT_MSG_PING};
	static const char *const nodes[] = {"n1:0000000000000001",
	                                    "n2:00000000000000ff",
	                                    "n3-x.y_z:0123456789abcdef",
	                                    NULL,
	                                    "a:b",
	                                    "bad node id"};
	static const char *const names[] = {
	        "alice", "bob",      "probe", "carol",
	        "",      "bad name", "x",     "b\xc3\xb6\x62"};
	static const char *const rooms[] = {
	        "#fz", "#lobby", "#other", "", "#\xc3\xa9t\xc3\xa9", "nohash"};
	static const char *const targets[] = {"probe", "alice", "", "nobody",
	                                      "bad name"};
	tcpchat_msg m;
	memset(&m, 0, sizeof m);
	m.type = type ? type : types[at(d, n, 0) % 8];
	const char *node = nodes[at(d, n, 1) % 6];
	m.cursor = node ? str(node) : str(h.bus->b.node);
	m.sender = str(names[at(d, n, 2) % 8]);
	m.room = room ? str(room) : str(rooms[at(d, n, 3) % 6]);
	m.target = str(targets[at(d, n, 4) % 5]);
	uint8_t c = at(d, n, 5);
	m.code = c >= 0xF0 ? (uint32_t)c << 24 | c : c % 4u;
	uint8_t f = at(d, n, 6);
	m.flags = f & 0x80 ? (uint32_t)f : 0;
	m.id = at(d, n, 7);
	m.timestamp = (int64_t)at(d, n, 8) * 1000;
	if (n > 9) {
		m.body.ptr = (const char *)d + 9;
		m.body.len = n - 9;
	}
	out->len = 0;
	const tcpchat_codec *codec = tcpchat_codec_binary();
	if (codec->encode(codec->codec_data, &m, TCPCHAT_FROM_SERVER, out) != 0)
		return 0;
	return out->len;
}

/* A room text, raw or built: d[0] the room, d[1] the seq (bit 7: d[1]
 * and d[2] are the seq itself; else the room's counter plus d[1] % 5,
 * 0 a text seen already), the rest the record. */
static void room_text(const uint8_t *d, size_t n, int built, tcpchat_buf *enc)
{
	const char *room = at(d, n, 0) & 1 ? "#lobby" : "#fz";
	struct hroom *r = hroom(h.bus, room, strlen(room));
	if (!r)
		return;
	uint8_t s = at(d, n, 1);
	uint64_t seq;
	size_t skip = 2;
	if (s & 0x80) {
		seq = (uint64_t)(s & 0x7F) << 8 | at(d, n, 2);
		skip = 3;
	} else {
		seq = r->seq + s % 5u;
	}
	if (seq > r->seq)
		r->seq = seq;
	d += n < skip ? n : skip;
	n = n < skip ? 0 : n - skip;
	if (built) {
		if (!build(d, n, TCPCHAT_MSG_TEXT, room, enc))
			return;
		d = (const uint8_t *)enc->data;
		n = enc->len;
	}
	h.bus->b.ev.room(h.bus->b.ev.data, room, strlen(room), seq, d, n);
}

/* Answers the oldest pending fetch: d[0] % 4 says how (an error,
 * nothing, one record built from the rest, the rest as one record). */
static void fetch_answer(const uint8_t *d, size_t n, tcpchat_buf *enc)
{
	struct pend *p = pend_take(h.bus, P_FETCH);
	if (!p)
		return;
	uint8_t how = at(d, n, 0) % 4;
	struct bus_rec rec = {0};
	rec.seq = p->after + 1 + at(d, n, 1) % 3u;
	uint64_t last = rec.seq + at(d, n, 2) % 2u;
	const uint8_t *rest = n > 3 ? d + 3 : NULL;
	size_t rn = n > 3 ? n - 3 : 0;
	if (how == 0) {
		answer_fetch(p, TCPCHAT_EBUS, NULL, 0, 0);
	} else if (how == 1) {
		answer_fetch(p, 0, NULL, 0, last - 1);
	} else if (how == 2) {
		if (!build(rest, rn, TCPCHAT_MSG_TEXT, NULL, enc)) {
			answer_ok(p);
			return;
		}
		rec.data = (const uint8_t *)enc->data;
		rec.len = enc->len;
		answer_fetch(p, 0, &rec, 1, last);
	} else {
		rec.data = rest;
		rec.len = rn;
		answer_fetch(p, 0, &rec, 1, last);
	}
}

/* Answers the oldest pending claim: d[0] % 4 says how (taken, held by
 * the node in the rest, held by a known node, the bus is lost). */
static void claim_answer(const uint8_t *d, size_t n)
{
	struct pend *p = pend_take(h.bus, P_CLAIM);
	if (!p)
		return;
	switch (at(d, n, 0) % 4) {
	case 0:
		answer_claim(p, 0, NULL, 0);
		break;
	case 1:
		answer_claim(p, TCPCHAT_ENAMEINUSE,
		             n > 1 ? (const char *)d + 1 : "",
		             n > 1 ? n - 1 : 0);
		break;
	case 2:
		answer_claim(p, TCPCHAT_ENAMEINUSE, "n1:0000000000000001", 19);
		break;
	default:
		answer_claim(p, TCPCHAT_EBUS, NULL, 0);
		break;
	}
}

/* One record of the input. */
static void one(uint8_t sel, const uint8_t *d, size_t n, tcpchat_buf *enc)
{
	struct pend *p;
	switch (sel % 12) {
	case 0:
		h.bus->b.ev.note(h.bus->b.ev.data, d, n);
		break;
	case 1:
		if (build(d, n, 0, NULL, enc))
			h.bus->b.ev.note(h.bus->b.ev.data,
			                 (const uint8_t *)enc->data, enc->len);
		break;
	case 2:
	case 3:
		room_text(d, n, sel % 12 == 3, enc);
		break;
	case 4:
		if ((p = pend_take(h.bus, P_POST)) != NULL)
			answer_post(p, at(d, n, 0) & 1 ? TCPCHAT_EBUS : 0);
		break;
	case 5:
		fetch_answer(d, n, enc);
		break;
	case 6:
		claim_answer(d, n);
		break;
	case 7:
		bus_down();
		break;
	case 8:
		bus_up();
		break;
	case 9:
		/* 0xF0 and up: each step waits for the server's timers (at
		 * most 50 ms), so that time passes: heartbeats, servers
		 * lost */
		for (int i = at(d, n, 0) % 8; i >= 0; i--)
			pump(at(d, n, 0) >= 0xF0 ? 50 : 0);
		break;
	case 10:
		/* the server's own record back, as a note or a room text */
		if (h.last_len && at(d, n, 0) & 1) {
			static uint8_t copy[BUS_REC_MAX];
			size_t len = h.last_len;
			memcpy(copy, h.last_out, len);
			struct hroom *r = hroom(h.bus, "#fz", 3);
			if (r)
				h.bus->b.ev.room(h.bus->b.ev.data, "#fz", 3,
				                 ++r->seq, copy, len);
		} else if (h.last_len) {
			static uint8_t copy[BUS_REC_MAX];
			size_t len = h.last_len;
			memcpy(copy, h.last_out, len);
			h.bus->b.ev.note(h.bus->b.ev.data, copy, len);
		}
		break;
	default:
		drain();
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	size_t off = 0;
	for (int k = 0; k < RECORDS_MAX && size - off >= 3; k++) {
		uint8_t sel = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
		off += 3;
		if (len > size - off)
			len = size - off;
		/* a copy of exactly len bytes: ASan sees any overread */
		uint8_t *d = malloc(len ? len : 1);
		CHECK(d);
		if (len)
			memcpy(d, data + off, len);
		off += len;
		one(sel, d, len, &h.enc);
		free(d);
	}
	for (int i = 0; i < 3; i++)
		pump(0);
	if (++h.inputs % CHECK_EVERY == 0)
		probe_check();
	return 0;
}
