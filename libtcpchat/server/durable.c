/* libtcpchat - the durable store, written off the loop thread.
 *
 * A room text accepted by the loop is copied into the next batch.  At the
 * end of the iteration, when no batch is at the disk, the next batch is
 * numbered (each text the room's next seq) and handed to the writer
 * thread, which appends it in one transaction (group commit: everything
 * that arrived while the previous commit ran goes in one) and posts it
 * back.  The loop then keeps each text in the room's history, fans it out
 * and sends its ACK: nobody ever sees a number that is not on disk.
 *
 * A room's last_seq moves only when a batch is committed: a JOIN or a
 * HISTORY answer meanwhile shows the number on disk, never one that may
 * yet be refused.  A batch the store refuses (a disk error) is not shown
 * to anyone: its numbers are given again to the next batch, each sender
 * gets an ERROR carrying its ref, the log says why, and the chat goes on.
 *
 * Retention (RETAIN_MSGS, RETAIN_AGE) is applied by the writer to the
 * rooms it wrote since it last did, at most once a second, once more when
 * it stops, and to every room at start. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../store.h"
#include "server_int.h"

#define TRIM_EVERY_MS 1000

/* A text (or, with no body, a room's new state) on its way to the disk. */
struct dmsg {
	struct dmsg *next;
	struct room *room;
	struct ack_rec *ack; /* its ACK record, or NULL */
	uint64_t from;       /* the sender's connection id; 0: the server */
	tcpchat_msg m;       /* strings point into data */
	int state_only;      /* a topic change: no text */
	char data[];         /* sender, body, ref */
};

struct batch {
	struct dmsg *head;
	size_t n, nrooms;
	struct store_msg *sm;
	struct store_room *rooms;
	char *topics; /* copies of the rooms' topics */
	int rc;
	char err[200];
};

struct durable {
	struct store *store;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the writer waits for work, close() for it */
	struct batch *todo, *done;      /* under mu */
	int quit;                       /* under mu */
	int inflight;                   /* loop: a batch is at the writer */
	struct dmsg *next, **next_tail; /* loop: the next batch */
	size_t next_n;
	long long retain_msgs, retain_age;
	int64_t last_trim;
	char **dirty; /* writer: rooms written since the last trim */
	size_t ndirty, dirty_cap;
	struct loop *loop;
};

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	while (b->head) {
		struct dmsg *d = b->head;
		b->head = d->next;
		free(d);
	}
	free(b->sm);
	free(b->rooms);
	free(b->topics);
	free(b);
}

/* Notes the rooms of a committed batch for the next trim.  A room that
 * cannot be noted (no memory) waits for a later batch or the next start. */
static void note_rooms(struct durable *du, const struct store_room *rooms,
                       size_t n)
{
	if (!du->retain_msgs && !du->retain_age)
		return;
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (k < du->ndirty &&
		       (strlen(du->dirty[k]) != rooms[i].room.len ||
		        memcmp(du->dirty[k], rooms[i].room.ptr,
		               rooms[i].room.len) != 0))
			k++;
		if (k < du->ndirty)
			continue;
		if (du->ndirty == du->dirty_cap) {
			size_t cap = du->dirty_cap ? du->dirty_cap * 2 : 8;
			char **d = realloc(du->dirty, cap * sizeof *d);
			if (!d)
				return;
			du->dirty = d;
			du->dirty_cap = cap;
		}
		char *name = malloc(rooms[i].room.len + 1);
		if (!name)
			return;
		memcpy(name, rooms[i].room.ptr, rooms[i].room.len);
		name[rooms[i].room.len] = '\0';
		du->dirty[du->ndirty++] = name;
	}
}

/* Trims the noted rooms, at most once a second unless forced. */
static void trim_rooms(struct durable *du, int force)
{
	if (!du->ndirty)
		return;
	int64_t now = util__wall_ms();
	if (!force && du->last_trim && now - du->last_trim < TRIM_EVERY_MS)
		return;
	du->last_trim = now;
	for (size_t i = 0; i < du->ndirty; i++) {
		tcpchat_str room = {du->dirty[i], strlen(du->dirty[i])};
		store__trim(du->store, room, (uint64_t)du->retain_msgs,
		            du->retain_age ? now - du->retain_age : 0);
		free(du->dirty[i]);
	}
	du->ndirty = 0;
}

static void *writer(void *arg)
{
	struct durable *du = arg;
	pthread_mutex_lock(&du->mu);
	for (;;) {
		while (!du->todo && !du->quit) {
			if (!du->ndirty) {
				pthread_cond_wait(&du->cv, &du->mu);
				continue;
			}
			/* rooms wait for their trim: not longer than that */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += TRIM_EVERY_MS / 1000;
			if (pthread_cond_timedwait(&du->cv, &du->mu, &ts) ==
			    ETIMEDOUT) {
				pthread_mutex_unlock(&du->mu);
				trim_rooms(du, 1);
				pthread_mutex_lock(&du->mu);
			}
		}
		struct batch *b = du->todo;
		du->todo = NULL;
		if (!b) {
			pthread_mutex_unlock(&du->mu);
			trim_rooms(du, 1);
			return NULL; /* quit, nothing left */
		}
		pthread_mutex_unlock(&du->mu);
		b->rc = store__append(du->store, b->sm, b->n, b->rooms,
		                      b->nrooms);
		if (b->rc)
			snprintf(b->err, sizeof b->err, "%s",
			         store__errmsg(du->store));
		else {
			note_rooms(du, b->rooms, b->nrooms);
			trim_rooms(du, 0);
		}
		pthread_mutex_lock(&du->mu);
		du->done = b;
		pthread_cond_broadcast(&du->cv);
		loop__wake(du->loop);
	}
}

/* Starts the writer for the store s (owned from then on).  Returns 0,
 * TCPCHAT_ENOMEM or TCPCHAT_ESYS (the store is closed then). */
int srv__durable_start(tcpchat_server *srv, struct store *s)
{
	struct durable *du = calloc(1, sizeof *du);
	if (!du) {
		store__close(s);
		return TCPCHAT_ENOMEM;
	}
	du->store = s;
	du->loop = &srv->loop;
	du->next_tail = &du->next;
	du->retain_msgs = srv->retain_msgs;
	du->retain_age = srv->retain_age;
	int rc = pthread_mutex_init(&du->mu, NULL);
	if (rc == 0 && (rc = pthread_cond_init(&du->cv, NULL)) != 0)
		pthread_mutex_destroy(&du->mu);
	if (rc == 0 && (rc = pthread_create(&du->thread, NULL, writer, du))) {
		pthread_cond_destroy(&du->cv);
		pthread_mutex_destroy(&du->mu);
	}
	if (rc) {
		store__close(s);
		free(du);
		errno = rc;
		return TCPCHAT_ESYS;
	}
	srv->durable = du;
	return 0;
}

/* ---- the loop side ------------------------------------------------------ */

static void enqueue(struct durable *du, struct room *r, struct dmsg *d)
{
	d->room = r;
	d->next = NULL;
	*du->next_tail = d;
	du->next_tail = &d->next;
	du->next_n++;
	r->pending++;
}

void srv__durable_post(tcpchat_server *srv, struct room *r, tcpchat_msg *m,
                       struct sconn *from, tcpchat_str ref)
{
	struct durable *du = srv->durable;
	size_t n = m->sender.len + m->body.len + ref.len;
	struct dmsg *d = malloc(sizeof *d + n);
	if (!d) {
		if (from) {
			tcpchat_msg req = *m;
			req.ref = ref;
			srv__req_error(srv, from, &req, TCPCHAT_ENOMEM,
			               "server out of memory: not posted");
		}
		return;
	}
	memset(d, 0, sizeof *d);
	d->m = *m;
	d->from = from ? from->id : 0;
	char *p = d->data;
	tcpchat_str *strs[] = {&d->m.sender, &d->m.body, &d->m.ref};
	const tcpchat_str src[] = {m->sender, m->body, ref};
	for (size_t i = 0; i < TC_ARRAY_LEN(strs); i++) {
		if (src[i].len)
			memcpy(p, src[i].ptr, src[i].len);
		strs[i]->ptr = p;
		strs[i]->len = src[i].len;
		p += src[i].len;
	}
	d->m.room.ptr = r->name; /* rooms with texts are never freed */
	if (ref.len && from)
		d->ack = srv__ack_new(srv, from, &d->m, 1);
	enqueue(du, r, d);
}

void srv__durable_topic(tcpchat_server *srv, struct room *r)
{
	struct durable *du = srv->durable;
	if (!du)
		return;
	struct dmsg *d = calloc(1, sizeof *d);
	if (!d) {
		srv__log(srv, TCPCHAT_LOG_ERROR,
		         "store: out of memory: the topic of %s is not saved",
		         r->name);
		return;
	}
	d->state_only = 1;
	enqueue(du, r, d);
}

/* Numbers the next batch and builds what the store takes.  Returns it,
 * or NULL when there is no memory (it then stays for the next try). */
static struct batch *build(tcpchat_server *srv, struct durable *du)
{
	struct batch *b = calloc(1, sizeof *b);
	size_t ntop = 0;
	for (struct dmsg *d = du->next; d; d = d->next)
		ntop += d->room->topic_len;
	if (b) {
		b->sm = calloc(du->next_n, sizeof *b->sm);
		b->rooms = calloc(du->next_n, sizeof *b->rooms);
		b->topics = malloc(ntop + 1);
	}
	if (!b || !b->sm || !b->rooms || !b->topics) {
		batch_free(b);
		return NULL;
	}
	b->head = du->next;
	du->next = NULL;
	du->next_tail = &du->next;
	du->next_n = 0;
	char *tp = b->topics;
	for (struct dmsg *d = b->head; d; d = d->next) {
		struct room *r = d->room;
		/* the room's state, once per batch: its last one wins */
		size_t k = 0;
		while (k < b->nrooms && b->rooms[k].room.ptr != r->name)
			k++;
		struct store_room *st = &b->rooms[k];
		if (k == b->nrooms) {
			b->nrooms++;
			st->room.ptr = r->name;
			st->room.len = r->name_len;
			st->last_seq = r->last_seq;
		}
		if (!d->state_only) {
			/* the room's last_seq moves when the batch is
			 * committed: until then a JOIN or HISTORY shows
			 * what is on disk */
			d->m.seq = ++st->last_seq;
			struct store_msg *s = &b->sm[b->n++];
			s->room.ptr = r->name;
			s->room.len = r->name_len;
			s->seq = d->m.seq;
			s->id = d->m.id;
			s->timestamp = d->m.timestamp;
			s->sender = d->m.sender;
			s->body = d->m.body;
			s->ref = d->m.ref;
		}
		if (r->topic_len)
			memcpy(tp, r->topic, r->topic_len);
		st->topic.ptr = tp;
		st->topic.len = r->topic_len;
		tp += r->topic_len;
		st->topic_by.ptr = r->topic_by;
		st->topic_by.len = r->topic_by_len;
		st->topic_ts = r->topic_ts;
	}
	(void)srv;
	return b;
}

/* Hands the next batch to the writer when it is free. */
void srv__durable_kick(tcpchat_server *srv)
{
	struct durable *du = srv->durable;
	if (!du || du->inflight || !du->next)
		return;
	struct batch *b = build(srv, du);
	if (!b)
		return; /* tried again at the next iteration */
	du->inflight = 1;
	pthread_mutex_lock(&du->mu);
	du->todo = b;
	pthread_cond_broadcast(&du->cv);
	pthread_mutex_unlock(&du->mu);
}

/* What a committed (or refused) batch means for the chat. */
static void settle(tcpchat_server *srv, struct batch *b)
{
	if (b->rc) {
		srv__log(srv, TCPCHAT_LOG_ERROR,
		         "store: %zu texts not saved, refused: %s", b->n,
		         b->err[0] ? b->err : tcpchat_strerror(b->rc));
	}
	for (struct dmsg *d = b->head; d; d = d->next) {
		d->room->pending--;
		if (d->state_only)
			continue;
		struct sconn *from =
		        d->from ? srv__id_find(srv, d->from) : NULL;
		if (from && from->state != S_JOINED)
			from = NULL;
		tcpchat_msg m = d->m;
		m.ref.ptr = NULL;
		m.ref.len = 0;
		if (b->rc) {
			srv->st.unsaved++;
			if (d->ack)
				srv__ack_forget(srv, d->ack);
			if (from) {
				m.seq = 0;
				m.ref = d->m.ref;
				srv__req_error(srv, from, &m, TCPCHAT_ESYS,
				               "the server could not save it: "
				               "not posted");
			}
			continue;
		}
		srv->st.saved++;
		d->room->last_seq = d->m.seq;
		srv__room_publish(srv, d->room, &m, from);
		if (d->ack)
			srv__ack_commit(srv, d->ack, &m);
		else if (d->m.ref.len && from)
			srv__ack_send(srv, from, NULL, &d->m);
	}
	batch_free(b);
}

/* Takes back a batch the writer is done with (from the wake callback),
 * and sends the next one on its way. */
void srv__durable_reap(tcpchat_server *srv)
{
	struct durable *du = srv->durable;
	if (!du || !du->inflight)
		return;
	pthread_mutex_lock(&du->mu);
	struct batch *b = du->done;
	du->done = NULL;
	pthread_mutex_unlock(&du->mu);
	if (!b)
		return;
	du->inflight = 0;
	settle(srv, b);
	srv->inputs++; /* output to share a write, as input is */
	srv__durable_kick(srv);
}

/* Commits everything accepted so far and settles it, waiting for the
 * disk (the server is shutting down). */
void srv__durable_drain(tcpchat_server *srv)
{
	struct durable *du = srv->durable;
	if (!du)
		return;
	while (du->inflight || du->next) {
		srv__durable_kick(srv);
		if (!du->inflight)
			break; /* no memory to build it: nothing more to do */
		pthread_mutex_lock(&du->mu);
		while (!du->done)
			pthread_cond_wait(&du->cv, &du->mu);
		pthread_mutex_unlock(&du->mu);
		srv__durable_reap(srv);
	}
}

void srv__durable_close(tcpchat_server *srv)
{
	struct durable *du = srv->durable;
	if (!du)
		return;
	srv__durable_drain(srv);
	pthread_mutex_lock(&du->mu);
	du->quit = 1;
	pthread_cond_broadcast(&du->cv);
	pthread_mutex_unlock(&du->mu);
	pthread_join(du->thread, NULL);
	/* what could not be built stays unsaved: counted */
	while (du->next) {
		struct dmsg *d = du->next;
		du->next = d->next;
		free(d);
	}
	free(du->dirty);
	store__close(du->store);
	pthread_cond_destroy(&du->cv);
	pthread_mutex_destroy(&du->mu);
	free(du);
	srv->durable = NULL;
}
