/* libtcpchat - per-address limits, checked at accept: connections open,
 * connections still in the handshake, and new connections per second (a
 * token bucket) from one address.  An IPv4 address counts alone (an
 * IPv4-mapped IPv6 one as its IPv4 address); an IPv6 address counts by
 * its /64 prefix, the block one host or site is usually given.
 *
 * The table is a seeded hash (peers choose their addresses, so an unkeyed
 * hash would let them fill one bucket).  An entry lives while its address
 * has a connection counted, or its bucket is not full again: an entry
 * freed earlier would hand its address a fresh burst.  Idle entries wait
 * on a list in the order they became idle, and a few from its head are
 * freed at each accept once their bucket is full; as every bucket is full
 * at most ADDR_BURST / ADDR_RATE seconds after it went idle, none waits
 * much longer than that behind the head.
 *
 * The table holds PEERS_MAX entries at most.  When a new address finds it
 * full, the oldest idle entry goes early (its bucket is the nearest to
 * full: the worst it gains is part of one burst); when none is idle
 * (PEERS_MAX addresses all have connections open, which MAX_CLIENTS
 * normally rules out), the connection is accepted without being counted
 * against its address - the server-wide MAX_CLIENTS still bounds it - and
 * a WARN line says so, at most once a second.  Refusing it instead would
 * let one scan of many addresses lock out every new one. */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define PEERS_MAX 65536
#define PEERS_SWEEP 4 /* idle entries looked at per accept */
#define LOG_EVERY_MS 1000

struct peer {
	struct peer *hnext;
	struct dlist idle; /* srv->peers_idle while it has no connection */
	int64_t refill_ms; /* when tokens was last brought up to date */
	int64_t log_ms;    /* its last refusal line */
	double tokens;     /* new connections it may open now */
	uint32_t conns, hs;
	uint32_t unlogged; /* refusals since its last line */
	uint8_t key[9];    /* family, then the address or /64 prefix */
};

/* The key of an address: 4 bytes for IPv4, 8 (the /64) for IPv6. */
static void peer_key(const union net_addr *a, uint8_t key[9])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
	                                   0, 0, 0, 0, 0xff, 0xff};
	memset(key, 0, 9);
	if (a->sa.sa_family == AF_INET6) {
		const uint8_t *b = a->in6.sin6_addr.s6_addr;
		if (memcmp(b, mapped, sizeof mapped) != 0) {
			key[0] = 6;
			memcpy(key + 1, b, 8);
			return;
		}
		key[0] = 4;
		memcpy(key + 1, b + 12, 4);
		return;
	}
	key[0] = 4;
	memcpy(key + 1, &a->in4.sin_addr, 4);
}

static size_t peer_slot(const tcpchat_server *srv, const uint8_t key[9])
{
	return (size_t)util__siphash(srv->hash_key, key, 9) &
	       (srv->npbuckets - 1);
}

int srv__peers_on(const tcpchat_server *srv)
{
	return srv->addr_conns > 0 || srv->addr_rate > 0 ||
	       srv->addr_handshakes > 0;
}

void srv__peers_init(tcpchat_server *srv)
{
	srv->addr_conns = 64;
	srv->addr_rate = 20;
	srv->addr_burst = 40;
	srv->addr_handshakes = 8;
	dl_init(&srv->peers_idle);
}

void srv__peers_fini(tcpchat_server *srv)
{
	for (size_t i = 0; i < srv->npbuckets; i++) {
		struct peer *p = srv->pbuckets[i];
		while (p) {
			struct peer *next = p->hnext;
			free(p);
			p = next;
		}
	}
	free(srv->pbuckets);
	srv->pbuckets = NULL;
	srv->npbuckets = srv->npeers = 0;
	dl_init(&srv->peers_idle);
}

static struct peer *peer_find(tcpchat_server *srv, const uint8_t key[9])
{
	if (!srv->npbuckets)
		return NULL;
	struct peer *p = srv->pbuckets[peer_slot(srv, key)];
	while (p && memcmp(p->key, key, 9) != 0)
		p = p->hnext;
	return p;
}

static void peer_free(tcpchat_server *srv, struct peer *p)
{
	struct peer **pp = &srv->pbuckets[peer_slot(srv, p->key)];
	while (*pp && *pp != p)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = p->hnext;
	dl_del(&p->idle);
	srv->npeers--;
	free(p);
}

static int peers_grow(tcpchat_server *srv)
{
	size_t n = srv->npbuckets ? srv->npbuckets * 2 : 64;
	struct peer **b = calloc(n, sizeof *b);
	if (!b)
		return TCPCHAT_ENOMEM;
	size_t old = srv->npbuckets;
	struct peer **ob = srv->pbuckets;
	srv->pbuckets = b;
	srv->npbuckets = n;
	for (size_t i = 0; i < old; i++) {
		struct peer *x = ob[i];
		while (x) {
			struct peer *next = x->hnext;
			size_t k = peer_slot(srv, x->key);
			x->hnext = b[k];
			b[k] = x;
			x = next;
		}
	}
	free(ob);
	return 0;
}

static void refill(const tcpchat_server *srv, struct peer *p);

/* 1 when p's bucket is full (brought up to date first). */
static int bucket_full(const tcpchat_server *srv, struct peer *p)
{
	refill(srv, p);
	return srv->addr_rate <= 0 || p->tokens >= (double)srv->addr_burst;
}

/* Frees idle entries whose bucket is full by now, oldest first, at most
 * max of them. */
static void peers_sweep(tcpchat_server *srv, int max)
{
	while (max-- > 0 && !dl_empty(&srv->peers_idle)) {
		struct peer *p =
		        CONTAINER(srv->peers_idle.next, struct peer, idle);
		if (!bucket_full(srv, p))
			return;
		peer_free(srv, p);
	}
}

static struct peer *peer_new(tcpchat_server *srv, const uint8_t key[9])
{
	if (srv->npeers >= PEERS_MAX) {
		if (dl_empty(&srv->peers_idle))
			return NULL;
		peer_free(srv,
		          CONTAINER(srv->peers_idle.next, struct peer, idle));
	}
	if (srv->npeers + 1 > srv->npbuckets && peers_grow(srv) != 0)
		return NULL;
	struct peer *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	memcpy(p->key, key, 9);
	p->tokens = (double)srv->addr_burst;
	p->refill_ms = srv->loop.now;
	p->log_ms = INT64_MIN / 2;
	dl_init(&p->idle);
	size_t k = peer_slot(srv, key);
	p->hnext = srv->pbuckets[k];
	srv->pbuckets[k] = p;
	srv->npeers++;
	return p;
}

static void refill(const tcpchat_server *srv, struct peer *p)
{
	int64_t now = srv->loop.now;
	if (now > p->refill_ms && srv->addr_rate > 0) {
		p->tokens += (double)(now - p->refill_ms) *
		             (double)srv->addr_rate / 1000.0;
		if (p->tokens > (double)srv->addr_burst)
			p->tokens = (double)srv->addr_burst;
	}
	p->refill_ms = now;
}

/* One INFO line per address and second, however many are refused. */
static void log_refusal(tcpchat_server *srv, struct peer *p,
                        const union net_addr *a, const char *why)
{
	p->unlogged++;
	if (srv->loop.now - p->log_ms < LOG_EVERY_MS ||
	    !srv__logs(srv, TCPCHAT_LOG_INFO))
		return;
	char from[64];
	srv__log(srv, TCPCHAT_LOG_INFO,
	         "refusing connections from %s%s: %s (%lu refused since the "
	         "last line)",
	         net__addr_str(a, from, sizeof from),
	         p->key[0] == 6 ? " (its /64)" : "", why,
	         (unsigned long)p->unlogged);
	p->log_ms = srv->loop.now;
	p->unlogged = 0;
}

const char *srv__peer_admit(tcpchat_server *srv, const union net_addr *a,
                            int *counted)
{
	*counted = 0;
	if (!srv__peers_on(srv))
		return NULL;
	peers_sweep(srv, PEERS_SWEEP);
	uint8_t key[9];
	peer_key(a, key);
	struct peer *p = peer_find(srv, key);
	if (!p && !(p = peer_new(srv, key))) {
		if (srv->loop.now - srv->peers_warn_ms >= LOG_EVERY_MS) {
			srv->peers_warn_ms = srv->loop.now;
			srv__log(srv, TCPCHAT_LOG_WARN,
			         "too many addresses to track (%d): a "
			         "connection is not limited by its address",
			         PEERS_MAX);
		}
		return NULL;
	}
	refill(srv, p);
	const char *why = NULL;
	if (srv->addr_conns > 0 && p->conns >= (uint64_t)srv->addr_conns)
		why = "too many connections from your address";
	else if (srv->addr_handshakes > 0 &&
	         p->hs >= (uint64_t)srv->addr_handshakes)
		why = "too many handshakes from your address";
	else if (srv->addr_rate > 0 && p->tokens < 1.0)
		why = "connecting too often from your address";
	if (why) {
		srv->st.refused_addr++;
		log_refusal(srv, p, a, why);
		if (!p->conns && dl_empty(&p->idle))
			dl_push(&srv->peers_idle, &p->idle);
		return why;
	}
	if (srv->addr_rate > 0)
		p->tokens -= 1.0;
	p->conns++;
	p->hs++;
	dl_del(&p->idle);
	*counted = 1;
	return NULL;
}

static struct peer *counted_peer(tcpchat_server *srv, const union net_addr *a)
{
	uint8_t key[9];
	peer_key(a, key);
	return peer_find(srv, key);
}

void srv__peer_handshake_done(tcpchat_server *srv, const union net_addr *a)
{
	struct peer *p = counted_peer(srv, a);
	if (p && p->hs)
		p->hs--;
}

void srv__peer_gone(tcpchat_server *srv, const union net_addr *a, int in_hs)
{
	struct peer *p = counted_peer(srv, a);
	if (!p)
		return;
	if (in_hs && p->hs)
		p->hs--;
	if (p->conns)
		p->conns--;
	if (p->conns)
		return;
	if (bucket_full(srv, p)) {
		peer_free(srv, p);
		return;
	}
	dl_del(&p->idle);
	dl_push(&srv->peers_idle, &p->idle);
}
