/* libtcpchat - the in-memory store: per room, a ring of messages (one
 * block each) bounded by a count.  libc only. */
#include <stdlib.h>
#include <string.h>

#include "store.h"

struct mem_msg {
	uint64_t seq, id;
	int64_t timestamp;
	uint32_t flags;
	size_t sender_len, body_len, ref_len;
	char data[]; /* sender, body, ref */
};

struct mem_room {
	char *name;
	size_t name_len;
	uint64_t last_seq; /* the last seq given */
	uint64_t max_seq;  /* the greatest seq of an appended message */
	char *topic, *topic_by;
	size_t topic_len, topic_by_len;
	int64_t topic_ts;
	struct mem_msg **ring;
	size_t cap, head, count; /* ring[head] is the oldest */
	/* While an append checks its batch. */
	uint64_t mark, pending_seq;
	size_t pending_n;
};

struct mem_store {
	struct store base;
	size_t max; /* messages per room, 0: no bound */
	uint64_t epoch;
	uint64_t gen;            /* append counter, for mem_room.mark */
	struct mem_room **rooms; /* sorted by name */
	size_t nrooms, rooms_cap;
	const char *err;
};

static struct mem_store *mem_of(struct store *s)
{
	return (struct mem_store *)s;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, TC_MIN(alen, blen));

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* The index of the room named name, or of where it would go (*found 0). */
static size_t room_pos(struct mem_store *ms, tcpchat_str name, int *found)
{
	size_t lo = 0, hi = ms->nrooms;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct mem_room *r = ms->rooms[mid];
		int c = name_cmp(r->name, r->name_len, name.ptr, name.len);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static struct mem_room *room_find(struct mem_store *ms, tcpchat_str name)
{
	int found;
	size_t i = room_pos(ms, name, &found);

	return found ? ms->rooms[i] : NULL;
}

static struct mem_room *room_add(struct mem_store *ms, tcpchat_str name)
{
	int found;
	size_t i = room_pos(ms, name, &found);
	struct mem_room *r;

	if (found)
		return ms->rooms[i];
	if (ms->nrooms == ms->rooms_cap) {
		size_t cap = ms->rooms_cap ? ms->rooms_cap * 2 : 8;
		struct mem_room **p = realloc(ms->rooms, cap * sizeof(*p));

		if (!p)
			return NULL;
		ms->rooms = p;
		ms->rooms_cap = cap;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->name = malloc(name.len);
	if (!r->name) {
		free(r);
		return NULL;
	}
	memcpy(r->name, name.ptr, name.len);
	r->name_len = name.len;
	memmove(ms->rooms + i + 1, ms->rooms + i,
	        (ms->nrooms - i) * sizeof(*ms->rooms));
	ms->rooms[i] = r;
	ms->nrooms++;
	return r;
}

static struct mem_msg *ring_at(const struct mem_room *r, size_t i)
{
	return r->ring[(r->head + i) % r->cap];
}

static void drop_oldest(struct mem_room *r)
{
	free(r->ring[r->head]);
	r->ring[r->head] = NULL;
	r->head = (r->head + 1) % r->cap;
	r->count--;
}

static void room_free(struct mem_room *r)
{
	while (r->count)
		drop_oldest(r);
	free(r->ring);
	free(r->name);
	free(r->topic);
	free(r->topic_by);
	free(r);
}

static void room_remove(struct mem_store *ms, struct mem_room *r)
{
	int found;
	size_t i = room_pos(ms, (tcpchat_str){r->name, r->name_len}, &found);

	if (!found)
		return;
	memmove(ms->rooms + i, ms->rooms + i + 1,
	        (ms->nrooms - i - 1) * sizeof(*ms->rooms));
	ms->nrooms--;
	room_free(r);
}

/* Makes room for need messages in r's ring (linearizing it). */
static int ring_reserve(struct mem_room *r, size_t need)
{
	struct mem_msg **p;
	size_t cap = r->cap ? r->cap : 8, i;

	if (need <= r->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = malloc(cap * sizeof(*p));
	if (!p)
		return TCPCHAT_ENOMEM;
	for (i = 0; i < r->count; i++)
		p[i] = ring_at(r, i);
	free(r->ring);
	r->ring = p;
	r->cap = cap;
	r->head = 0;
	return 0;
}

static int str_dup(char **dst, size_t *dlen, tcpchat_str s)
{
	*dst = NULL;
	*dlen = s.len;
	if (!s.len)
		return 0;
	*dst = malloc(s.len);
	if (!*dst)
		return TCPCHAT_ENOMEM;
	memcpy(*dst, s.ptr, s.len);
	return 0;
}

static int room_name_ok(tcpchat_str name)
{
	return name.len > 0 && name.ptr != NULL;
}

/* Everything an append needs, allocated before anything changes. */
struct mem_batch {
	struct mem_msg **blocks;
	struct mem_room **touched, **created;
	size_t ntouched, ncreated;
	char **strs; /* two per room state: topic, topic_by */
	size_t *lens;
};

static void batch_free(struct mem_batch *b, size_t n, size_t nrooms)
{
	size_t i;

	if (b->blocks)
		for (i = 0; i < n; i++)
			free(b->blocks[i]);
	if (b->strs)
		for (i = 0; i < 2 * nrooms; i++)
			free(b->strs[i]);
	free(b->blocks);
	free(b->touched);
	free(b->created);
	free(b->strs);
	free(b->lens);
}

static struct mem_room *batch_room(struct mem_store *ms, struct mem_batch *b,
                                   tcpchat_str name)
{
	struct mem_room *r = room_find(ms, name);

	if (!r) {
		r = room_add(ms, name);
		if (!r)
			return NULL;
		b->created[b->ncreated++] = r;
	}
	if (r->mark != ms->gen) {
		r->mark = ms->gen;
		r->pending_seq = r->max_seq;
		r->pending_n = 0;
		b->touched[b->ntouched++] = r;
	}
	return r;
}

/* Checks and allocates; nothing the caller can see changes. */
static int batch_prepare(struct mem_store *ms, struct mem_batch *b,
                         const struct store_msg *m, size_t n,
                         const struct store_room *rooms, size_t nrooms)
{
	size_t i, total = n + nrooms;

	b->blocks = calloc(n ? n : 1, sizeof(*b->blocks));
	b->touched = calloc(total ? total : 1, sizeof(*b->touched));
	b->created = calloc(total ? total : 1, sizeof(*b->created));
	b->strs = calloc(nrooms ? 2 * nrooms : 1, sizeof(*b->strs));
	b->lens = calloc(nrooms ? 2 * nrooms : 1, sizeof(*b->lens));
	if (!b->blocks || !b->touched || !b->created || !b->strs || !b->lens)
		return TCPCHAT_ENOMEM;
	ms->gen++;
	for (i = 0; i < n; i++) {
		struct mem_room *r;
		struct mem_msg *mm;

		if (!room_name_ok(m[i].room) || m[i].seq == 0 ||
		    m[i].seq > (uint64_t)INT64_MAX ||
		    (m[i].sender.len && !m[i].sender.ptr) ||
		    (m[i].body.len && !m[i].body.ptr) ||
		    (m[i].ref.len && !m[i].ref.ptr)) {
			ms->err = "invalid message";
			return TCPCHAT_EINVAL;
		}
		r = batch_room(ms, b, m[i].room);
		if (!r)
			return TCPCHAT_ENOMEM;
		if (m[i].seq <= r->pending_seq) {
			ms->err = "seq not above the room's previous ones";
			return TCPCHAT_EINVAL;
		}
		r->pending_seq = m[i].seq;
		r->pending_n++;
		mm = malloc(sizeof(*mm) + m[i].sender.len + m[i].body.len +
		            m[i].ref.len);
		if (!mm)
			return TCPCHAT_ENOMEM;
		mm->seq = m[i].seq;
		mm->id = m[i].id;
		mm->timestamp = m[i].timestamp;
		mm->flags = m[i].flags;
		mm->sender_len = m[i].sender.len;
		mm->body_len = m[i].body.len;
		mm->ref_len = m[i].ref.len;
		if (m[i].ref.len)
			memcpy(mm->data + m[i].sender.len + m[i].body.len,
			       m[i].ref.ptr, m[i].ref.len);
		if (m[i].sender.len)
			memcpy(mm->data, m[i].sender.ptr, m[i].sender.len);
		if (m[i].body.len)
			memcpy(mm->data + m[i].sender.len, m[i].body.ptr,
			       m[i].body.len);
		b->blocks[i] = mm;
	}
	for (i = 0; i < nrooms; i++) {
		if (!room_name_ok(rooms[i].room) ||
		    rooms[i].last_seq > (uint64_t)INT64_MAX ||
		    (rooms[i].topic.len && !rooms[i].topic.ptr) ||
		    (rooms[i].topic_by.len && !rooms[i].topic_by.ptr)) {
			ms->err = "invalid room state";
			return TCPCHAT_EINVAL;
		}
		if (!batch_room(ms, b, rooms[i].room))
			return TCPCHAT_ENOMEM;
		if (str_dup(&b->strs[2 * i], &b->lens[2 * i], rooms[i].topic) ||
		    str_dup(&b->strs[2 * i + 1], &b->lens[2 * i + 1],
		            rooms[i].topic_by))
			return TCPCHAT_ENOMEM;
	}
	for (i = 0; i < b->ntouched; i++) {
		struct mem_room *r = b->touched[i];
		size_t need = r->count + r->pending_n;

		if (ms->max && need > ms->max)
			need = ms->max;
		if (ring_reserve(r, need))
			return TCPCHAT_ENOMEM;
	}
	return 0;
}

static int mem_append(struct store *s, const struct store_msg *m, size_t n,
                      const struct store_room *rooms, size_t nrooms)
{
	struct mem_store *ms = mem_of(s);
	struct mem_batch b = {0};
	size_t i;
	int rc;

	if ((n && !m) || (nrooms && !rooms))
		return TCPCHAT_EINVAL;
	ms->err = "";
	rc = batch_prepare(ms, &b, m, n, rooms, nrooms);
	if (rc) {
		if (rc == TCPCHAT_ENOMEM)
			ms->err = "out of memory";
		for (i = b.ncreated; i-- > 0;)
			room_remove(ms, b.created[i]);
		batch_free(&b, n, nrooms);
		return rc;
	}
	/* Nothing fails from here on. */
	for (i = 0; i < n; i++) {
		struct mem_room *r = room_find(ms, m[i].room);

		if (ms->max && r->count == ms->max)
			drop_oldest(r);
		r->ring[(r->head + r->count) % r->cap] = b.blocks[i];
		r->count++;
		b.blocks[i] = NULL;
		r->max_seq = m[i].seq;
		r->last_seq = TC_MAX(r->last_seq, m[i].seq);
	}
	for (i = 0; i < nrooms; i++) {
		struct mem_room *r = room_find(ms, rooms[i].room);

		free(r->topic);
		free(r->topic_by);
		r->topic = b.strs[2 * i];
		r->topic_len = b.lens[2 * i];
		r->topic_by = b.strs[2 * i + 1];
		r->topic_by_len = b.lens[2 * i + 1];
		b.strs[2 * i] = b.strs[2 * i + 1] = NULL;
		r->topic_ts = rooms[i].topic_ts;
		r->last_seq = TC_MAX(r->last_seq, rooms[i].last_seq);
	}
	batch_free(&b, n, nrooms);
	return 0;
}

/* The first index of r's ring whose seq is above seq. */
static size_t ring_upper(const struct mem_room *r, uint64_t seq)
{
	size_t lo = 0, hi = r->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ring_at(r, mid)->seq <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static long mem_read(struct store *s, tcpchat_str room, uint64_t after,
                     uint64_t before, size_t limit, int backward,
                     store_msg_fn fn, void *ud)
{
	struct mem_store *ms = mem_of(s);
	struct mem_room *r;
	size_t lo, hi, i;
	long n = 0;

	ms->err = "";
	if (!fn || !room_name_ok(room))
		return TCPCHAT_EINVAL;
	r = room_find(ms, room);
	if (!r)
		return 0;
	lo = ring_upper(r, after);
	hi = before ? ring_upper(r, before - 1) : r->count;
	if (hi < lo)
		hi = lo;
	if (limit && hi - lo > limit) {
		if (backward)
			lo = hi - limit;
		else
			hi = lo + limit;
	}
	for (i = lo; i < hi; i++) {
		const struct mem_msg *mm = ring_at(r, i);
		struct store_msg out = {
		        .room = {r->name, r->name_len},
		        .seq = mm->seq,
		        .id = mm->id,
		        .timestamp = mm->timestamp,
		        .sender = {mm->data, mm->sender_len},
		        .body = {mm->data + mm->sender_len, mm->body_len},
		        .ref = {mm->data + mm->sender_len + mm->body_len,
		                mm->ref_len},
		        .flags = mm->flags,
		};
		int rc = fn(&out, ud);

		n++;
		if (rc)
			return rc;
	}
	return n;
}

static int mem_oldest(struct store *s, tcpchat_str room, uint64_t *seq)
{
	struct mem_room *r;

	mem_of(s)->err = "";
	if (!seq || !room_name_ok(room))
		return TCPCHAT_EINVAL;
	r = room_find(mem_of(s), room);
	if (!r)
		return TCPCHAT_ENOTFOUND;
	*seq = r->count ? ring_at(r, 0)->seq : r->last_seq + 1;
	return 0;
}

static int mem_trim(struct store *s, tcpchat_str room, uint64_t keep,
                    int64_t older_than_ms)
{
	struct mem_room *r;

	mem_of(s)->err = "";
	if (!room_name_ok(room))
		return TCPCHAT_EINVAL;
	r = room_find(mem_of(s), room);
	if (!r)
		return 0;
	while (keep && r->count > keep)
		drop_oldest(r);
	while (older_than_ms && r->count &&
	       ring_at(r, 0)->timestamp < older_than_ms)
		drop_oldest(r);
	return 0;
}

static int mem_rooms(struct store *s, store_room_fn fn, void *ud)
{
	struct mem_store *ms = mem_of(s);
	size_t i;

	ms->err = "";
	if (!fn)
		return TCPCHAT_EINVAL;
	for (i = 0; i < ms->nrooms; i++) {
		const struct mem_room *r = ms->rooms[i];
		struct store_room out = {
		        .room = {r->name, r->name_len},
		        .last_seq = r->last_seq,
		        .topic = {r->topic, r->topic_len},
		        .topic_by = {r->topic_by, r->topic_by_len},
		        .topic_ts = r->topic_ts,
		};
		int rc = fn(&out, ud);

		if (rc)
			return rc;
	}
	return 0;
}

static uint64_t mem_epoch(struct store *s)
{
	return mem_of(s)->epoch;
}

static const char *mem_errmsg(struct store *s)
{
	return mem_of(s)->err;
}

static void mem_close(struct store *s)
{
	struct mem_store *ms = mem_of(s);
	size_t i;

	for (i = 0; i < ms->nrooms; i++)
		room_free(ms->rooms[i]);
	free(ms->rooms);
	free(ms);
}

static const struct store_ops mem_ops = {
        .epoch = mem_epoch,
        .append = mem_append,
        .read = mem_read,
        .oldest = mem_oldest,
        .trim = mem_trim,
        .rooms = mem_rooms,
        .errmsg = mem_errmsg,
        .close = mem_close,
};

uint64_t store__new_epoch(void)
{
	uint64_t key[2];

	do
		util__random_key(key);
	while ((key[0] ^ key[1]) == 0);
	return key[0] ^ key[1];
}

int store__mem_open(struct store **out, size_t max_msgs_per_room)
{
	struct mem_store *ms;

	if (!out)
		return TCPCHAT_EINVAL;
	ms = calloc(1, sizeof(*ms));
	if (!ms)
		return TCPCHAT_ENOMEM;
	ms->base.ops = &mem_ops;
	ms->max = max_msgs_per_room;
	ms->epoch = store__new_epoch();
	ms->err = "";
	*out = &ms->base;
	return 0;
}
