/* libtcpchat - the NATS bus, its start: the URL, the connection, the
 * stream and KV buckets in JetStream, the cluster's epoch, the core
 * subscriptions, the wakeup and the worker.  Before the loop runs. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus_nats_int.h"
#include "internal.h"

#if TCPCHAT_HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

/* nats://HOST:PORT with a port of 1-65535 and nothing after it. */
static int url_ok(const char *url)
{
	static const char scheme[] = "nats://";
	if (!url || strncmp(url, scheme, sizeof scheme - 1))
		return 0;
	const char *host = url + sizeof scheme - 1;
	const char *colon = strrchr(host, ':');
	if (!colon || colon == host || strpbrk(host, "/@?# "))
		return 0;
	const char *p = colon + 1;
	unsigned long port = 0;
	if (!*p)
		return 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || port > 65535)
			return 0;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	return port >= 1 && port <= 65535;
}

/* err[0..errlen) := what, and nats.c's own words for s. */
static int nats_err(char *err, size_t errlen, int code, const char *what,
                    natsStatus s)
{
	/* nats.c's last error of this thread says more than the status;
	 * without the "(file.c:line): " it starts with. */
	const char *words = nats_GetLastError(NULL);
	if (words && words[0] == '(' && strstr(words, "): "))
		words = strstr(words, "): ") + 3;
	if (!words || !*words)
		words = natsStatus_GetText(s);
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", what, words);
	return code;
}

static int wake_open(struct bus_nats *b)
{
#if TCPCHAT_HAVE_EVENTFD
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd >= 0) {
		b->wake_rfd = b->wake_wfd = fd;
		return 0;
	}
#endif
	int p[2];
	if (pipe(p) < 0)
		return TCPCHAT_ESYS;
	b->wake_rfd = p[0];
	b->wake_wfd = p[1];
	if (util__nonblock_cloexec(p[0]) < 0 ||
	    util__nonblock_cloexec(p[1]) < 0)
		return TCPCHAT_ESYS;
	return 0;
}

/* The wait before the next reconnect, as bus.h says: from 100 ms,
 * doubling to 5 s, plus up to a quarter more of jitter.  nats.c's
 * reconnect thread. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	struct bus_nats *b = closure;
	TC_UNUSED(nc);
	int64_t d = 100;
	for (int i = 1; i < attempts && d < 5000; i++)
		d *= 2;
	if (d > 5000)
		d = 5000;
	uint64_t r = util__siphash(b->hkey, &attempts, sizeof attempts);
	return d + (int64_t)(r % (uint64_t)(d / 4 + 1));
}

static int connect_to(struct bus_nats *b, const char *url, int timeout_ms,
                      char *err, size_t errlen)
{
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetURL(o, url);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o,
		                           timeout_ms > 0 ? timeout_ms : 2000);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 100);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectJitter(o, 100, 1000);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, b);
	/* Nothing waits in a buffer while the server is away: a publish
	 * then fails at once (the bus refuses requests while down), and so
	 * does a request waiting for its answer (a PubAck). */
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(o, 1);
	if (s == NATS_OK)
		s = natsOptions_SetFailRequestsOnDisconnect(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(o, false, NULL, NULL);
	/* Publishes go out at once, not after nats.c's flusher (which
	 * naps a millisecond): a post at light load goes alone without
	 * waiting, and a round's messages follow each other closely. */
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, true);
	/* The messages of every subscription (one per followed room) come
	 * through nats.c's shared delivery pool, not a thread per room:
	 * ten thousand rooms must not make ten thousand threads. */
	if (s == NATS_OK)
		s = natsOptions_UseGlobalMessageDelivery(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(o, bus_nats__on_disconnected,
		                                  b);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, bus_nats__on_reconnected,
		                                 b);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(o, bus_nats__on_closed, b);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(o, bus_nats__on_error, b);
	if (s != NATS_OK) {
		natsOptions_Destroy(o);
		return nats_err(err, errlen,
		                s == NATS_NO_MEMORY ? TCPCHAT_ENOMEM
		                                    : TCPCHAT_EADDR,
		                "NATS options", s);
	}
	s = natsConnection_Connect(&b->nc, o);
	natsOptions_Destroy(o);
	if (s != NATS_OK) {
		b->nc = NULL;
		char what[160];
		snprintf(what, sizeof what,
		         "cannot reach the NATS server at %.100s", url);
		return nats_err(err, errlen, TCPCHAT_EBUS, what, s);
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = timeout_ms > 0 ? timeout_ms : 2000;
	s = natsConnection_JetStream(&b->js, b->nc, &jo);
	if (s != NATS_OK)
		return nats_err(err, errlen, TCPCHAT_EBUS, "JetStream", s);
	return 0;
}

static const char no_js[] =
        "the NATS server has no JetStream (run it with -js)";

/* Whether the stream of si republishes what it stores as we need. */
static int republishes(const jsStreamInfo *si)
{
	const jsRePublish *rp = si->Config ? si->Config->RePublish : NULL;
	return rp && rp->Source && rp->Destination && !rp->HeadersOnly &&
	       !strcmp(rp->Source, BUS_NATS_LOG_PREFIX ">") &&
	       !strcmp(rp->Destination, BUS_NATS_LIVE_PREFIX ">");
}

/* The stream TCPCHAT: made, or there already with our subjects (and
 * then made to republish, if it did not). */
static int stream_setup(struct bus_nats *b, char *err, size_t errlen)
{
	static const char *subjects[] = {BUS_NATS_LOG_PREFIX ">"};
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	cfg.Name = BUS_NATS_STREAM;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.AllowDirect = true;
	cfg.MaxMsgsPerSubject = BUS_NATS_HIST;
	cfg.Discard = js_DiscardOld;
	jsRePublish rp;
	jsRePublish_Init(&rp);
	rp.Source = BUS_NATS_LOG_PREFIX ">";
	rp.Destination = BUS_NATS_LIVE_PREFIX ">";
	cfg.RePublish = &rp;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_AddStream(&si, b->js, &cfg, NULL, &jerr);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (s == NATS_NO_RESPONDERS || jerr == JSNotEnabledErr ||
	    jerr == JSNotEnabledForAccountErr) {
		snprintf(err, errlen, "%s", no_js);
		return TCPCHAT_EBUS;
	}
	if (jerr != JSStreamNameExistErr)
		return nats_err(err, errlen, TCPCHAT_EBUS,
		                "cannot make the stream " BUS_NATS_STREAM, s);
	/* There with another configuration: fine if it takes our subjects. */
	s = js_GetStreamInfo(&si, b->js, BUS_NATS_STREAM, NULL, &jerr);
	if (s != NATS_OK)
		return nats_err(err, errlen, TCPCHAT_EBUS,
		                "cannot read the stream " BUS_NATS_STREAM, s);
	int ok = 0;
	for (int i = 0; si->Config && i < si->Config->SubjectsLen; i++)
		if (!strcmp(si->Config->Subjects[i], subjects[0]))
			ok = 1;
	int rep = ok && republishes(si);
	jsStreamInfo_Destroy(si);
	if (!ok) {
		snprintf(err, errlen,
		         "the NATS stream " BUS_NATS_STREAM
		         " exists without the subjects " BUS_NATS_LOG_PREFIX
		         ">");
		return TCPCHAT_EBUS;
	}
	if (rep)
		return 0;
	si = NULL;
	s = js_UpdateStream(&si, b->js, &cfg, NULL, &jerr);
	if (s != NATS_OK)
		return nats_err(err, errlen, TCPCHAT_EBUS,
		                "cannot make the stream " BUS_NATS_STREAM
		                " republish to " BUS_NATS_LIVE_PREFIX ">",
		                s);
	jsStreamInfo_Destroy(si);
	return 0;
}

/* A KV bucket, looked up or made (history 1, on file). */
static int bucket(struct bus_nats *b, kvStore **kv, const char *name, char *err,
                  size_t errlen)
{
	natsStatus s = js_KeyValue(kv, b->js, name);
	if (s == NATS_OK)
		return 0;
	kvConfig cfg;
	kvConfig_Init(&cfg);
	cfg.Bucket = name;
	cfg.History = 1;
	cfg.StorageType = js_FileStorage;
	s = js_CreateKeyValue(kv, b->js, &cfg);
	if (s != NATS_OK) /* made by another server meanwhile? */
		s = js_KeyValue(kv, b->js, name);
	if (s == NATS_NO_RESPONDERS) {
		snprintf(err, errlen, "%s", no_js);
		return TCPCHAT_EBUS;
	}
	if (s != NATS_OK) {
		char what[100];
		snprintf(what, sizeof what, "cannot make the KV bucket %s",
		         name);
		return nats_err(err, errlen, TCPCHAT_EBUS, what, s);
	}
	return 0;
}

/* The cluster's epoch: ours if there is none yet, else the one there. */
static int epoch_setup(struct bus_nats *b, uint64_t epoch, char *err,
                       size_t errlen)
{
	kvStore *meta = NULL;
	int rc = bucket(b, &meta, "tcpchat_meta", err, errlen);
	if (rc)
		return rc;
	char num[24];
	snprintf(num, sizeof num, "%" PRIu64, epoch);
	uint64_t rev = 0;
	natsStatus s = NATS_OK;
	for (int tries = 0; tries < 5; tries++) {
		s = kvStore_Create(&rev, meta, "epoch", num, (int)strlen(num));
		if (s == NATS_OK) {
			b->pub.epoch = epoch;
			break;
		}
		kvEntry *e = NULL;
		s = kvStore_Get(&e, meta, "epoch");
		if (s == NATS_NOT_FOUND)
			continue;
		if (s != NATS_OK)
			break;
		char v[24];
		int n = kvEntry_ValueLen(e);
		uint64_t got = 0;
		int ok = n > 0 && n < (int)sizeof v;
		if (ok) {
			memcpy(v, kvEntry_Value(e), (size_t)n);
			v[n] = '\0';
			for (int i = 0; i < n && ok; i++) {
				ok = v[i] >= '0' && v[i] <= '9' &&
				     got <= (UINT64_MAX - 9) / 10;
				got = got * 10 + (uint64_t)(v[i] - '0');
			}
		}
		kvEntry_Destroy(e);
		if (!ok || !got) {
			kvStore_Destroy(meta);
			snprintf(err, errlen,
			         "the epoch in NATS is not a number");
			return TCPCHAT_EBUS;
		}
		b->pub.epoch = got;
		break;
	}
	kvStore_Destroy(meta);
	if (s != NATS_OK)
		return nats_err(err, errlen, TCPCHAT_EBUS,
		                "cannot read the epoch in NATS", s);
	return 0;
}

static int core_sub(struct bus_nats *b, natsSubscription **sub,
                    const char *subj, char *err, size_t errlen)
{
	natsStatus s = natsConnection_Subscribe(sub, b->nc, subj,
	                                        bus_nats__on_note, b);
	if (s != NATS_OK) {
		*sub = NULL;
		return nats_err(err, errlen, TCPCHAT_EBUS, "subscribing", s);
	}
	atomic_fetch_add(&b->live_cbs, 1);
	if (natsSubscription_SetOnCompleteCB(*sub, bus_nats__on_sub_done, b) !=
	    NATS_OK)
		atomic_fetch_sub(&b->live_cbs, 1);
	return 0;
}

int bus_nats__new(struct bus **out, struct loop *loop, const char *url,
                  const char *node, uint64_t epoch, int timeout_ms,
                  const struct bus_events *ev, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof dummy;
	}
	err[0] = '\0';
	*out = NULL;
	if (!url_ok(url)) {
		snprintf(err, errlen,
		         "not a NATS URL (nats://HOST:PORT): %.100s",
		         url ? url : "(none)");
		return TCPCHAT_EADDR;
	}
	size_t nlen = node ? strlen(node) : 0;
	if (!nlen || nlen > BUS_NODE_MAX || !ev || !loop || !epoch) {
		snprintf(err, errlen, "bad arguments");
		return TCPCHAT_EINVAL;
	}
	struct bus_nats *b = calloc(1, sizeof *b);
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return TCPCHAT_ENOMEM;
	}
	b->pub.ops = &bus_nats__ops;
	b->pub.loop = loop;
	b->pub.ev = *ev;
	b->pub.epoch = epoch;
	memcpy(b->pub.node, node, nlen);
	b->pub.node_len = nlen;
	b->wake_rfd = b->wake_wfd = -1;
	b->wake_w.fd = -1;
	util__random_key(b->hkey);
	pthread_mutex_init(&b->emu, NULL);
	pthread_mutex_init(&b->wmu, NULL);
	pthread_cond_init(&b->wcv, NULL);
	pthread_mutex_init(&b->cmu, NULL);
	pthread_cond_init(&b->ccv, NULL);
	size_t pl = sizeof BUS_NATS_NODE_PREFIX - 1;
	memcpy(b->node_subj, BUS_NATS_NODE_PREFIX, pl);
	bus_nats__hex(b->node_subj + pl, node, nlen);

	int rc = wake_open(b);
	if (rc)
		snprintf(err, errlen, "wakeup: %s", strerror(errno));
	if (!rc)
		rc = connect_to(b, url, timeout_ms, err, errlen);
	if (!rc)
		rc = stream_setup(b, err, errlen);
	if (!rc)
		rc = bucket(b, &b->names, "tcpchat_names", err, errlen);
	if (!rc)
		rc = epoch_setup(b, epoch, err, errlen);
	if (!rc)
		rc = core_sub(b, &b->all_sub, BUS_NATS_ALL, err, errlen);
	if (!rc)
		rc = core_sub(b, &b->node_sub, b->node_subj, err, errlen);
	/* The server knows of the subscriptions when new() returns. */
	if (!rc) {
		natsStatus s = natsConnection_FlushTimeout(
		        b->nc, timeout_ms > 0 ? timeout_ms : 2000);
		if (s != NATS_OK)
			rc = nats_err(err, errlen, TCPCHAT_EBUS, "subscribing",
			              s);
	}
	if (!rc && (rc = loop__watch(loop, &b->wake_w, b->wake_rfd, LOOP_READ,
	                             bus_nats__on_wake, b)))
		snprintf(err, errlen, "watching the wakeup failed");
	if (!rc) {
		if (pthread_create(&b->worker, NULL, bus_nats__worker, b)) {
			snprintf(err, errlen, "cannot start a thread");
			rc = TCPCHAT_ESYS;
		} else {
			b->worker_started = 1;
		}
	}
	if (rc) {
		bus_nats__teardown(b);
		free(b);
		return rc;
	}
	b->pub.up = 1;
	*out = &b->pub;
	return 0;
}

/* ---- records, for the worker and nats.c's threads -------------------- */

void bus_nats__fail(struct bn_req *r, const char *what, natsStatus s)
{
	r->err = TCPCHAT_EBUS;
	snprintf(r->why, sizeof r->why, "%s: %s", what, natsStatus_GetText(s));
}

/* A decimal number of 1-20 digits that fits 64 bits, nothing else. */
int bus_nats__parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	if (!s || !*s)
		return -1;
	for (; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 20)
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int bus_nats__batch(natsMsg *msg, struct bn_batch *bt)
{
	const char *v = NULL;
	uint64_t n = 1;
	memset(bt, 0, sizeof *bt);
	/* Numbers from 1 to 2^62: room for +n without overflow anywhere. */
	if (natsMsgHeader_Get(msg, "Tcpchat-Seq", &v) != NATS_OK ||
	    bus_nats__parse_u64(v, &bt->first) || bt->first == 0 ||
	    bt->first > (UINT64_C(1) << 62))
		return 0;
	if (natsMsgHeader_Get(msg, "Tcpchat-Prev", &v) != NATS_OK ||
	    bus_nats__parse_u64(v, &bt->prev))
		return 0;
	int dl = natsMsg_GetDataLength(msg);
	if (dl <= 0)
		return 0;
	bt->p = (const uint8_t *)natsMsg_GetData(msg);
	bt->len = (size_t)dl;
	v = NULL;
	natsStatus s = natsMsgHeader_Get(msg, "Tcpchat-Count", &v);
	if (s == NATS_NOT_FOUND) {
		/* The first format: one record, the whole payload. */
		bt->n = 1;
		return bt->len <= BUS_REC_MAX;
	}
	if (s != NATS_OK || bus_nats__parse_u64(v, &n) || n == 0 ||
	    n > BUS_NATS_BATCH_MAX || bt->first + n - 1 > (UINT64_C(1) << 62))
		return 0;
	/* Every length must be in the payload and they must fill it. */
	size_t off = 0;
	for (uint64_t i = 0; i < n; i++) {
		if (bt->len - off < 4)
			return 0;
		uint32_t l = be32(bt->p + off);
		off += 4;
		if (l == 0 || l > BUS_REC_MAX || l > bt->len - off)
			return 0;
		off += l;
	}
	if (off != bt->len)
		return 0;
	bt->n = (uint32_t)n;
	bt->framed = 1;
	return 1;
}

int bus_nats__batch_next(struct bn_batch *bt, const uint8_t **rec, size_t *len)
{
	if (bt->off >= bt->len)
		return 0;
	if (!bt->framed) {
		*rec = bt->p;
		*len = bt->len;
		bt->off = bt->len;
		return 1;
	}
	/* Checked by bus_nats__batch(): each length fits. */
	*len = be32(bt->p + bt->off);
	*rec = bt->p + bt->off + 4;
	bt->off += 4 + *len;
	return 1;
}

/* Counts a hostile message (a BE_GARBAGE event for the loop). */
static void room_garbage(struct bus_nats *b, const char *what, const char *subj)
{
	char text[200];
	int n = snprintf(text, sizeof text, "%s on %.120s", what,
	                 subj ? subj : "?");
	struct bn_ev *ev = bus_nats__ev(BE_GARBAGE, (size_t)n, 0);
	if (!ev)
		return;
	memcpy(ev->data, text, (size_t)n);
	bus_nats__push(b, ev);
}

static int unhex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void bus_nats__on_room_msg(natsConnection *nc, natsSubscription *sub,
                           natsMsg *msg, void *closure)
{
	struct bus_nats *b = closure;
	TC_UNUSED(nc);
	TC_UNUSED(sub);
	const char *subj = natsMsg_GetSubject(msg);
	size_t pl = sizeof BUS_NATS_LIVE_PREFIX - 1,
	       sl = subj ? strlen(subj) : 0, rlen = 0;
	char room[BUS_NATS_ROOM_MAX];
	struct bn_batch bt;
	if (sl <= pl || (sl - pl) % 2 || (sl - pl) / 2 > BUS_NATS_ROOM_MAX ||
	    memcmp(subj, BUS_NATS_LIVE_PREFIX, pl)) {
		room_garbage(b, "a message on an unexpected subject", subj);
		goto out;
	}
	for (rlen = 0; rlen < (sl - pl) / 2; rlen++) {
		int hi = unhex(subj[pl + 2 * rlen]),
		    lo = unhex(subj[pl + 2 * rlen + 1]);
		if (hi < 0 || lo < 0) {
			room_garbage(b, "a message on an unexpected subject",
			             subj);
			goto out;
		}
		room[rlen] = (char)(hi << 4 | lo);
	}
	if (!bus_nats__batch(msg, &bt)) {
		room_garbage(b, "a message without valid Tcpchat headers",
		             subj);
		goto out;
	}
	/* One room() event per record, seqs first..first+n-1; the first
	 * counts the message. */
	const uint8_t *rec;
	size_t len;
	for (uint64_t seq = bt.first; bus_nats__batch_next(&bt, &rec, &len);
	     seq++) {
		struct bn_ev *ev = bus_nats__ev(BE_ROOM, len, rlen);
		if (!ev)
			break;
		memcpy(ev->room, room, rlen);
		memcpy(ev->data, rec, len);
		ev->seq = seq;
		if (seq == bt.first) {
			ev->nmsg = 1;
			ev->mbytes = bt.len;
		}
		bus_nats__push(b, ev);
	}
out:
	natsMsg_Destroy(msg);
}
