/* libtcpchat - the SQLite store's object, shared by its two files
 * (internal; only with SQLite). */
#ifndef TCPCHAT_STORE_SQLITE_H
#define TCPCHAT_STORE_SQLITE_H

#include <sqlite3.h>

#include "store.h"

/* The prepared statements, kept for the life of the store. */
enum {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_MAXSEQ,
	Q_INSERT,
	Q_ROOM_SEQ,
	Q_ROOM_STATE,
	Q_READ,
	Q_BACK_START,
	Q_OLDEST,
	Q_LAST_SEQ,
	Q_TRIM_COUNT,
	Q_TRIM_AGE,
	Q_ROOMS,
	Q_N
};

struct sq_store {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *q[Q_N];
	uint64_t epoch;
	char err[256];
};

/* The operations (store_sqlite.c). */
extern const struct store_ops store__sqlite_ops;

/* Our TCPCHAT_E* code for a SQLite result code. */
int store__sqlite_code(int rc);

/* Prepares every statement of ss (its db open).  Returns a SQLite result
 * code. */
int store__sqlite_prepare(struct sq_store *ss);
#endif
