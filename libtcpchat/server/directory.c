/* libtcpchat - the server's directory: users by name, in a hash keyed with
 * a per-server random key (names are chosen by clients, so an unkeyed
 * hash would let them fill one bucket), and connections by id. */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

void srv__dir_init(tcpchat_server *srv)
{
	util__random_key(srv->hash_key);
}

void srv__dir_fini(tcpchat_server *srv)
{
	free(srv->buckets);
	srv->buckets = NULL;
	srv->nbuckets = srv->nnamed = 0;
	free(srv->ids);
	srv->ids = NULL;
	srv->nids_cap = 0;
}

static size_t name_slot(const tcpchat_server *srv, const char *p, size_t n,
                        size_t nbuckets)
{
	return (size_t)util__siphash(srv->hash_key, p, n) & (nbuckets - 1);
}

struct sconn *srv__name_find(tcpchat_server *srv, const char *p, size_t n)
{
	if (!srv->nbuckets)
		return NULL;
	struct sconn *sc = srv->buckets[name_slot(srv, p, n, srv->nbuckets)];
	for (; sc; sc = sc->hnext)
		if (sc->name_len == n && memcmp(sc->name, p, n) == 0)
			return sc;
	return NULL;
}

int srv__name_insert(tcpchat_server *srv, struct sconn *sc)
{
	if (srv->nnamed + 1 > srv->nbuckets) {
		size_t n = srv->nbuckets ? srv->nbuckets * 2 : 64;
		struct sconn **b = calloc(n, sizeof *b);
		if (!b)
			return TCPCHAT_ENOMEM;
		for (size_t i = 0; i < srv->nbuckets; i++) {
			struct sconn *x = srv->buckets[i];
			while (x) {
				struct sconn *next = x->hnext;
				size_t k =
				        name_slot(srv, x->name, x->name_len, n);
				x->hnext = b[k];
				b[k] = x;
				x = next;
			}
		}
		free(srv->buckets);
		srv->buckets = b;
		srv->nbuckets = n;
	}
	size_t k = name_slot(srv, sc->name, sc->name_len, srv->nbuckets);
	sc->hnext = srv->buckets[k];
	srv->buckets[k] = sc;
	sc->named = 1;
	srv->nnamed++;
	return 0;
}

void srv__name_remove(tcpchat_server *srv, struct sconn *sc)
{
	if (!sc->named)
		return;
	struct sconn **pp = &srv->buckets[name_slot(srv, sc->name, sc->name_len,
	                                            srv->nbuckets)];
	while (*pp && *pp != sc)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = sc->hnext;
	sc->hnext = NULL;
	sc->named = 0;
	srv->nnamed--;
}

/* Ids are sequential, so the low bits spread them evenly. */
static size_t id_slot(uint64_t id, size_t cap)
{
	return (size_t)(id * 0x9E3779B97F4A7C15ULL >> 20) & (cap - 1);
}

struct sconn *srv__id_find(tcpchat_server *srv, uint64_t id)
{
	if (!srv->nids_cap)
		return NULL;
	struct sconn *sc = srv->ids[id_slot(id, srv->nids_cap)];
	while (sc && sc->id != id)
		sc = sc->inext;
	return sc;
}

int srv__id_insert(tcpchat_server *srv, struct sconn *sc)
{
	if (srv->nconns + 1 > srv->nids_cap) {
		size_t n = srv->nids_cap ? srv->nids_cap * 2 : 64;
		struct sconn **b = calloc(n, sizeof *b);
		if (!b)
			return TCPCHAT_ENOMEM;
		for (size_t i = 0; i < srv->nids_cap; i++) {
			struct sconn *x = srv->ids[i];
			while (x) {
				struct sconn *next = x->inext;
				size_t k = id_slot(x->id, n);
				x->inext = b[k];
				b[k] = x;
				x = next;
			}
		}
		free(srv->ids);
		srv->ids = b;
		srv->nids_cap = n;
	}
	size_t k = id_slot(sc->id, srv->nids_cap);
	sc->inext = srv->ids[k];
	srv->ids[k] = sc;
	return 0;
}

void srv__id_remove(tcpchat_server *srv, struct sconn *sc)
{
	if (!srv->nids_cap)
		return;
	struct sconn **pp = &srv->ids[id_slot(sc->id, srv->nids_cap)];
	while (*pp && *pp != sc)
		pp = &(*pp)->inext;
	if (*pp)
		*pp = sc->inext;
	sc->inext = NULL;
}
