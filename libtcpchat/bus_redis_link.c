/* libtcpchat - the Redis bus: new(), the two connections (cmd for
 * commands, sub for SUBSCRIBE), their liveness, losses and reconnects
 * (see bus_redis.c for the requests). */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "bus_redis_int.h"

/* ---- the URL ---------------------------------------------------------- */

/* redis://HOST[:PORT] or redis://[V6]:PORT into host and *port: 0, or -1
 * with words in err. */
static int parse_url(const char *url, char *host, size_t hcap, int *port,
                     char *err, size_t errlen)
{
	const char *p = url + 8;
	if (strncmp(url, "redis://", 8) != 0) {
		snprintf(err, errlen, "not a redis:// URL: %.100s", url);
		return -1;
	}
	const char *hend;
	const char *rest;
	if (*p == '[') {
		hend = strchr(p, ']');
		if (!hend) {
			snprintf(err, errlen, "no ']' in %.100s", url);
			return -1;
		}
		p++;
		rest = hend + 1;
	} else {
		hend = p + strcspn(p, ":/");
		rest = hend;
	}
	size_t hlen = (size_t)(hend - p);
	if (hlen == 0 || hlen >= hcap) {
		snprintf(err, errlen, "no host in %.100s", url);
		return -1;
	}
	memcpy(host, p, hlen);
	host[hlen] = '\0';
	*port = 6379;
	if (*rest == ':') {
		long v = 0;
		const char *d = rest + 1;
		if (*d == '\0')
			v = -1;
		for (; *d >= '0' && *d <= '9' && v <= 65535; d++)
			v = v * 10 + (*d - '0');
		if (v < 1 || v > 65535 || (*d && strcmp(d, "/") != 0)) {
			snprintf(err, errlen, "bad port in %.100s", url);
			return -1;
		}
		*port = (int)v;
	} else if (*rest && strcmp(rest, "/") != 0) {
		snprintf(err, errlen, "bad redis URL %.100s", url);
		return -1;
	}
	return 0;
}

/* HOST to a numeric address, once, before the loop runs. */
static int resolve(const char *host, char *out, size_t cap, char *err,
                   size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0 || !res) {
		snprintf(err, errlen, "cannot resolve %.64s: %s", host,
		         gai_strerror(rc));
		return -1;
	}
	const void *a;
	if (res->ai_family == AF_INET6)
		a = &((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr;
	else
		a = &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
	const char *ok = inet_ntop(res->ai_family, a, out, (socklen_t)cap);
	freeaddrinfo(res);
	if (!ok) {
		snprintf(err, errlen, "cannot resolve %.64s", host);
		return -1;
	}
	return 0;
}

/* ---- the first, synchronous connection ------------------------------- */

static int sync_fail(redisContext *c, redisReply *rep, const char *url,
                     char *err, size_t errlen)
{
	if (rep && rep->type == REDIS_REPLY_ERROR)
		snprintf(err, errlen, "%s refused: %.200s", url, rep->str);
	else if (!rep)
		snprintf(err, errlen, "cannot reach %s: %s", url, c->errstr);
	else
		snprintf(err, errlen, "%s: unexpected answer", url);
	if (rep)
		freeReplyObject(rep);
	redisFree(c);
	return TCPCHAT_EBUS;
}

/* Connects, agrees on the epoch and loads the scripts: 0 or an error. */
static int sync_setup(struct bus_redis *b, uint64_t epoch, int timeout_ms,
                      char *err, size_t errlen)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	redisContext *c = redisConnectWithTimeout(b->host, b->port, tv);
	if (!c)
		return TCPCHAT_ENOMEM;
	if (c->err) {
		snprintf(err, errlen, "cannot reach %s: %s", b->url, c->errstr);
		redisFree(c);
		return TCPCHAT_EBUS;
	}
	redisSetTimeout(c, tv);
	redisReply *rep = redisCommand(c, "SET tcpchat:epoch %llu NX",
	                               (unsigned long long)epoch);
	if (!rep || rep->type == REDIS_REPLY_ERROR)
		return sync_fail(c, rep, b->url, err, errlen);
	freeReplyObject(rep);
	rep = redisCommand(c, "GET tcpchat:epoch");
	if (!rep || rep->type == REDIS_REPLY_ERROR)
		return sync_fail(c, rep, b->url, err, errlen);
	uint64_t v = 0;
	int ok = rep->type == REDIS_REPLY_STRING && rep->len > 0 &&
	         rep->len <= 20;
	for (size_t i = 0; ok && i < rep->len; i++) {
		unsigned d = (unsigned)(rep->str[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			ok = 0;
		else
			v = v * 10 + d;
	}
	freeReplyObject(rep);
	if (!ok || v == 0) {
		snprintf(err, errlen, "tcpchat:epoch holds no epoch");
		redisFree(c);
		return TCPCHAT_EBUS;
	}
	b->base.epoch = v;
	for (int i = 0; i < NSCRIPTS; i++) {
		rep = redisCommand(c, "SCRIPT LOAD %s", bus_redis__scripts[i]);
		if (!rep || rep->type != REDIS_REPLY_STRING || rep->len != 40)
			return sync_fail(c, rep, b->url, err, errlen);
		memcpy(b->sha[i], rep->str, 40);
		b->sha[i][40] = '\0';
		freeReplyObject(rep);
	}
	redisFree(c);
	return 0;
}

/* ---- the asynchronous connections ------------------------------------ */

/* Takes ac out of b when it is one of b's: 1 if it was. */
static int forget(struct bus_redis *b, const redisAsyncContext *ac)
{
	if (ac == b->cmd) {
		b->cmd = NULL;
		return 1;
	}
	if (ac == b->sub) {
		b->sub = NULL;
		return 1;
	}
	return 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct bus_redis *b = ac->data;
	if (status == REDIS_OK || !b || b->destroyed)
		return;
	/* hiredis frees ac after this */
	if (forget(b, ac))
		bus_redis__lose(b, ac->errstr[0] ? ac->errstr
		                                 : "connection refused");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct bus_redis *b = ac->data;
	if (!b || b->destroyed)
		return;
	/* hiredis frees ac after this */
	if (forget(b, ac))
		bus_redis__lose(b, status == REDIS_OK || !ac->errstr[0]
		                           ? "connection closed"
		                           : ac->errstr);
}

static redisAsyncContext *open_ctx(struct bus_redis *b, char *why, size_t wlen)
{
	redisAsyncContext *ac = redisAsyncConnect(b->host, b->port);
	if (!ac) {
		snprintf(why, wlen, "out of memory");
		return NULL;
	}
	if (ac->err) {
		snprintf(why, wlen, "%s", ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = b;
	if (redis_loop__attach(ac, b->base.loop, &b->graves) != 0) {
		snprintf(why, wlen, "out of memory");
		redisAsyncFree(ac);
		return NULL;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	return ac;
}

/* Opens cmd and sub and sends what a new link needs: 0, or -1 with why
 * (whatever was opened is freed). */
static int start_link(struct bus_redis *b, char *why, size_t wlen)
{
	b->link_since = util__now_ms();
	b->hello_ok = 0;
	b->epoch_sent = 0;
	b->cmd_wait = b->sub_wait = 0;
	b->cmd = open_ctx(b, why, wlen);
	if (b->cmd)
		b->sub = open_ctx(b, why, wlen);
	if (!b->cmd || !b->sub) {
		bus_redis__close(b);
		return -1;
	}
	const char *argv[1] = {"PING"};
	size_t lens[1] = {4};
	if (bus_redis__send_internal(b, REQ_HELLO, 0, 1, argv, lens) != 0 ||
	    bus_redis__subscribe_all(b) < 0) {
		snprintf(why, wlen, "cannot send to redis");
		bus_redis__close(b);
		return -1;
	}
	return 0;
}

void bus_redis__close(struct bus_redis *b)
{
	redisAsyncContext *c = b->cmd, *s = b->sub;
	b->cmd = b->sub = NULL;
	if (c)
		redisAsyncFree(c);
	if (s)
		redisAsyncFree(s);
}

static int64_t jitter(struct bus_redis *b, int ms)
{
	/* xorshift64 */
	uint64_t x = b->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	int64_t span = ms / 5; /* +-20% */
	if (span <= 0)
		return ms;
	return ms - span + (int64_t)(x % (uint64_t)(2 * span + 1));
}

void bus_redis__lose(struct bus_redis *b, const char *why)
{
	if (b->destroyed || b->link == LINK_DOWN)
		return;
	char w[256];
	snprintf(w, sizeof w, "%s", why); /* why may live in a freed ac */
	int was_up = b->link == LINK_UP;
	b->link = LINK_DOWN;
	b->base.up = 0;
	if (was_up) {
		b->base.st.losses++;
		b->down_since = util__now_ms();
		bus_redis__log(b, TCPCHAT_LOG_WARN, "redis bus: %s lost: %s",
		               b->url, w);
		b->base.ev.down(b->base.ev.data, w);
	} else {
		bus_redis__log(b, TCPCHAT_LOG_DEBUG,
		               "redis bus: reconnect to %s failed: %s", b->url,
		               w);
	}
	/* answered before the contexts go: their NULL replies then only
	 * free what is answered already */
	bus_redis__fail_pending(b);
	bus_redis__close(b);
	if (b->destroyed)
		return;
	int64_t d = jitter(b, b->retry_ms);
	b->retry_ms = TC_MIN(b->retry_ms * 2, BUS_REDIS_RETRY_MAX);
	loop__timer_start(b->base.loop, &b->retry, d, 0);
}

static void on_retry(struct loop_timer *t)
{
	struct bus_redis *b = t->data;
	char why[256];
	if (b->link != LINK_DOWN)
		return;
	b->link = LINK_CONNECTING;
	if (start_link(b, why, sizeof why) != 0)
		bus_redis__lose(b, why);
}

void bus_redis__progress(struct bus_redis *b)
{
	if (b->link != LINK_CONNECTING || !b->hello_ok || b->subs_wanted > 0 ||
	    b->epoch_sent)
		return;
	/* Redis may have come back empty: the scripts and the epoch again
	 * (the scripts before the epoch's answer says up) */
	for (int i = 0; i < NSCRIPTS; i++) {
		const char *argv[3] = {"SCRIPT", "LOAD", bus_redis__scripts[i]};
		size_t lens[3] = {6, 4, strlen(bus_redis__scripts[i])};
		bus_redis__send_internal(b, REQ_SCRIPT, 0, 3, argv, lens);
	}
	char ep[24];
	snprintf(ep, sizeof ep, "%llu", (unsigned long long)b->base.epoch);
	const char *argv[4] = {"SET", "tcpchat:epoch", ep, "NX"};
	size_t lens[4] = {3, 13, strlen(ep), 2};
	if (bus_redis__send_internal(b, REQ_EPOCH, 0, 4, argv, lens) != 0) {
		bus_redis__lose(b, "cannot send to redis");
		return;
	}
	b->epoch_sent = 1;
}

void bus_redis__epoch_done(struct bus_redis *b)
{
	if (b->link != LINK_CONNECTING)
		return;
	b->link = LINK_UP;
	b->base.up = 1;
	b->retry_ms = BUS_REDIS_RETRY_MIN;
	b->cmd_wait = b->sub_wait = 0;
	bus_redis__log(b, TCPCHAT_LOG_INFO, "redis bus: %s back after %lld ms",
	               b->url, (long long)(util__now_ms() - b->down_since));
	b->base.ev.up(b->base.ev.data);
}

void bus_redis__pong(struct bus_redis *b, uint64_t n, int on_cmd)
{
	/* a late answer still shows the link moves: wait for the newest */
	int64_t w = n == b->ping_n ? 0 : b->ping_at;
	if (on_cmd)
		b->cmd_wait = w;
	else
		b->sub_wait = w;
}

static void on_tick(struct loop_timer *t)
{
	struct bus_redis *b = t->data;
	int64_t now = util__now_ms();
	if (b->link == LINK_CONNECTING) {
		if (now - b->link_since > BUS_REDIS_DEAD_MS)
			bus_redis__lose(b, "no answer from redis while "
			                   "connecting");
		return;
	}
	if (b->link != LINK_UP)
		return;
	if ((b->cmd_wait && now - b->cmd_wait > BUS_REDIS_DEAD_MS) ||
	    (b->sub_wait && now - b->sub_wait > BUS_REDIS_DEAD_MS)) {
		bus_redis__lose(b, "no answer from redis within 3 s");
		return;
	}
	/* The ping of sub is a message published on cmd to this node's
	 * ping channel: hiredis 0.14 gives no callback for a PING answered
	 * on a subscribed connection (and keeps its entry until the end),
	 * so the one message tests both connections. */
	char num[24];
	uint64_t n = b->ping_n + 1;
	snprintf(num, sizeof num, "%llu", (unsigned long long)n);
	const char *argv[3] = {"PUBLISH", b->ping_chan, num};
	size_t lens[3] = {7, strlen(b->ping_chan), strlen(num)};
	if (bus_redis__send_internal(b, REQ_PING, n, 3, argv, lens) != 0) {
		bus_redis__lose(b, "cannot send to redis");
		return;
	}
	b->ping_n = n;
	b->ping_at = now;
	if (!b->cmd_wait)
		b->cmd_wait = now;
	if (!b->sub_wait)
		b->sub_wait = now;
}

int bus_redis__new(struct bus **out, struct loop *loop, const char *url,
                   const char *node, uint64_t epoch, int timeout_ms,
                   const struct bus_events *ev, char *err, size_t errlen)
{
	char dummy[8];
	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof dummy;
	}
	err[0] = '\0';
	size_t nlen = node ? strlen(node) : 0;
	if (!out || !loop || !url || !ev || nlen == 0 || nlen > BUS_NODE_MAX ||
	    epoch == 0) {
		snprintf(err, errlen, "bad arguments");
		return TCPCHAT_EINVAL;
	}
	*out = NULL;
	struct bus_redis *b = calloc(1, sizeof *b);
	if (!b)
		return TCPCHAT_ENOMEM;
	char host[256];
	if (parse_url(url, host, sizeof host, &b->port, err, errlen) != 0 ||
	    resolve(host, b->host, sizeof b->host, err, errlen) != 0) {
		free(b);
		return TCPCHAT_EADDR;
	}
	snprintf(b->url, sizeof b->url, "redis://%.64s:%d", host, b->port);
	int rc = sync_setup(b, epoch, timeout_ms > 0 ? timeout_ms : 1000, err,
	                    errlen);
	if (rc != 0) {
		free(b);
		return rc;
	}
	b->base.ops = &bus_redis__ops;
	b->base.loop = loop;
	b->base.ev = *ev;
	memcpy(b->base.node, node, nlen);
	b->base.node_len = nlen;
	snprintf(b->node_chan, sizeof b->node_chan, "tcpchat:node:%s", node);
	snprintf(b->ping_chan, sizeof b->ping_chan, "tcpchat:ping:%s", node);
	util__random_key(b->hkey);
	b->rng = b->hkey[0] | 1;
	b->retry_ms = BUS_REDIS_RETRY_MIN;
	loop__timer_init(&b->tick, on_tick, b);
	loop__timer_init(&b->retry, on_retry, b);
	/* up from the start: the synchronous connection just worked, and
	 * the commands wait in hiredis until the connection is made */
	b->link = LINK_UP;
	b->base.up = 1;
	char why[256] = "out of memory";
	if (start_link(b, why, sizeof why) != 0 ||
	    loop__timer_start(loop, &b->tick, BUS_REDIS_PING_MS,
	                      BUS_REDIS_PING_MS) != 0) {
		snprintf(err, errlen, "cannot reach %s: %s", b->url, why);
		bus_redis__close(b);
		redis_loop__reap(&b->graves);
		free(b);
		return TCPCHAT_EBUS;
	}
	*out = &b->base;
	return 0;
}
