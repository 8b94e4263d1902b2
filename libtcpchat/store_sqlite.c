/* libtcpchat - the SQLite store's operations: prepared statements kept
 * open, a batch per transaction.  Opening is in store_sqlite_open.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite.h"

static const char *const query_sql[Q_N] = {
        [Q_BEGIN] = "BEGIN IMMEDIATE",
        [Q_COMMIT] = "COMMIT",
        [Q_ROLLBACK] = "ROLLBACK",
        [Q_MAXSEQ] = "SELECT max_seq FROM rooms WHERE name = ?1",
        [Q_INSERT] = "INSERT INTO msgs(room, seq, id, ts, sender, body, flags,"
                     " ref) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        [Q_ROOM_SEQ] = "INSERT INTO rooms(name, last_seq, max_seq)"
                       " VALUES (?1, ?2, ?2) ON CONFLICT(name) DO UPDATE"
                       " SET max_seq = excluded.max_seq,"
                       " last_seq = max(last_seq, excluded.last_seq)",
        [Q_ROOM_STATE] = "INSERT INTO rooms(name, last_seq, max_seq, topic,"
                         " topic_by, topic_ts) VALUES (?1, ?2, 0, ?3, ?4, ?5)"
                         " ON CONFLICT(name) DO UPDATE"
                         " SET last_seq = max(last_seq, excluded.last_seq),"
                         " topic = excluded.topic,"
                         " topic_by = excluded.topic_by,"
                         " topic_ts = excluded.topic_ts",
        [Q_READ] = "SELECT seq, id, ts, sender, body, flags, ref FROM msgs"
                   " WHERE room = ?1 AND seq > ?2 AND seq < ?3"
                   " ORDER BY seq LIMIT ?4",
        [Q_BACK_START] = "SELECT seq FROM msgs"
                         " WHERE room = ?1 AND seq > ?2 AND seq < ?3"
                         " ORDER BY seq DESC LIMIT 1 OFFSET ?4",
        [Q_OLDEST] = "SELECT seq FROM msgs WHERE room = ?1"
                     " ORDER BY seq LIMIT 1",
        [Q_LAST_SEQ] = "SELECT last_seq FROM rooms WHERE name = ?1",
        [Q_TRIM_COUNT] = "DELETE FROM msgs WHERE room = ?1 AND seq <="
                         " (SELECT seq FROM msgs WHERE room = ?1"
                         " ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        [Q_TRIM_AGE] = "DELETE FROM msgs WHERE room = ?1 AND seq <"
                       " coalesce((SELECT seq FROM msgs WHERE room = ?1"
                       " AND ts >= ?2 ORDER BY seq LIMIT 1),"
                       " 9223372036854775807)",
        [Q_ROOMS] = "SELECT name, last_seq, topic, topic_by, topic_ts"
                    " FROM rooms",
};

static struct sq_store *sq_of(struct store *s)
{
	return (struct sq_store *)s;
}

/* Maps a SQLite result code to ours. */
int store__sqlite_code(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:
		return TCPCHAT_ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return TCPCHAT_ESTATE;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return TCPCHAT_EPROTO;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
	case SQLITE_TOOBIG:
		return TCPCHAT_EINVAL;
	default:
		return TCPCHAT_ESYS;
	}
}

/* Records the connection's error and returns our code for it. */
static int sq_fail(struct sq_store *ss, int rc)
{
	snprintf(ss->err, sizeof ss->err, "%s", sqlite3_errmsg(ss->db));
	return store__sqlite_code(rc);
}

static void bind_str(sqlite3_stmt *st, int i, tcpchat_str s, int text)
{
	const char *p = s.ptr ? s.ptr : "";

	if (text)
		sqlite3_bind_text(st, i, p, (int)s.len, SQLITE_STATIC);
	else
		sqlite3_bind_blob(st, i, p, (int)s.len, SQLITE_STATIC);
}

static tcpchat_str col_str(sqlite3_stmt *st, int i)
{
	tcpchat_str s;

	s.ptr = sqlite3_column_blob(st, i);
	s.len = (size_t)sqlite3_column_bytes(st, i);
	return s;
}

/* Runs a statement that returns no row (or ignores them). */
static int run(struct sq_store *ss, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sq_fail(ss, rc);
	return 0;
}

static void rollback(struct sq_store *ss)
{
	if (!sqlite3_get_autocommit(ss->db)) {
		sqlite3_step(ss->q[Q_ROLLBACK]);
		sqlite3_reset(ss->q[Q_ROLLBACK]);
	}
}

static int str_ok(tcpchat_str s)
{
	return (s.ptr || !s.len) && s.len <= INT32_MAX;
}

static int room_ok(tcpchat_str s)
{
	return s.len && str_ok(s);
}

/* The greatest seq appended to room so far (0: none), in *seq. */
static int max_seq(struct sq_store *ss, tcpchat_str room, uint64_t *seq)
{
	sqlite3_stmt *st = ss->q[Q_MAXSEQ];
	int rc;

	bind_str(st, 1, room, 1);
	rc = sqlite3_step(st);
	*seq = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(ss, rc);
	return 0;
}

static int set_room_seq(struct sq_store *ss, tcpchat_str room, uint64_t seq)
{
	sqlite3_stmt *st = ss->q[Q_ROOM_SEQ];

	bind_str(st, 1, room, 1);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
	return run(ss, st);
}

static int same_room(tcpchat_str a, tcpchat_str b)
{
	return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static int insert_msgs(struct sq_store *ss, const struct store_msg *m, size_t n)
{
	sqlite3_stmt *ins = ss->q[Q_INSERT];
	uint64_t prev = 0;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		int first = i == 0 || !same_room(m[i].room, m[i - 1].room);

		if (!room_ok(m[i].room) || !str_ok(m[i].sender) ||
		    !str_ok(m[i].body) || !str_ok(m[i].ref) || m[i].seq == 0 ||
		    m[i].seq > (uint64_t)INT64_MAX) {
			snprintf(ss->err, sizeof ss->err, "invalid message");
			return TCPCHAT_EINVAL;
		}
		/* A run of one room's messages: its seq is read once and
		 * written once. */
		if (first && (rc = max_seq(ss, m[i].room, &prev)) != 0)
			return rc;
		if (m[i].seq <= prev) {
			snprintf(ss->err, sizeof ss->err,
			         "seq %llu not above the room's previous ones",
			         (unsigned long long)m[i].seq);
			return TCPCHAT_EINVAL;
		}
		prev = m[i].seq;
		bind_str(ins, 1, m[i].room, 1);
		sqlite3_bind_int64(ins, 2, (sqlite3_int64)m[i].seq);
		sqlite3_bind_int64(ins, 3, (sqlite3_int64)m[i].id);
		sqlite3_bind_int64(ins, 4, m[i].timestamp);
		bind_str(ins, 5, m[i].sender, 0);
		bind_str(ins, 6, m[i].body, 0);
		sqlite3_bind_int64(ins, 7, m[i].flags);
		if (m[i].ref.len)
			bind_str(ins, 8, m[i].ref, 0);
		else
			sqlite3_bind_null(ins, 8);
		if ((rc = run(ss, ins)) != 0)
			return rc;
		if ((i + 1 == n || !same_room(m[i].room, m[i + 1].room)) &&
		    (rc = set_room_seq(ss, m[i].room, prev)) != 0)
			return rc;
	}
	return 0;
}

static int put_rooms(struct sq_store *ss, const struct store_room *r, size_t n)
{
	sqlite3_stmt *st = ss->q[Q_ROOM_STATE];
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (!room_ok(r[i].room) || !str_ok(r[i].topic) ||
		    !str_ok(r[i].topic_by) ||
		    r[i].last_seq > (uint64_t)INT64_MAX) {
			snprintf(ss->err, sizeof ss->err, "invalid room state");
			return TCPCHAT_EINVAL;
		}
		bind_str(st, 1, r[i].room, 1);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)r[i].last_seq);
		bind_str(st, 3, r[i].topic, 0);
		bind_str(st, 4, r[i].topic_by, 0);
		sqlite3_bind_int64(st, 5, r[i].topic_ts);
		if ((rc = run(ss, st)) != 0)
			return rc;
	}
	return 0;
}

static int sq_append(struct store *s, const struct store_msg *m, size_t n,
                     const struct store_room *rooms, size_t nrooms)
{
	struct sq_store *ss = sq_of(s);
	int rc;

	if ((n && !m) || (nrooms && !rooms))
		return TCPCHAT_EINVAL;
	ss->err[0] = '\0';
	if ((rc = run(ss, ss->q[Q_BEGIN])) != 0)
		return rc;
	if ((rc = insert_msgs(ss, m, n)) == 0 &&
	    (rc = put_rooms(ss, rooms, nrooms)) == 0 &&
	    (rc = run(ss, ss->q[Q_COMMIT])) == 0)
		return 0;
	rollback(ss);
	return rc;
}

static void bind_range(sqlite3_stmt *st, tcpchat_str room, uint64_t after,
                       uint64_t before)
{
	bind_str(st, 1, room, 1);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)TC_MIN(after, INT64_MAX));
	sqlite3_bind_int64(st, 3,
	                   before && before <= (uint64_t)INT64_MAX
	                           ? (sqlite3_int64)before
	                           : INT64_MAX);
}

static long sq_read(struct store *s, tcpchat_str room, uint64_t after,
                    uint64_t before, size_t limit, int backward,
                    store_msg_fn fn, void *ud)
{
	struct sq_store *ss = sq_of(s);
	sqlite3_stmt *st;
	long n = 0;
	int rc;

	if (!fn || !room_ok(room))
		return TCPCHAT_EINVAL;
	ss->err[0] = '\0';
	if (limit > (size_t)INT64_MAX)
		limit = 0;
	if (backward && limit) {
		/* Where the last `limit` of the range start. */
		st = ss->q[Q_BACK_START];
		bind_range(st, room, after, before);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)limit - 1);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			after = (uint64_t)sqlite3_column_int64(st, 0) - 1;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return sq_fail(ss, rc);
	}
	st = ss->q[Q_READ];
	bind_range(st, room, after, before);
	sqlite3_bind_int64(st, 4, limit ? (sqlite3_int64)limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_msg out = {
		        .room = room,
		        .seq = (uint64_t)sqlite3_column_int64(st, 0),
		        .id = (uint64_t)sqlite3_column_int64(st, 1),
		        .timestamp = sqlite3_column_int64(st, 2),
		        .sender = col_str(st, 3),
		        .body = col_str(st, 4),
		        .flags = (uint32_t)sqlite3_column_int64(st, 5),
		        .ref = col_str(st, 6),
		};
		int stop = fn(&out, ud);

		n++;
		if (stop) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return stop;
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return sq_fail(ss, rc);
	return n;
}

/* The first column of the one row st gives: 0 and *v, 1 when there is no
 * row, or an error. */
static int one_int(struct sq_store *ss, sqlite3_stmt *st, uint64_t *v)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		*v = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return 1;
	return sq_fail(ss, rc);
}

static int sq_oldest(struct store *s, tcpchat_str room, uint64_t *seq)
{
	struct sq_store *ss = sq_of(s);
	int rc;

	if (!seq || !room_ok(room))
		return TCPCHAT_EINVAL;
	ss->err[0] = '\0';
	bind_str(ss->q[Q_OLDEST], 1, room, 1);
	rc = one_int(ss, ss->q[Q_OLDEST], seq);
	if (rc != 1)
		return rc;
	bind_str(ss->q[Q_LAST_SEQ], 1, room, 1);
	rc = one_int(ss, ss->q[Q_LAST_SEQ], seq);
	if (rc == 1)
		return TCPCHAT_ENOTFOUND;
	if (rc == 0)
		++*seq;
	return rc;
}

static int sq_trim(struct store *s, tcpchat_str room, uint64_t keep,
                   int64_t older_than_ms)
{
	struct sq_store *ss = sq_of(s);
	int rc = 0;

	if (!room_ok(room))
		return TCPCHAT_EINVAL;
	ss->err[0] = '\0';
	if (!keep && !older_than_ms)
		return 0;
	if ((rc = run(ss, ss->q[Q_BEGIN])) != 0)
		return rc;
	if (keep && keep <= (uint64_t)INT64_MAX) {
		bind_str(ss->q[Q_TRIM_COUNT], 1, room, 1);
		sqlite3_bind_int64(ss->q[Q_TRIM_COUNT], 2, (sqlite3_int64)keep);
		rc = run(ss, ss->q[Q_TRIM_COUNT]);
	}
	if (!rc && older_than_ms) {
		bind_str(ss->q[Q_TRIM_AGE], 1, room, 1);
		sqlite3_bind_int64(ss->q[Q_TRIM_AGE], 2, older_than_ms);
		rc = run(ss, ss->q[Q_TRIM_AGE]);
	}
	if (!rc && (rc = run(ss, ss->q[Q_COMMIT])) == 0)
		return 0;
	rollback(ss);
	return rc;
}

static int sq_rooms(struct store *s, store_room_fn fn, void *ud)
{
	struct sq_store *ss = sq_of(s);
	sqlite3_stmt *st = ss->q[Q_ROOMS];
	int rc;

	if (!fn)
		return TCPCHAT_EINVAL;
	ss->err[0] = '\0';
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_room out = {
		        .room = col_str(st, 0),
		        .last_seq = (uint64_t)sqlite3_column_int64(st, 1),
		        .topic = col_str(st, 2),
		        .topic_by = col_str(st, 3),
		        .topic_ts = sqlite3_column_int64(st, 4),
		};
		int stop = fn(&out, ud);

		if (stop) {
			sqlite3_reset(st);
			return stop;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return sq_fail(ss, rc);
	return 0;
}

static uint64_t sq_epoch(struct store *s)
{
	return sq_of(s)->epoch;
}

static const char *sq_errmsg(struct store *s)
{
	return sq_of(s)->err;
}

static void sq_close(struct store *s)
{
	struct sq_store *ss = sq_of(s);
	int i;

	for (i = 0; i < Q_N; i++)
		sqlite3_finalize(ss->q[i]);
	sqlite3_close(ss->db);
	free(ss);
}

const struct store_ops store__sqlite_ops = {
        .epoch = sq_epoch,
        .append = sq_append,
        .read = sq_read,
        .oldest = sq_oldest,
        .trim = sq_trim,
        .rooms = sq_rooms,
        .errmsg = sq_errmsg,
        .close = sq_close,
};

int store__sqlite_prepare(struct sq_store *ss)
{
	int i, rc;

	for (i = 0; i < Q_N; i++) {
		rc = sqlite3_prepare_v3(ss->db, query_sql[i], -1,
		                        SQLITE_PREPARE_PERSISTENT, &ss->q[i],
		                        NULL);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}
