/* Helpers for the store suites: the implementations under test, scratch
 * directories, message batches and what a read delivered. */
#ifndef STOREUTIL_H
#define STOREUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* How many implementations the suites run on (memory, and SQLite when the
 * build has it), and their names for the log. */
int su_nimpl(void);
const char *su_impl_names(void);

/* A scratch directory (for files) and a store file path inside it. */
struct su_env {
	char dir[256];
	char path[300];
};

/* Makes a scratch directory in $TMPDIR (else /tmp); e->path names a file
 * "store.db" in it that does not exist yet. */
void su_env_make(struct su_env *e);
/* Removes the directory and every file in it. */
void su_env_rm(struct su_env *e);

/* Opens implementation impl (0: memory without a bound, 1: a new SQLite
 * file in a scratch directory); fails the test if it cannot. */
struct store *su_open(int impl, struct su_env *e);
/* Closes s (NULL: nothing) and removes the scratch directory. */
void su_close(struct store *s, struct su_env *e);

tcpchat_str su_str(const char *s);

/* A message of room with seq: id seq*10+3, timestamp 1000+seq, flags
 * seq&3, sender "alice", body "message SEQ of ROOM" (kept in a pool of
 * 1024 buffers, valid until 1024 more are filled). */
void su_fill(struct store_msg *m, const char *room, uint64_t seq);

/* Appends room's seqs from..to in batches of batch messages.  Returns 0
 * or the first error. */
int su_append(struct store *s, const char *room, uint64_t from, uint64_t to,
              size_t batch);

#define SU_MAX 300

/* Copies of what a read delivered (at most SU_MAX). */
struct su_got {
	size_t n;
	uint64_t seq[SU_MAX], id[SU_MAX];
	int64_t ts[SU_MAX];
	uint32_t flags[SU_MAX];
	char body[SU_MAX][48], sender[SU_MAX][16], room[SU_MAX][16];
	size_t sender_len[SU_MAX];
	size_t stop_after; /* >0: the callback returns 77 at that one */
};

/* store__read() into g. */
long su_read(struct store *s, const char *room, uint64_t after, uint64_t before,
             size_t limit, int backward, struct su_got *g);
/* Reads all of room with a callback that stops at the stop-th message. */
long su_read_stop(struct store *s, const char *room, size_t stop,
                  struct su_got *g);

/* A room's state, copied. */
struct su_room {
	uint64_t last_seq;
	char topic[64], topic_by[64];
	int64_t topic_ts;
};
/* 1 and *r when store__rooms() gives room, 0 when not; fails the test
 * on an error. */
int su_room(struct store *s, const char *room, struct su_room *r);
/* The last_seq of a room that must be there. */
uint64_t su_last_seq(struct store *s, const char *room);
/* How many rooms store__rooms() gives, or its error. */
int su_count_rooms(struct store *s);
#endif
