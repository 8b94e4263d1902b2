/* libtcpchat - a store that fails on demand, around a real one (tests). */
#include <stdlib.h>

#include "store.h"

struct faulty {
	struct store base;
	struct store *inner;
	int left[STORE_FAULT_NOPS]; /* calls before the fault, -1: none */
	const char *err;
};

static struct faulty *faulty_of(struct store *s)
{
	return (struct faulty *)s;
}

/* 1 when this call of op is to fail. */
static int fires(struct faulty *f, enum store_fault_op op)
{
	if (f->left[op] < 0)
		return 0;
	if (f->left[op] > 0) {
		f->left[op]--;
		return 0;
	}
	f->err = "injected fault";
	return 1;
}

static uint64_t faulty_epoch(struct store *s)
{
	return store__epoch(faulty_of(s)->inner);
}

static int faulty_append(struct store *s, const struct store_msg *m, size_t n,
                         const struct store_room *rooms, size_t nrooms)
{
	struct faulty *f = faulty_of(s);

	f->err = NULL;
	if (fires(f, STORE_FAULT_APPEND))
		return TCPCHAT_ESYS;
	return store__append(f->inner, m, n, rooms, nrooms);
}

struct cut {
	store_msg_fn fn;
	void *ud;
	long left;
};

static int count_one(const struct store_msg *m, void *ud)
{
	(void)m;
	++*(long *)ud;
	return 0;
}

static int deliver_some(const struct store_msg *m, void *ud)
{
	struct cut *c = ud;

	if (c->left == 0)
		return TCPCHAT_ESYS;
	c->left--;
	return c->fn(m, c->ud);
}

static long faulty_read(struct store *s, tcpchat_str room, uint64_t after,
                        uint64_t before, size_t limit, int backward,
                        store_msg_fn fn, void *ud)
{
	struct faulty *f = faulty_of(s);
	struct cut c = {fn, ud, 0};
	long rc;

	f->err = NULL;
	if (!fires(f, STORE_FAULT_READ))
		return store__read(f->inner, room, after, before, limit,
		                   backward, fn, ud);
	rc = store__read(f->inner, room, after, before, limit, backward,
	                 count_one, &c.left);
	if (rc < 0)
		return rc;
	c.left /= 2;
	store__read(f->inner, room, after, before, limit, backward,
	            deliver_some, &c);
	return TCPCHAT_ESYS;
}

static int faulty_oldest(struct store *s, tcpchat_str room, uint64_t *seq)
{
	struct faulty *f = faulty_of(s);

	f->err = NULL;
	if (fires(f, STORE_FAULT_OLDEST))
		return TCPCHAT_ESYS;
	return store__oldest(f->inner, room, seq);
}

static int faulty_trim(struct store *s, tcpchat_str room, uint64_t keep,
                       int64_t older_than_ms)
{
	struct faulty *f = faulty_of(s);

	f->err = NULL;
	if (fires(f, STORE_FAULT_TRIM))
		return TCPCHAT_ESYS;
	return store__trim(f->inner, room, keep, older_than_ms);
}

static int faulty_rooms(struct store *s, store_room_fn fn, void *ud)
{
	struct faulty *f = faulty_of(s);

	f->err = NULL;
	if (fires(f, STORE_FAULT_ROOMS))
		return TCPCHAT_ESYS;
	return store__rooms(f->inner, fn, ud);
}

static const char *faulty_errmsg(struct store *s)
{
	struct faulty *f = faulty_of(s);

	return f->err ? f->err : store__errmsg(f->inner);
}

static void faulty_close(struct store *s)
{
	struct faulty *f = faulty_of(s);

	store__close(f->inner);
	free(f);
}

static const struct store_ops faulty_ops = {
        .epoch = faulty_epoch,
        .append = faulty_append,
        .read = faulty_read,
        .oldest = faulty_oldest,
        .trim = faulty_trim,
        .rooms = faulty_rooms,
        .errmsg = faulty_errmsg,
        .close = faulty_close,
};

int store__faulty(struct store **out, struct store *inner)
{
	struct faulty *f;
	int i;

	if (!out || !inner) {
		store__close(inner);
		return TCPCHAT_EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		store__close(inner);
		return TCPCHAT_ENOMEM;
	}
	f->base.ops = &faulty_ops;
	f->inner = inner;
	for (i = 0; i < STORE_FAULT_NOPS; i++)
		f->left[i] = -1;
	*out = &f->base;
	return 0;
}

void store__faulty_set(struct store *s, enum store_fault_op op, int after)
{
	if (s && s->ops == &faulty_ops && (unsigned)op < STORE_FAULT_NOPS)
		faulty_of(s)->left[op] = after < 0 ? -1 : after;
}
