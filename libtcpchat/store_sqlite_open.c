/* libtcpchat - opening the SQLite store: one file in WAL mode, held with
 * an exclusive lock, its schema checked or created. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
        TC_PRINTF(3, 4);

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

#if !TCPCHAT_HAVE_SQLITE

int store__sqlite_open(struct store **out, const char *path, int flags,
                       char *err, size_t errlen)
{
	(void)out;
	(void)path;
	(void)flags;
	set_err(err, errlen, "built without SQLite");
	return TCPCHAT_ENOTSUP;
}

#else

#include "store_sqlite.h"

/* The schema this library writes and reads; a file with a newer one is
 * refused.  'tcpc' in PRAGMA application_id marks a tcpchat store. */
#define SCHEMA_VERSION 2
#define APP_ID 0x74637063

static const char schema_sql[] =
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
        "CREATE TABLE rooms(name TEXT PRIMARY KEY,"
        " last_seq INTEGER NOT NULL, max_seq INTEGER NOT NULL,"
        " topic BLOB, topic_by BLOB, topic_ts INTEGER NOT NULL DEFAULT 0)"
        " WITHOUT ROWID;"
        "CREATE TABLE msgs(room TEXT NOT NULL, seq INTEGER NOT NULL,"
        " id INTEGER NOT NULL, ts INTEGER NOT NULL, sender BLOB NOT NULL,"
        " body BLOB NOT NULL, flags INTEGER NOT NULL, ref BLOB,"
        " PRIMARY KEY(room, seq)) WITHOUT ROWID;";

/* From schema 1: the senders' references. */
static const char upgrade_1_sql[] =
        "BEGIN; ALTER TABLE msgs ADD COLUMN ref BLOB;"
        " UPDATE meta SET value = 2 WHERE key = 'schema'; COMMIT;";

/* Runs sql (no rows wanted); on failure, err says "cannot open path: ...". */
static int open_exec(sqlite3 *db, const char *path, const char *sql, char *err,
                     size_t errlen)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc == SQLITE_OK)
		return 0;
	if ((rc & 0xff) == SQLITE_BUSY)
		set_err(err, errlen,
		        "cannot open %s: database is locked (another tcpchat "
		        "store has it open)",
		        path);
	else
		set_err(err, errlen, "cannot open %s: %s", path,
		        sqlite3_errmsg(db));
	return store__sqlite_code(rc);
}

/* The integer that sql gives, in *v (0 when no row). */
static int open_int(sqlite3 *db, const char *path, const char *sql, int64_t *v,
                    char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	*v = 0;
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*v = sqlite3_column_int64(st, 0);
		if (rc == SQLITE_ROW || rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK)
		set_err(err, errlen, "cannot open %s: %s", path,
		        sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return store__sqlite_code(rc);
}

/* Creates the schema in an empty file, or checks the one there, and reads
 * the epoch; inside a transaction. */
static int open_schema(struct sq_store *ss, const char *path, char *err,
                       size_t errlen)
{
	sqlite3 *db = ss->db;
	int64_t app, objects, version, epoch;
	char sql[160];
	int rc;

	if ((rc = open_int(db, path, "PRAGMA application_id", &app, err,
	                   errlen)) ||
	    (rc = open_int(db, path, "SELECT count(*) FROM sqlite_master",
	                   &objects, err, errlen)))
		return rc;
	if (app == 0 && objects == 0) {
		ss->epoch = store__new_epoch();
		snprintf(sql, sizeof sql,
		         "PRAGMA application_id = %d;"
		         "INSERT INTO meta VALUES ('schema', %d), "
		         "('epoch', %lld);",
		         APP_ID, SCHEMA_VERSION, (long long)ss->epoch);
		if ((rc = open_exec(db, path, schema_sql, err, errlen)) ||
		    (rc = open_exec(db, path, sql, err, errlen)))
			return rc;
		return 0;
	}
	if (app != APP_ID) {
		set_err(err, errlen,
		        "cannot open %s: a SQLite database but not a tcpchat "
		        "store",
		        path);
		return TCPCHAT_EPROTO;
	}
	if ((rc = open_int(db, path,
	                   "SELECT value FROM meta WHERE key = 'schema'",
	                   &version, err, errlen)) ||
	    (rc = open_int(db, path,
	                   "SELECT value FROM meta WHERE key = 'epoch'", &epoch,
	                   err, errlen)))
		return rc;
	if (version > SCHEMA_VERSION) {
		set_err(err, errlen,
		        "cannot open %s: its schema version %lld is newer than "
		        "this library's (%d)",
		        path, (long long)version, SCHEMA_VERSION);
		return TCPCHAT_EVERSION;
	}
	if (version < 1 || epoch == 0) {
		set_err(err, errlen,
		        "cannot open %s: a damaged tcpchat store (no schema "
		        "version or epoch)",
		        path);
		return TCPCHAT_EPROTO;
	}
	if (version == 1 &&
	    (rc = open_exec(db, path, upgrade_1_sql, err, errlen)) != 0)
		return rc;
	ss->epoch = (uint64_t)epoch;
	return 0;
}

static int open_db(struct sq_store *ss, const char *path, int flags, char *err,
                   size_t errlen)
{
	int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	char *mode = NULL;
	int rc;

	if (flags & STORE_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &ss->db, oflags, NULL);
	if (rc != SQLITE_OK) {
		set_err(err, errlen, "cannot open %s: %s", path,
		        ss->db ? sqlite3_errmsg(ss->db) : "out of memory");
		return ss->db ? store__sqlite_code(rc) : TCPCHAT_ENOMEM;
	}
	sqlite3_extended_result_codes(ss->db, 1);
	if (sqlite3_db_readonly(ss->db, "main") == 1) {
		set_err(err, errlen, "cannot open %s: the file is not writable",
		        path);
		return TCPCHAT_ESYS;
	}
	sqlite3_busy_timeout(ss->db, 200);
	/* Exclusive before WAL: no shared memory, one process at a time. */
	if ((rc = open_exec(ss->db, path, "PRAGMA locking_mode = EXCLUSIVE",
	                    err, errlen)))
		return rc;
	rc = sqlite3_exec(ss->db, "PRAGMA journal_mode = WAL", NULL, NULL,
	                  NULL);
	if (rc == SQLITE_OK) {
		sqlite3_stmt *st = NULL;

		rc = sqlite3_prepare_v2(ss->db, "PRAGMA journal_mode", -1, &st,
		                        NULL);
		if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			mode = sqlite3_mprintf("%s",
			                       sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_OK)
		return open_exec(ss->db, path, "PRAGMA journal_mode = WAL", err,
		                 errlen);
	if (!mode || strcmp(mode, "wal") != 0) {
		set_err(err, errlen,
		        "cannot open %s: WAL mode refused (journal mode %s)",
		        path, mode ? mode : "unknown");
		sqlite3_free(mode);
		return TCPCHAT_ESYS;
	}
	sqlite3_free(mode);
	if ((rc = open_exec(ss->db, path,
	                    flags & STORE_FSYNC ? "PRAGMA synchronous = FULL"
	                                        : "PRAGMA synchronous = NORMAL",
	                    err, errlen)) ||
	    (rc = open_exec(ss->db, path, "BEGIN IMMEDIATE", err, errlen)))
		return rc;
	if ((rc = open_schema(ss, path, err, errlen)) ||
	    (rc = open_exec(ss->db, path, "COMMIT", err, errlen))) {
		sqlite3_exec(ss->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	rc = store__sqlite_prepare(ss);
	if (rc != SQLITE_OK) {
		set_err(err, errlen, "cannot open %s: %s", path,
		        sqlite3_errmsg(ss->db));
		return store__sqlite_code(rc);
	}
	return 0;
}

int store__sqlite_open(struct store **out, const char *path, int flags,
                       char *err, size_t errlen)
{
	struct sq_store *ss;
	int rc;

	set_err(err, errlen, "%s", "");
	if (!out || !path || !*path) {
		set_err(err, errlen, "no store file given");
		return TCPCHAT_EINVAL;
	}
	if (!(flags & STORE_CREATE) && access(path, F_OK) != 0 &&
	    errno == ENOENT) {
		set_err(err, errlen, "cannot open %s: no such file", path);
		return TCPCHAT_ENOTFOUND;
	}
	ss = calloc(1, sizeof(*ss));
	if (!ss) {
		set_err(err, errlen, "cannot open %s: out of memory", path);
		return TCPCHAT_ENOMEM;
	}
	ss->base.ops = &store__sqlite_ops;
	rc = open_db(ss, path, flags, err, errlen);
	if (rc) {
		store__close(&ss->base);
		return rc;
	}
	*out = &ss->base;
	return 0;
}

#endif
