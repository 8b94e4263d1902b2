/* Helpers for the store suites. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storeutil.h"

int su_nimpl(void)
{
	return TCPCHAT_HAVE_SQLITE ? 2 : 1;
}

const char *su_impl_names(void)
{
	return TCPCHAT_HAVE_SQLITE ? "memory, sqlite" : "memory";
}

void su_env_make(struct su_env *e)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || !*tmp)
		tmp = "/tmp";
	snprintf(e->dir, sizeof e->dir, "%s/tcpchat-store-XXXXXX", tmp);
	ck_assert_ptr_nonnull(mkdtemp(e->dir));
	snprintf(e->path, sizeof e->path, "%s/store.db", e->dir);
}

void su_env_rm(struct su_env *e)
{
	DIR *d;
	struct dirent *de;

	if (!e->dir[0])
		return;
	d = opendir(e->dir);
	if (d) {
		while ((de = readdir(d)) != NULL) {
			char p[600];

			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			snprintf(p, sizeof p, "%s/%s", e->dir, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(e->dir);
	e->dir[0] = '\0';
}

struct store *su_open(int impl, struct su_env *e)
{
	struct store *s = NULL;
	char err[512];
	int rc;

	e->dir[0] = '\0';
	if (impl == 0) {
		ck_assert_int_eq(store__mem_open(&s, 0), 0);
		return s;
	}
	su_env_make(e);
	rc = store__sqlite_open(&s, e->path, STORE_CREATE, err, sizeof err);
	ck_assert_msg(rc == 0, "sqlite open: %d %s", rc, err);
	return s;
}

void su_close(struct store *s, struct su_env *e)
{
	store__close(s);
	su_env_rm(e);
}

tcpchat_str su_str(const char *s)
{
	return (tcpchat_str){s, strlen(s)};
}

void su_fill(struct store_msg *m, const char *room, uint64_t seq)
{
	static char pool[1024][48];
	static unsigned next;
	char *b = pool[next++ % 1024];

	snprintf(b, sizeof pool[0], "message %llu of %s",
	         (unsigned long long)seq, room);
	m->room = su_str(room);
	m->seq = seq;
	m->id = seq * 10 + 3;
	m->timestamp = 1000 + (int64_t)seq;
	m->flags = (uint32_t)seq & 3;
	m->sender = su_str("alice");
	m->body = su_str(b);
	m->ref.ptr = NULL;
	m->ref.len = 0;
}

int su_append(struct store *s, const char *room, uint64_t from, uint64_t to,
              size_t batch)
{
	struct store_msg m[256];

	ck_assert(batch > 0 && batch <= 256);
	while (from <= to) {
		size_t n = 0;
		int rc;

		while (n < batch && from <= to)
			su_fill(&m[n++], room, from++);
		rc = store__append(s, m, n, NULL, 0);
		if (rc)
			return rc;
	}
	return 0;
}

static void copy(char *dst, size_t cap, tcpchat_str s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;

	if (n)
		memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}

static int got_one(const struct store_msg *m, void *ud)
{
	struct su_got *g = ud;
	size_t i = g->n;

	ck_assert_uint_lt(i, SU_MAX);
	g->seq[i] = m->seq;
	g->id[i] = m->id;
	g->ts[i] = m->timestamp;
	g->flags[i] = m->flags;
	copy(g->body[i], sizeof g->body[i], m->body);
	copy(g->sender[i], sizeof g->sender[i], m->sender);
	copy(g->room[i], sizeof g->room[i], m->room);
	g->sender_len[i] = m->sender.len;
	g->n++;
	return g->stop_after && g->n == g->stop_after ? 77 : 0;
}

long su_read(struct store *s, const char *room, uint64_t after, uint64_t before,
             size_t limit, int backward, struct su_got *g)
{
	g->n = 0;
	g->stop_after = 0;
	return store__read(s, su_str(room), after, before, limit, backward,
	                   got_one, g);
}

long su_read_stop(struct store *s, const char *room, size_t stop,
                  struct su_got *g)
{
	g->n = 0;
	g->stop_after = stop;
	return store__read(s, su_str(room), 0, 0, 0, 0, got_one, g);
}

struct find {
	const char *name;
	struct su_room *r;
	int found, count;
};

static int find_room(const struct store_room *r, void *ud)
{
	struct find *f = ud;

	f->count++;
	if (!f->name || r->room.len != strlen(f->name) ||
	    memcmp(r->room.ptr, f->name, r->room.len) != 0)
		return 0;
	f->found++;
	f->r->last_seq = r->last_seq;
	f->r->topic_ts = r->topic_ts;
	copy(f->r->topic, sizeof f->r->topic, r->topic);
	copy(f->r->topic_by, sizeof f->r->topic_by, r->topic_by);
	return 0;
}

int su_room(struct store *s, const char *room, struct su_room *r)
{
	struct find f = {room, r, 0, 0};

	ck_assert_int_eq(store__rooms(s, find_room, &f), 0);
	ck_assert_int_le(f.found, 1);
	return f.found;
}

uint64_t su_last_seq(struct store *s, const char *room)
{
	struct su_room r;

	ck_assert_msg(su_room(s, room, &r) == 1, "no room %s", room);
	return r.last_seq;
}

int su_count_rooms(struct store *s)
{
	struct find f = {NULL, NULL, 0, 0};
	int rc = store__rooms(s, find_room, &f);

	return rc ? rc : f.count;
}
