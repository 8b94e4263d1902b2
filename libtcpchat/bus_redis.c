/* libtcpchat - the Redis bus: the requests on the cmd connection and
 * their replies (see bus.h for the contract, bus_redis_sub.c for the
 * followed rooms and the messages, bus_redis_link.c for the
 * connections).
 *
 * Keys and channels (room names are binary-safe in them):
 *   tcpchat:seq:<room>   the room's counter
 *   tcpchat:log:<room>   a stream of the room's records, entry id <seq>-1,
 *                        field r = the record, MAXLEN ~ BUS_REDIS_HIST
 *   tcpchat:room:<room>  channel: 8 bytes big-endian seq + the record
 *   tcpchat:all          channel: broadcasts
 *   tcpchat:node:<node>  channel: records sent to one node
 *   tcpchat:ping:<node>  channel: this node's liveness pings
 *   tcpchat:name:<name>  the node id holding a user name */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis_int.h"

/* Numbering, history and publication in one atomic step, so that every
 * follower sees the records of a room in seq order.  When the counter
 * was lost but the history kept, XADD refuses an id not above the
 * stream's last: the counter is raised above it and XADD tried again.
 * The seq is published as 8 big-endian bytes before the record. */
static const char post_lua[] =
        "local s = redis.call('INCR', KEYS[1])\n"
        "local f = tonumber(ARGV[1])\n"
        "if s <= f then s = f + 1; redis.call('SET', KEYS[1], "
        "string.format('%.0f', s)) end\n"
        "local r = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], "
        "string.format('%.0f', s) .. '-1', 'r', ARGV[2])\n"
        "if type(r) == 'table' and r.err then\n"
        "  local t = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)\n"
        "  local l = 0\n"
        "  if #t > 0 then l = tonumber(string.match(t[1][1], '^(%d+)')) or 0 "
        "end\n"
        "  if s <= l then s = l + 1 end\n"
        "  redis.call('SET', KEYS[1], string.format('%.0f', s))\n"
        "  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], "
        "string.format('%.0f', s) .. '-1', 'r', ARGV[2])\n"
        "end\n"
        "local b = ''\n"
        "local v = s\n"
        "for i = 1, 8 do b = string.char(v % 256) .. b; "
        "v = math.floor(v / 256) end\n"
        "redis.call('PUBLISH', KEYS[3], b .. ARGV[2])\n"
        "return s\n";

/* {last, seq, record, seq, record...} in increasing seq order: the
 * newest ARGV[2] records from seq ARGV[1] on.  last is the counter or
 * the stream's last id, whichever is larger (0 for a new room). */
static const char fetch_lua[] =
        "local last = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
        "local t = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)\n"
        "if #t > 0 then\n"
        "  local l = tonumber(string.match(t[1][1], '^(%d+)')) or 0\n"
        "  if l > last then last = l end\n"
        "end\n"
        "local out = {string.format('%.0f', last)}\n"
        "if tonumber(ARGV[2]) > 0 then\n"
        "  local e = redis.call('XREVRANGE', KEYS[2], '+', ARGV[1] .. '-0', "
        "'COUNT', ARGV[2])\n"
        "  for i = #e, 1, -1 do\n"
        "    out[#out + 1] = string.match(e[i][1], '^(%d+)') or '0'\n"
        "    out[#out + 1] = e[i][2][2] or ''\n"
        "  end\n"
        "end\n"
        "return out\n";

static const char claim_lua[] =
        "local v = redis.call('GET', KEYS[1])\n"
        "if (not v) or v == ARGV[1] or (ARGV[2] ~= '' and v == ARGV[2]) then\n"
        "  redis.call('SET', KEYS[1], ARGV[1]); return {1}\n"
        "end\n"
        "return {0, v}\n";

static const char release_lua[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then "
        "redis.call('DEL', KEYS[1]) end\n"
        "return 0\n";

const char *const bus_redis__scripts[NSCRIPTS] = {post_lua, fetch_lua,
                                                  claim_lua, release_lua};

void bus_redis__log(struct bus_redis *b, int level, const char *fmt, ...)
{
	if (!b->base.ev.log)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	b->base.ev.log(b->base.ev.data, level, line);
}

/* Counts a malformed message; warns at most once a second. */
void bus_redis__bad(struct bus_redis *b, const char *what)
{
	b->base.st.bad++;
	int64_t now = util__now_ms();
	if (b->bad_log_at && now - b->bad_log_at < 1000)
		return;
	b->bad_log_at = now;
	bus_redis__log(
	        b, TCPCHAT_LOG_WARN,
	        "redis bus: dropped a malformed message (%s); %llu so far",
	        what, (unsigned long long)b->base.st.bad);
}

/* A decimal number of 1..20 digits that fits: 0, else -1. */
int bus_redis__parse_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		unsigned d = (unsigned)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* ---- requests ------------------------------------------------------- */

static void pend_unlink(struct bus_redis *b, struct req *q)
{
	if (!q->user)
		return;
	if (q->prev)
		q->prev->next = q->next;
	else
		b->pend_head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		b->pend_tail = q->prev;
	q->prev = q->next = NULL;
	q->user = 0;
}

static void req_free(struct bus_redis *b, struct req *q)
{
	pend_unlink(b, q);
	free(q->buf);
	free(q);
}

/* A request with room for `bytes` of copied arguments. */
static struct req *req_new(struct bus_redis *b, enum req_kind kind, void *token,
                           size_t bytes)
{
	struct req *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	q->b = b;
	q->kind = kind;
	q->token = token;
	q->script = -1;
	if (bytes && !(q->buf = malloc(bytes))) {
		free(q);
		return NULL;
	}
	return q;
}

/* Appends an argument, copied after the earlier ones in q->buf. */
static void req_arg(struct req *q, size_t *used, const void *p, size_t n)
{
	if (n)
		memcpy(q->buf + *used, p, n);
	q->argv[q->argc] = q->buf + *used;
	q->argvlen[q->argc++] = n;
	*used += n;
}

/* An argument that outlives the request (a literal, a sha of b). */
static void req_lit(struct req *q, const char *s)
{
	q->argv[q->argc] = s;
	q->argvlen[q->argc++] = strlen(s);
}

static int req_send(struct bus_redis *b, struct req *q)
{
	if (!b->cmd ||
	    redisAsyncCommandArgv(b->cmd, bus_redis__on_reply, q, q->argc,
	                          q->argv, q->argvlen) != REDIS_OK)
		return -1;
	q->sent = 1;
	b->base.st.sent++;
	return 0;
}

static void pend_add(struct bus_redis *b, struct req *q)
{
	q->user = 1;
	q->prev = b->pend_tail;
	q->next = NULL;
	if (b->pend_tail)
		b->pend_tail->next = q;
	else
		b->pend_head = q;
	b->pend_tail = q;
}

/* Gives q its event with err (no records, no seq) and unlinks it. */
static void answer_err(struct bus_redis *b, struct req *q, int err)
{
	const struct bus_events *ev = &b->base.ev;
	pend_unlink(b, q);
	q->answered = 1;
	switch (q->kind) {
	case REQ_POST:
		ev->posted(ev->data, q->token, err, 0);
		break;
	case REQ_FETCH:
		ev->fetched(ev->data, q->token, err, NULL, 0, 0);
		break;
	case REQ_CLAIM:
		ev->claimed(ev->data, q->token, err, NULL, 0);
		break;
	default:
		break;
	}
}

void bus_redis__fail_pending(struct bus_redis *b)
{
	/* the fetches waiting for their rooms are in the pending list too */
	for (size_t i = 0; b->rooms && i < b->nbuckets; i++)
		for (struct broom *r = b->rooms[i]; r; r = r->next) {
			r->wait = NULL;
			r->wtail = &r->wait;
		}
	while (b->pend_head) {
		struct req *q = b->pend_head;
		answer_err(b, q, TCPCHAT_EBUS);
		if (!q->sent)
			req_free(b, q);
	}
}

int bus_redis__send_internal(struct bus_redis *b, enum req_kind kind,
                             uint64_t ping, int argc, const char **argv,
                             const size_t *argvlen)
{
	size_t bytes = 0;
	for (int i = 0; i < argc; i++)
		bytes += argvlen[i];
	struct req *q = req_new(b, kind, NULL, bytes + 1);
	if (!q)
		return -1;
	size_t used = 0;
	for (int i = 0; i < argc && i < 10; i++)
		req_arg(q, &used, argv[i], argvlen[i]);
	q->ping = ping;
	q->answered = 1; /* no event */
	if (req_send(b, q) != 0) {
		req_free(b, q);
		return -1;
	}
	return 0;
}

/* Sends a user request (post, fetch, claim) now and puts it in the
 * pending list: 0, or TCPCHAT_EBUS (freed). */
static int user_send(struct bus_redis *b, struct req *q)
{
	if (req_send(b, q) != 0) {
		req_free(b, q);
		return TCPCHAT_EBUS;
	}
	pend_add(b, q);
	return 0;
}

/* Fills q with EVALSHA of a script over keys "tcpchat:<k>:<name>". */
static void script_head(struct bus_redis *b, struct req *q, int script,
                        const char *nkeys)
{
	q->script = script;
	req_lit(q, "EVALSHA");
	req_lit(q, b->sha[script]);
	req_lit(q, nkeys);
}

static void key_arg(struct req *q, size_t *used, const char *prefix,
                    const char *name, size_t n)
{
	size_t plen = strlen(prefix);
	memcpy(q->buf + *used, prefix, plen);
	memcpy(q->buf + *used + plen, name, n);
	q->argv[q->argc] = q->buf + *used;
	q->argvlen[q->argc++] = plen + n;
	*used += plen + n;
}

static int r_post(struct bus *bb, const char *room, size_t rlen, uint64_t floor,
                  const void *rec, size_t len, void *token)
{
	struct bus_redis *b = (struct bus_redis *)bb;
	if (!room_name_ok(room, rlen) || !rec || len == 0)
		return TCPCHAT_EINVAL; /* records are never empty */
	if (len > BUS_REC_MAX)
		return TCPCHAT_EMSGSIZE;
	if (!b->base.up || !b->cmd)
		return TCPCHAT_EBUS;
	char fl[24], mx[24];
	size_t fn = (size_t)snprintf(fl, sizeof fl, "%llu",
	                             (unsigned long long)floor);
	size_t mn = (size_t)snprintf(mx, sizeof mx, "%d", BUS_REDIS_HIST);
	struct req *q = req_new(b, REQ_POST, token, 3 * (16 + rlen) + len + 48);
	if (!q)
		return TCPCHAT_ENOMEM;
	size_t used = 0;
	script_head(b, q, SCRIPT_POST, "3");
	key_arg(q, &used, "tcpchat:seq:", room, rlen);
	key_arg(q, &used, "tcpchat:log:", room, rlen);
	key_arg(q, &used, "tcpchat:room:", room, rlen);
	req_arg(q, &used, fl, fn);
	req_arg(q, &used, rec, len);
	req_arg(q, &used, mx, mn);
	b->base.st.sent_bytes += len;
	return user_send(b, q);
}

static int r_fetch(struct bus *bb, const char *room, size_t rlen,
                   uint64_t after, uint32_t max, void *token)
{
	struct bus_redis *b = (struct bus_redis *)bb;
	if (!room_name_ok(room, rlen))
		return TCPCHAT_EINVAL;
	if (!b->base.up || !b->cmd)
		return TCPCHAT_EBUS;
	char from[24], mx[24];
	/* no seq is above UINT64_MAX: ask for none */
	uint64_t first = after == UINT64_MAX ? after : after + 1;
	if (after == UINT64_MAX)
		max = 0;
	size_t fn = (size_t)snprintf(from, sizeof from, "%llu",
	                             (unsigned long long)first);
	size_t mn = (size_t)snprintf(mx, sizeof mx, "%lu", (unsigned long)max);
	struct req *q = req_new(b, REQ_FETCH, token, 2 * (16 + rlen) + 48);
	if (!q)
		return TCPCHAT_ENOMEM;
	size_t used = 0;
	script_head(b, q, SCRIPT_FETCH, "2");
	key_arg(q, &used, "tcpchat:seq:", room, rlen);
	key_arg(q, &used, "tcpchat:log:", room, rlen);
	req_arg(q, &used, from, fn);
	req_arg(q, &used, mx, mn);
	struct broom *r = bus_redis__room_find(b, room, rlen);
	if (r && r->state == SUB_PENDING) {
		/* followed but not confirmed: a record published before the
		 * SUBSCRIBE took effect could be missed by both paths */
		*r->wtail = q;
		r->wtail = &q->wnext;
		pend_add(b, q);
		return 0;
	}
	return user_send(b, q);
}

static int r_claim(struct bus *bb, const char *name, size_t nlen,
                   const char *stale, size_t slen, void *token)
{
	struct bus_redis *b = (struct bus_redis *)bb;
	if (!name || nlen == 0 || nlen > 255 || slen > BUS_NODE_MAX ||
	    (!stale && slen))
		return TCPCHAT_EINVAL;
	if (!b->base.up || !b->cmd)
		return TCPCHAT_EBUS;
	struct req *q = req_new(b, REQ_CLAIM, token,
	                        16 + nlen + b->base.node_len + slen + 1);
	if (!q)
		return TCPCHAT_ENOMEM;
	size_t used = 0;
	script_head(b, q, SCRIPT_CLAIM, "1");
	key_arg(q, &used, "tcpchat:name:", name, nlen);
	req_arg(q, &used, b->base.node, b->base.node_len);
	req_arg(q, &used, stale ? stale : "", slen);
	return user_send(b, q);
}

static void r_release(struct bus *bb, const char *name, size_t nlen)
{
	struct bus_redis *b = (struct bus_redis *)bb;
	if (!name || nlen == 0 || nlen > 255 || !b->base.up || !b->cmd)
		return;
	struct req *q =
	        req_new(b, REQ_PUBLISH, NULL, 16 + nlen + b->base.node_len + 1);
	if (!q)
		return;
	size_t used = 0;
	script_head(b, q, SCRIPT_RELEASE, "1");
	key_arg(q, &used, "tcpchat:name:", name, nlen);
	req_arg(q, &used, b->base.node, b->base.node_len);
	q->answered = 1;
	if (req_send(b, q) != 0)
		req_free(b, q);
}

/* PUBLISH chan rec: 0, or an error. */
static int publish(struct bus_redis *b, const char *chan, size_t clen,
                   const void *rec, size_t len)
{
	if (!rec || len == 0 || clen == 0)
		return TCPCHAT_EINVAL; /* records are never empty */
	if (len > BUS_REC_MAX)
		return TCPCHAT_EMSGSIZE;
	if (!b->base.up || !b->cmd)
		return TCPCHAT_EBUS;
	struct req *q = req_new(b, REQ_PUBLISH, NULL, clen + len + 1);
	if (!q)
		return TCPCHAT_ENOMEM;
	size_t used = 0;
	req_lit(q, "PUBLISH");
	req_arg(q, &used, chan, clen);
	req_arg(q, &used, rec, len);
	q->answered = 1;
	if (req_send(b, q) != 0) {
		req_free(b, q);
		return TCPCHAT_EBUS;
	}
	b->base.st.sent_bytes += len;
	return 0;
}

static int r_broadcast(struct bus *bb, const void *rec, size_t len)
{
	return publish((struct bus_redis *)bb, "tcpchat:all", 11, rec, len);
}

static int r_send(struct bus *bb, const char *node, size_t nlen,
                  const void *rec, size_t len)
{
	if (!node || nlen == 0 || nlen > BUS_NODE_MAX)
		return TCPCHAT_EINVAL;
	char chan[BUS_NODE_MAX + 16];
	memcpy(chan, "tcpchat:node:", 13);
	memcpy(chan + 13, node, nlen);
	return publish((struct bus_redis *)bb, chan, 13 + nlen, rec, len);
}

/* Sends the fetches that waited for r's confirmation. */
void bus_redis__room_flush(struct bus_redis *b, struct broom *r)
{
	struct req *q = r->wait;
	r->wait = NULL;
	r->wtail = &r->wait;
	while (q) {
		struct req *next = q->wnext;
		q->wnext = NULL;
		if (req_send(b, q) != 0) {
			answer_err(b, q, TCPCHAT_EBUS);
			req_free(b, q);
		}
		q = next;
	}
}

/* ---- what comes back ------------------------------------------------ */

static void on_fetched(struct bus_redis *b, struct req *q,
                       const redisReply *rep)
{
	const struct bus_events *ev = &b->base.ev;
	uint64_t last;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->elements % 2 != 1 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    bus_redis__parse_u64(rep->element[0]->str, rep->element[0]->len,
	                         &last)) {
		bus_redis__bad(b, "fetch answer");
		answer_err(b, q, TCPCHAT_EBUS);
		return;
	}
	size_t n = (rep->elements - 1) / 2;
	struct bus_rec *recs = n ? calloc(n, sizeof *recs) : NULL;
	if (n && !recs) {
		answer_err(b, q, TCPCHAT_ENOMEM);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const redisReply *id = rep->element[1 + 2 * i];
		const redisReply *rec = rep->element[2 + 2 * i];
		if (id->type != REDIS_REPLY_STRING ||
		    rec->type != REDIS_REPLY_STRING ||
		    bus_redis__parse_u64(id->str, id->len, &recs[i].seq) ||
		    (i && recs[i].seq <= recs[i - 1].seq)) {
			free(recs);
			bus_redis__bad(b, "fetch answer");
			answer_err(b, q, TCPCHAT_EBUS);
			return;
		}
		recs[i].data = (const uint8_t *)rec->str;
		recs[i].len = rec->len;
	}
	pend_unlink(b, q);
	q->answered = 1;
	ev->fetched(ev->data, q->token, 0, recs, n, last);
	free(recs);
}

static void on_claimed(struct bus_redis *b, struct req *q,
                       const redisReply *rep)
{
	const struct bus_events *ev = &b->base.ev;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER) {
		if (rep->element[0]->integer == 1) {
			pend_unlink(b, q);
			q->answered = 1;
			ev->claimed(ev->data, q->token, 0, NULL, 0);
			return;
		}
		if (rep->elements == 2 &&
		    rep->element[1]->type == REDIS_REPLY_STRING) {
			pend_unlink(b, q);
			q->answered = 1;
			ev->claimed(ev->data, q->token, TCPCHAT_ENAMEINUSE,
			            rep->element[1]->str, rep->element[1]->len);
			return;
		}
	}
	bus_redis__bad(b, "claim answer");
	answer_err(b, q, TCPCHAT_EBUS);
}

/* Sends q again with the whole script after NOSCRIPT: 0 or -1. */
static int resend_eval(struct bus_redis *b, redisAsyncContext *ac,
                       struct req *q)
{
	q->argv[0] = "EVAL";
	q->argvlen[0] = 4;
	q->argv[1] = bus_redis__scripts[q->script];
	q->argvlen[1] = strlen(q->argv[1]);
	bus_redis__log(b, TCPCHAT_LOG_INFO,
	               "redis bus: script not loaded there; sent whole");
	return redisAsyncCommandArgv(ac, bus_redis__on_reply, q, q->argc,
	                             q->argv, q->argvlen) == REDIS_OK
	               ? 0
	               : -1;
}

static void reply_error(struct bus_redis *b, struct req *q,
                        const redisReply *rep)
{
	if (rep->type == REDIS_REPLY_ERROR)
		bus_redis__log(b, TCPCHAT_LOG_WARN, "redis bus: refused: %.*s",
		               (int)TC_MIN(rep->len, 200), rep->str);
	else
		bus_redis__bad(b, "unexpected answer");
	answer_err(b, q, TCPCHAT_EBUS);
}

void bus_redis__on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct req *q = priv;
	struct bus_redis *b = q->b;
	redisReply *rep = r;
	if (!rep) {
		/* hiredis is freeing ac: if it is ours, that is a loss */
		if (!b->destroyed && ac == b->cmd) {
			b->cmd = NULL;
			bus_redis__lose(b, ac->errstr[0] ? ac->errstr
			                                 : "connection closed");
		}
		req_free(b, q);
		return;
	}
	if (b->destroyed || ac != b->cmd) {
		req_free(b, q);
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR && q->script >= 0 &&
	    q->argv[0][0] == 'E' && q->argvlen[0] == 7 &&
	    !strncmp(rep->str, "NOSCRIPT", 8)) {
		if (resend_eval(b, ac, q) == 0)
			return;
	}
	switch (q->kind) {
	case REQ_POST:
		if (q->answered)
			break;
		if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0) {
			pend_unlink(b, q);
			q->answered = 1;
			b->base.ev.posted(b->base.ev.data, q->token, 0,
			                  (uint64_t)rep->integer);
		} else {
			reply_error(b, q, rep);
		}
		break;
	case REQ_FETCH:
		if (q->answered)
			break;
		if (rep->type == REDIS_REPLY_ERROR)
			reply_error(b, q, rep);
		else
			on_fetched(b, q, rep);
		break;
	case REQ_CLAIM:
		if (q->answered)
			break;
		if (rep->type == REDIS_REPLY_ERROR)
			reply_error(b, q, rep);
		else
			on_claimed(b, q, rep);
		break;
	case REQ_PUBLISH:
	case REQ_SCRIPT:
		if (rep->type == REDIS_REPLY_ERROR)
			bus_redis__log(b, TCPCHAT_LOG_WARN,
			               "redis bus: refused: %.*s",
			               (int)TC_MIN(rep->len, 200), rep->str);
		break;
	case REQ_PING:
		bus_redis__pong(b, q->ping, 1);
		break;
	case REQ_HELLO:
		b->hello_ok = 1;
		bus_redis__progress(b);
		break;
	case REQ_EPOCH:
		bus_redis__epoch_done(b);
		break;
	}
	req_free(b, q);
}

static void r_reap(struct bus *bb)
{
	struct bus_redis *b = (struct bus_redis *)bb;
	redis_loop__reap(&b->graves);
}

static void r_destroy(struct bus *bb)
{
	struct bus_redis *b = (struct bus_redis *)bb;
	if (!b)
		return;
	b->destroyed = 1;
	loop__timer_stop(b->base.loop, &b->tick);
	loop__timer_stop(b->base.loop, &b->retry);
	/* the NULL replies of the freed contexts free the sent requests */
	bus_redis__close(b);
	while (b->pend_head)
		req_free(b, b->pend_head); /* fetches waiting for a room */
	bus_redis__free_rooms(b);
	redis_loop__reap(&b->graves);
	free(b);
}

const struct bus_ops bus_redis__ops = {
        .name = "redis",
        .post = r_post,
        .follow = bus_redis__follow,
        .unfollow = bus_redis__unfollow,
        .fetch = r_fetch,
        .broadcast = r_broadcast,
        .send = r_send,
        .claim = r_claim,
        .release = r_release,
        .reap = r_reap,
        .destroy = r_destroy,
};
