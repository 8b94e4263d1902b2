/* libtcpchat - acknowledgments: a TEXT that carries the client's own
 * reference is answered with an ACK carrying it and what the text was
 * given (room, seq, epoch or target, id, time).  The ACKs of the last
 * ACK_WINDOW ms are remembered by user name and reference (at most
 * ACK_MAX of them, in a hash with the server's key: references are
 * chosen by clients), so that a text sent again - a client retrying after
 * a reconnect - is answered with its first ACK and not posted twice.
 *
 * With a durable store, a room text's ACK waits for its commit (the
 * record is "pending"); a resend meanwhile is answered when the commit
 * is done, to whichever connection has that name then. */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

#define REF_MAX 64

struct ack_rec {
	struct ack_rec *hnext;
	struct dlist age; /* srv->acks_age, oldest first */
	int64_t at_ms;    /* accepted at (wall clock) */
	uint64_t id, seq, epoch;
	int64_t ts;
	uint8_t pending;    /* waits for its commit */
	uint8_t is_private; /* dest is a target, not a room */
	uint8_t name_len, ref_len, dest_len;
	char data[]; /* name, ref, room or target */
};

static uint64_t rec_hash(const tcpchat_server *srv, const char *name,
                         size_t nlen, const tcpchat_str *ref)
{
	char key[TCPCHAT_NAME_MAX + 1 + REF_MAX];
	memcpy(key, name, nlen);
	key[nlen] = '\0'; /* names hold no NUL */
	memcpy(key + nlen + 1, ref->ptr, ref->len);
	return util__siphash(srv->hash_key, key, nlen + 1 + ref->len);
}

int srv__ref_ok(const tcpchat_str *ref)
{
	return ref->len >= 1 && ref->len <= REF_MAX &&
	       util__text_ok(ref->ptr, ref->len);
}

static void rec_unlink(tcpchat_server *srv, struct ack_rec *a)
{
	tcpchat_str ref = {a->data + a->name_len, a->ref_len};
	size_t k = rec_hash(srv, a->data, a->name_len, &ref) &
	           (srv->nabuckets - 1);
	struct ack_rec **pp = &srv->abuckets[k];
	while (*pp && *pp != a)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = a->hnext;
	dl_del(&a->age);
	srv->nacks--;
	free(a);
}

struct ack_rec *srv__ack_find(tcpchat_server *srv, const struct sconn *sc,
                              const tcpchat_str *ref)
{
	if (!srv->nabuckets)
		return NULL;
	size_t k = rec_hash(srv, sc->name, sc->name_len, ref) &
	           (srv->nabuckets - 1);
	for (struct ack_rec *a = srv->abuckets[k]; a; a = a->hnext)
		if (a->name_len == sc->name_len && a->ref_len == ref->len &&
		    memcmp(a->data, sc->name, sc->name_len) == 0 &&
		    memcmp(a->data + a->name_len, ref->ptr, ref->len) == 0)
			return a;
	return NULL;
}

/* Forgets the ACKs older than the window, and the oldest beyond ACK_MAX
 * (a pending one stays: its commit is on its way). */
void srv__acks_expire(tcpchat_server *srv)
{
	while (!dl_empty(&srv->acks_age)) {
		struct ack_rec *a =
		        CONTAINER(srv->acks_age.next, struct ack_rec, age);
		if (a->pending || (a->at_ms + srv->ack_window > srv->wall_ms &&
		                   srv->nacks <= (uint64_t)srv->ack_max))
			break;
		rec_unlink(srv, a);
	}
}

static int rehash(tcpchat_server *srv)
{
	size_t n = srv->nabuckets ? srv->nabuckets * 2 : 64;
	struct ack_rec **b = calloc(n, sizeof *b);
	if (!b)
		return TCPCHAT_ENOMEM;
	for (size_t i = 0; i < srv->nabuckets; i++) {
		struct ack_rec *a = srv->abuckets[i];
		while (a) {
			struct ack_rec *next = a->hnext;
			tcpchat_str ref = {a->data + a->name_len, a->ref_len};
			size_t k = rec_hash(srv, a->data, a->name_len, &ref) &
			           (n - 1);
			a->hnext = b[k];
			b[k] = a;
			a = next;
		}
	}
	free(srv->abuckets);
	srv->abuckets = b;
	srv->nabuckets = n;
	return 0;
}

/* Remembers the ACK of m (a stamped TEXT with a ref) from the user
 * name[0..nlen); pending: its seq comes with the commit.  Returns the
 * record, or NULL when there is no memory for it (the text then goes
 * without de-duplication). */
struct ack_rec *srv__ack_remember(tcpchat_server *srv, const char *name,
                                  size_t nlen, const tcpchat_msg *m,
                                  int pending)
{
	if (srv->ack_max == 0 || srv->ack_window == 0 || !srv__ref_ok(&m->ref))
		return NULL;
	srv__acks_expire(srv);
	if (srv->nacks + 1 > srv->nabuckets && rehash(srv) != 0)
		return NULL;
	const tcpchat_str *dest = m->target.len ? &m->target : &m->room;
	struct ack_rec *a = malloc(sizeof *a + nlen + m->ref.len + dest->len);
	if (!a)
		return NULL;
	memset(a, 0, sizeof *a);
	a->at_ms = m->timestamp;
	a->id = m->id;
	a->seq = m->seq;
	a->epoch = m->seq ? (uint64_t)srv->epoch : 0;
	a->ts = m->timestamp;
	a->pending = (uint8_t)pending;
	a->is_private = m->target.len != 0;
	a->name_len = (uint8_t)nlen;
	a->ref_len = (uint8_t)m->ref.len;
	a->dest_len = (uint8_t)dest->len;
	memcpy(a->data, name, nlen);
	memcpy(a->data + a->name_len, m->ref.ptr, m->ref.len);
	if (dest->len)
		memcpy(a->data + a->name_len + a->ref_len, dest->ptr,
		       dest->len);
	size_t k = rec_hash(srv, name, nlen, &m->ref) & (srv->nabuckets - 1);
	a->hnext = srv->abuckets[k];
	srv->abuckets[k] = a;
	dl_push(&srv->acks_age, &a->age);
	srv->nacks++;
	return a;
}

struct ack_rec *srv__ack_new(tcpchat_server *srv, const struct sconn *sc,
                             const tcpchat_msg *m, int pending)
{
	return srv__ack_remember(srv, sc->name, sc->name_len, m, pending);
}

/* The ACK of a text, from its record or (no record) from the text. */
void srv__ack_send(tcpchat_server *srv, struct sconn *sc,
                   const struct ack_rec *a, const tcpchat_msg *m)
{
	tcpchat_msg k = {.type = TCPCHAT_MSG_ACK};
	if (a) {
		k.ref.ptr = a->data + a->name_len;
		k.ref.len = a->ref_len;
		tcpchat_str dest = {a->data + a->name_len + a->ref_len,
		                    a->dest_len};
		if (a->is_private)
			k.target = dest;
		else
			k.room = dest;
		k.id = a->id;
		k.seq = a->seq;
		k.epoch = a->epoch;
		k.timestamp = a->ts;
	} else {
		k.ref = m->ref;
		k.room = m->room;
		k.target = m->target;
		k.id = m->id;
		k.seq = m->seq;
		k.epoch = m->seq ? (uint64_t)srv->epoch : 0;
		k.timestamp = m->timestamp;
	}
	/* Only to a peer that can take one: a person on the line codec
	 * never sends a ref, but may hold the name of one who did. */
	if (sc->state != S_JOINED || sc->proto < 2)
		return;
	struct frame *f = srv__encode(srv, sc->c.codec, &k);
	if (!f)
		return;
	srv__deliver_control(srv, sc, f);
	frame__unref(f);
}

/* A resend of a known ref: its first ACK again (a pending one is
 * answered by its commit). */
void srv__ack_again(tcpchat_server *srv, struct sconn *sc,
                    const struct ack_rec *a)
{
	if (!a->pending)
		srv__ack_send(srv, sc, a, NULL);
}

/* The commit of the text m of record a is done: the ACK goes to the user
 * of that name, on whichever connection it is now. */
void srv__ack_commit(tcpchat_server *srv, struct ack_rec *a,
                     const tcpchat_msg *m)
{
	a->pending = 0;
	a->id = m->id;
	a->seq = m->seq;
	a->epoch = (uint64_t)srv->epoch;
	a->ts = m->timestamp;
	struct sconn *sc = srv__name_find(srv, a->data, a->name_len);
	if (sc)
		srv__ack_send(srv, sc, a, NULL);
}

/* The text of record a was not committed: a resend may try again. */
void srv__ack_forget(tcpchat_server *srv, struct ack_rec *a)
{
	rec_unlink(srv, a);
}

void srv__acks_fini(tcpchat_server *srv)
{
	while (!dl_empty(&srv->acks_age))
		rec_unlink(srv,
		           CONTAINER(srv->acks_age.next, struct ack_rec, age));
	free(srv->abuckets);
	srv->abuckets = NULL;
	srv->nabuckets = 0;
}
