/* libtcpchat - rooms: by name in a hash with a per-server key (names are
 * chosen by clients), in creation order for the list; who is in which
 * room (a member node links a user and a room both ways); topics; the
 * room limits; and the loop-thread queries of the public API. */
#include <stdlib.h>
#include <string.h>

#include "server_int.h"

static size_t room_slot(const tcpchat_server *srv, const char *p, size_t n,
                        size_t nbuckets)
{
	return (size_t)util__siphash(srv->hash_key, p, n) & (nbuckets - 1);
}

static void room_free(tcpchat_server *srv, struct room *r)
{
	struct room **pp = &srv->rbuckets[room_slot(srv, r->name, r->name_len,
	                                            srv->nrbuckets)];
	while (*pp && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = r->hnext;
	dl_del(&r->link);
	srv->nrooms--;
	srv->st.rooms = srv->nrooms;
	srv__hist_clear(srv, r);
	srv__bans_free(r);
	free(r->topic);
	free(r);
}

int srv__rooms_init(tcpchat_server *srv)
{
	static const char lobby[] = "#lobby";
	dl_init(&srv->rooms);
	int rc = srv__room_get(srv, lobby, sizeof lobby - 1, &srv->lobby);
	if (rc == 0)
		srv->lobby->permanent = 1;
	return rc;
}

void srv__rooms_fini(tcpchat_server *srv)
{
	while (!dl_empty(&srv->rooms))
		room_free(srv, CONTAINER(srv->rooms.next, struct room, link));
	free(srv->rbuckets);
	srv->rbuckets = NULL;
	srv->nrbuckets = 0;
	srv->lobby = NULL;
}

struct room *srv__room_find(tcpchat_server *srv, const char *p, size_t n)
{
	if (!srv->nrbuckets)
		return NULL;
	struct room *r = srv->rbuckets[room_slot(srv, p, n, srv->nrbuckets)];
	for (; r; r = r->hnext)
		if (r->name_len == n && memcmp(r->name, p, n) == 0)
			return r;
	return NULL;
}

static int rehash(tcpchat_server *srv)
{
	size_t n = srv->nrbuckets ? srv->nrbuckets * 2 : 16;
	struct room **b = calloc(n, sizeof *b);
	if (!b)
		return TCPCHAT_ENOMEM;
	for (size_t i = 0; i < srv->nrbuckets; i++) {
		struct room *x = srv->rbuckets[i];
		while (x) {
			struct room *next = x->hnext;
			size_t k = room_slot(srv, x->name, x->name_len, n);
			x->hnext = b[k];
			b[k] = x;
			x = next;
		}
	}
	free(srv->rbuckets);
	srv->rbuckets = b;
	srv->nrbuckets = n;
	return 0;
}

/* Finds the room p[0..n) (a checked name), creating it if needed.
 * Returns 0 or TCPCHAT_ENOMEM. */
int srv__room_get(tcpchat_server *srv, const char *p, size_t n,
                  struct room **out)
{
	*out = srv__room_find(srv, p, n);
	if (*out)
		return 0;
	if (srv->nrooms + 1 > srv->nrbuckets && rehash(srv))
		return TCPCHAT_ENOMEM;
	struct room *r = calloc(1, sizeof *r);
	if (!r)
		return TCPCHAT_ENOMEM;
	memcpy(r->name, p, n);
	r->name_len = (uint8_t)n;
	dl_init(&r->members);
	dl_init(&r->rmembers);
	size_t k = room_slot(srv, p, n, srv->nrbuckets);
	r->hnext = srv->rbuckets[k];
	srv->rbuckets[k] = r;
	dl_push(&srv->rooms, &r->link);
	srv->nrooms++;
	srv->st.rooms = srv->nrooms;
	*out = r;
	return 0;
}

struct member *srv__member_of(const struct sconn *sc, const struct room *r)
{
	if (sc->home.room == r)
		return (struct member *)&sc->home; /* the default room: O(1) */
	struct member *mb = sc->rooms;
	while (mb && mb->room != r)
		mb = mb->unext;
	return mb;
}

int srv__member_add(tcpchat_server *srv, struct sconn *sc, struct room *r)
{
	struct member *mb = r == srv->lobby && !sc->home.room
	                            ? &sc->home
	                            : malloc(sizeof *mb);
	if (!mb)
		return TCPCHAT_ENOMEM;
	mb->room = r;
	mb->sc = sc;
	mb->unext = sc->rooms;
	sc->rooms = mb;
	sc->nrooms++;
	dl_push(&r->members, &mb->link);
	r->nmembers++;
	return 0;
}

/* Takes the user out of the room; an empty room goes, unless it is the
 * default room.  The user's current room falls back to the default room
 * when they are still in it. */
void srv__member_remove(tcpchat_server *srv, struct member *mb)
{
	struct sconn *sc = mb->sc;
	struct room *r = mb->room;
	struct member **pp = &sc->rooms;
	while (*pp != mb)
		pp = &(*pp)->unext;
	*pp = mb->unext;
	sc->nrooms--;
	dl_del(&mb->link);
	r->nmembers--;
	if (!r->nmembers && srv->cl)
		srv__cluster_room_empty(srv, r);
	if (mb == &sc->home)
		memset(&sc->home, 0, sizeof sc->home);
	else
		free(mb);
	if (sc->cur == r)
		sc->cur = srv->lobby && srv__member_of(sc, srv->lobby)
		                  ? srv->lobby
		                  : NULL;
	srv__room_gc(srv, r);
}

/* An empty room goes, unless it is the default room or has had texts:
 * its numbers must go on where they stopped (never given twice in an
 * epoch), and its history stays for those who come back.  A room with
 * bans stays too, for its bans to hold, and in a cluster a room with
 * members on other servers. */
void srv__room_gc(tcpchat_server *srv, struct room *r)
{
	if (r->nmembers == 0 && !r->permanent && r->last_seq == 0 &&
	    r->pending == 0 && r->nbans == 0 && r->nrmembers == 0 &&
	    r->cl_state == 0 && !r->cl_waiting)
		room_free(srv, r);
}

void srv__members_clear(tcpchat_server *srv, struct sconn *sc)
{
	while (sc->rooms)
		srv__member_remove(srv, sc->rooms);
	sc->cur = NULL;
}

/* Sets the topic from the stamped TOPIC t: its body (checked text; empty
 * clears it), sender and time.  Returns 0 or TCPCHAT_ENOMEM (the old
 * topic stays). */
int srv__room_set_topic(struct room *r, const tcpchat_msg *t)
{
	char *p = NULL;
	if (t->body.len) {
		p = malloc(t->body.len);
		if (!p)
			return TCPCHAT_ENOMEM;
		memcpy(p, t->body.ptr, t->body.len);
	}
	free(r->topic);
	r->topic = p;
	r->topic_len = (uint16_t)t->body.len;
	r->topic_ts = t->timestamp;
	r->topic_by_len = (uint8_t)t->sender.len;
	if (t->sender.len) /* empty: set by the server */
		memcpy(r->topic_by, t->sender.ptr, t->sender.len);
	return 0;
}

/* Whether sc may enter one more room, the room p[0..n) (which may not
 * exist yet).  Returns 0, or TCPCHAT_ELIMIT with *why set. */
int srv__room_limit(tcpchat_server *srv, const struct sconn *sc, const char *p,
                    size_t n, const char **why)
{
	if (sc->nrooms >= (uint64_t)srv->user_rooms) {
		*why = "you are in too many rooms: part one first";
		return TCPCHAT_ELIMIT;
	}
	if (!srv__room_find(srv, p, n) &&
	    srv->nrooms >= (uint64_t)srv->max_rooms) {
		*why = "the server has too many rooms";
		return TCPCHAT_ELIMIT;
	}
	return 0;
}

/* Marks m as a message of room r. */
void srv__room_stamp(const tcpchat_server *srv, const struct room *r,
                     tcpchat_msg *m)
{
	m->room.ptr = r->name;
	m->room.len = r->name_len;
	if (r == srv->lobby)
		m->flags |= TCPCHAT_MSGF_DEFAULT_ROOM;
}

TCPCHAT_API int tcpchat_server_set_default_room(tcpchat_server *srv,
                                                const char *room)
{
	if (!srv)
		return TCPCHAT_EINVAL;
	if (room && tcpchat_room_check(room, strlen(room)) != 0)
		return TCPCHAT_EBADROOM;
	if (srv->running || srv->nusers || srv->nconns)
		return TCPCHAT_ESTATE;
	struct room *old = srv->lobby, *r = NULL;
	if (room && srv__room_get(srv, room, strlen(room), &r) != 0)
		return TCPCHAT_ENOMEM;
	if (old && old != r) {
		old->permanent = 0;
		if (old->nmembers == 0)
			room_free(srv, old);
	}
	srv->lobby = r;
	if (r)
		r->permanent = 1;
	return 0;
}

TCPCHAT_API long tcpchat_server_rooms(tcpchat_server *srv,
                                      int (*fn)(const tcpchat_room_info *info,
                                                void *ud),
                                      void *ud)
{
	if (!srv || !fn)
		return TCPCHAT_EINVAL;
	struct dlist *it;
	for (it = srv->rooms.next; it != &srv->rooms; it = it->next) {
		const struct room *r = CONTAINER(it, struct room, link);
		tcpchat_room_info info = {{r->name, r->name_len},
		                          {r->topic, r->topic_len},
		                          r->nmembers,
		                          r == srv->lobby};
		if (fn(&info, ud))
			break;
	}
	return (long)srv->nrooms;
}

TCPCHAT_API long tcpchat_server_room_members(
        tcpchat_server *srv, const char *room,
        int (*fn)(tcpchat_str name, uint64_t conn_id, void *ud), void *ud)
{
	if (!srv || !room || !fn)
		return TCPCHAT_EINVAL;
	struct room *r = srv__room_find(srv, room, strlen(room));
	if (!r)
		return TCPCHAT_ENOTFOUND;
	struct dlist *it;
	for (it = r->members.next; it != &r->members; it = it->next) {
		const struct sconn *sc = CONTAINER(it, struct member, link)->sc;
		tcpchat_str name = {sc->name, sc->name_len};
		if (fn(name, sc->id, ud))
			break;
	}
	return (long)r->nmembers;
}
