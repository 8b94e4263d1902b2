/* libtcpchat - the client's rooms (protocol 2): the thread-safe room
 * calls, and the client's own view of the rooms it is in, kept from the
 * WELCOME and from its own JOIN and LEAVE confirmations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* ---- the view (loop thread) --------------------------------------------- */

long cli__list_find(const struct croom_list *l, const char *room, size_t n)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->v[i]) == n && memcmp(l->v[i], room, n) == 0)
			return (long)i;
	return -1;
}

static void list_remove(struct croom_list *l, size_t i)
{
	memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof *l->v);
	l->n--;
}

/* Appends room[0..n) (n <= TCPCHAT_ROOM_MAX).  0 or TCPCHAT_ENOMEM. */
int cli__list_add(struct croom_list *l, const char *room, size_t n)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		void *v = realloc(l->v, cap * sizeof *l->v);
		if (!v)
			return TCPCHAT_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memcpy(l->v[l->n], room, n);
	l->v[l->n][n] = '\0';
	l->n++;
	return 0;
}

int cli__list_copy(struct croom_list *dst, const struct croom_list *src)
{
	dst->n = 0;
	for (size_t i = 0; i < src->n; i++)
		if (cli__list_add(dst, src->v[i], strlen(src->v[i])))
			return TCPCHAT_ENOMEM;
	return 0;
}

/* Join requests kept while unconfirmed: a refused request is never
 * confirmed, so only the latest few are remembered. */
#define PENDING_MAX 16

static void set_current(tcpchat_client *cli, const char *room, size_t n)
{
	pthread_mutex_lock(&cli->room_mu);
	memcpy(cli->current_room, room, n);
	cli->current_room[n] = '\0';
	pthread_mutex_unlock(&cli->room_mu);
}

void cli__rooms_reset(tcpchat_client *cli, int keep_default)
{
	cli->joined.n = 0;
	cli->pending.n = 0;
	pthread_mutex_lock(&cli->room_mu);
	cli->current_room[0] = '\0';
	if (!keep_default)
		cli->default_room[0] = '\0';
	pthread_mutex_unlock(&cli->room_mu);
}

void cli__rooms_free(tcpchat_client *cli)
{
	free(cli->joined.v);
	free(cli->pending.v);
	free(cli->rejoin.v);
	free(cli->rejoin_pending.v);
	memset(&cli->joined, 0, sizeof cli->joined);
	memset(&cli->pending, 0, sizeof cli->pending);
	memset(&cli->rejoin, 0, sizeof cli->rejoin);
	memset(&cli->rejoin_pending, 0, sizeof cli->rejoin_pending);
}

/* A room name as a server sent it: usable when it fits. */
int cli__room_fits(tcpchat_str r)
{
	return r.len > 0 && r.len <= TCPCHAT_ROOM_MAX && r.ptr;
}

void cli__rooms_welcome(tcpchat_client *cli, const tcpchat_msg *m)
{
	atomic_store(&cli->srv_protocol, m->code ? m->code : 1);
	cli__rooms_reset(cli, 0);
	if (m->code < 2 || !cli__room_fits(m->room))
		return;
	pthread_mutex_lock(&cli->room_mu);
	memcpy(cli->default_room, m->room.ptr, m->room.len);
	cli->default_room[m->room.len] = '\0';
	pthread_mutex_unlock(&cli->room_mu);
	set_current(cli, m->room.ptr, m->room.len);
	if (cli__list_add(&cli->joined, m->room.ptr, m->room.len))
		cli__log(cli, TCPCHAT_LOG_ERROR, "out of memory: room list");
}

void cli__rooms_requested(tcpchat_client *cli, const char *room)
{
	if (cli->pending.n == PENDING_MAX)
		list_remove(&cli->pending, 0);
	if (cli__list_add(&cli->pending, room, strlen(room)))
		cli__log(cli, TCPCHAT_LOG_ERROR, "out of memory: room list");
}

int cli__is_self(const tcpchat_client *cli, tcpchat_str who)
{
	return who.len == cli->name_len &&
	       memcmp(who.ptr, cli->name, who.len) == 0;
}

/* Our own JOIN confirmation: the join we asked for (it becomes the
 * current room), or one the server made (the current room stays). */
static void joined(tcpchat_client *cli, tcpchat_str r)
{
	if (cli__list_find(&cli->joined, r.ptr, r.len) < 0 &&
	    cli__list_add(&cli->joined, r.ptr, r.len))
		cli__log(cli, TCPCHAT_LOG_ERROR, "out of memory: room list");
	long i = cli__list_find(&cli->pending, r.ptr, r.len);
	if (i >= 0) {
		list_remove(&cli->pending, (size_t)i);
		set_current(cli, r.ptr, r.len);
	}
}

/* Our own part (by choice or forced): leaving the current room falls
 * back to the default room if we are still in it, else to none. */
static void parted(tcpchat_client *cli, tcpchat_str r)
{
	long i = cli__list_find(&cli->joined, r.ptr, r.len);
	if (i >= 0)
		list_remove(&cli->joined, (size_t)i);
	pthread_mutex_lock(&cli->room_mu);
	int was_current = strlen(cli->current_room) == r.len &&
	                  memcmp(cli->current_room, r.ptr, r.len) == 0;
	char def[TCPCHAT_ROOM_MAX + 1];
	memcpy(def, cli->default_room, sizeof def);
	pthread_mutex_unlock(&cli->room_mu);
	if (!was_current)
		return;
	size_t n = strlen(def);
	if (n && cli__list_find(&cli->joined, def, n) >= 0)
		set_current(cli, def, n);
	else
		set_current(cli, "", 0);
}

void cli__rooms_on_msg(tcpchat_client *cli, const tcpchat_msg *m)
{
	if (atomic_load(&cli->srv_protocol) < 2 || !cli__room_fits(m->room))
		return;
	if (m->type == TCPCHAT_MSG_JOIN && cli__is_self(cli, m->sender)) {
		joined(cli, m->room);
	} else if (m->type == TCPCHAT_MSG_LEAVE &&
	           cli__is_self(cli, m->sender)) {
		parted(cli, m->room);
	} else if (m->type == TCPCHAT_MSG_ERROR) {
		/* an ERROR that names a room we asked to join refuses it */
		long i =
		        cli__list_find(&cli->pending, m->room.ptr, m->room.len);
		if (i >= 0)
			list_remove(&cli->pending, (size_t)i);
	}
}

TCPCHAT_API long tcpchat_client_rooms_joined(tcpchat_client *cli,
                                             tcpchat_client_room_fn fn,
                                             void *ud)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	for (size_t i = 0; fn && i < cli->joined.n; i++) {
		tcpchat_str r = {cli->joined.v[i], strlen(cli->joined.v[i])};
		if (fn(r, ud))
			break;
	}
	return (long)cli->joined.n;
}

TCPCHAT_API int tcpchat_client_current_room(tcpchat_client *cli, char *buf,
                                            size_t size)
{
	if (!cli || !buf || size == 0)
		return TCPCHAT_EINVAL;
	pthread_mutex_lock(&cli->room_mu);
	size_t n = strlen(cli->current_room);
	int rc = (int)n;
	if (n < size)
		memcpy(buf, cli->current_room, n + 1);
	pthread_mutex_unlock(&cli->room_mu);
	if (n >= size) {
		buf[0] = '\0';
		rc = TCPCHAT_EMSGSIZE;
	}
	return rc;
}

/* ---- the thread-safe calls ------------------------------------------------ */

int cli__room_arg(const char *room)
{
	if (!room)
		return TCPCHAT_EINVAL;
	return tcpchat_room_check(room, strlen(room)) ? TCPCHAT_EBADROOM : 0;
}

/* Checks text[0..len) as tcpchat_client_send() does. */
int cli__text_arg(tcpchat_client *cli, const char *text, size_t len)
{
	if (!util__chat_text_ok(text, len))
		return TCPCHAT_EINVAL;
	if (len > (size_t)atomic_load(&cli->max_frame_pub))
		return TCPCHAT_EMSGSIZE;
	return 0;
}

tcpchat_str cli__str(const char *s)
{
	tcpchat_str v = {s, s ? strlen(s) : 0};
	return v;
}

int cli__post_join(tcpchat_client *cli, const char *room, int kind,
                   uint64_t epoch, uint64_t seq)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	int rc = cli__room_arg(room);
	if (rc)
		return rc;
	tcpchat_msg m = {.type = TCPCHAT_MSG_JOIN};
	m.room = cli__str(room);
	struct ccmd meta;
	memset(&meta, 0, sizeof meta);
	meta.kind = kind;
	snprintf(meta.room, sizeof meta.room, "%s", room);
	if (kind == CC_RESUME) {
		m.flags = TCPCHAT_MSGF_AFTER;
		m.seq = meta.seq = seq;
		m.epoch = meta.epoch = epoch;
	}
	return cli__post_cmd(cli, &m, &meta);
}

TCPCHAT_API int tcpchat_client_room_join(tcpchat_client *cli, const char *room)
{
	return cli__post_join(cli, room, CC_JOIN, 0, 0);
}

TCPCHAT_API int tcpchat_client_room_part(tcpchat_client *cli, const char *room,
                                         const char *reason)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	int rc = room ? cli__room_arg(room) : 0;
	if (rc)
		return rc;
	tcpchat_str why = cli__str(reason);
	if (why.len && !util__text_ok(why.ptr, why.len))
		return TCPCHAT_EINVAL;
	if (why.len > (size_t)atomic_load(&cli->max_frame_pub))
		return TCPCHAT_EMSGSIZE;
	tcpchat_msg m = {.type = TCPCHAT_MSG_LEAVE};
	m.code = TCPCHAT_REASON_PART;
	m.room = cli__str(room);
	m.body = why;
	return cli__post(cli, &m, CC_V2, NULL);
}

TCPCHAT_API int tcpchat_client_send_room(tcpchat_client *cli, const char *room,
                                         const char *text, size_t len)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	int rc = cli__room_arg(room);
	if (rc)
		return rc;
	return cli__post_text(cli, room, NULL, text, len, NULL, NULL, 0);
}

TCPCHAT_API int tcpchat_client_send_private(tcpchat_client *cli,
                                            const char *name, const char *text,
                                            size_t len)
{
	if (!cli || !name)
		return TCPCHAT_EINVAL;
	if (tcpchat_name_check(name, strlen(name)))
		return TCPCHAT_EBADNAME;
	return cli__post_text(cli, NULL, name, text, len, NULL, NULL, 0);
}

/* 1 when m with body text[0..cut(n)) encodes within limit; n == 0 always
 * fits. */
static int prefix_fits(tcpchat_client *cli, tcpchat_msg *m, const char *text,
                       size_t len, size_t n, uint64_t limit, tcpchat_buf *b)
{
	n = util__utf8_cut(text, len, n);
	if (n == 0)
		return 1;
	m->body.ptr = text;
	m->body.len = n;
	b->len = 0;
	return cli->codec->encode(cli->codec->codec_data, m, 0, b) == 0 &&
	       b->len <= limit;
}

TCPCHAT_API size_t tcpchat_client_text_fit(tcpchat_client *cli,
                                           const char *room, const char *name,
                                           const char *text, size_t len)
{
	if (!cli || !text || !len || (room && name) ||
	    (room && cli__room_arg(room)) ||
	    (name && tcpchat_name_check(name, strlen(name))))
		return 0;
	uint64_t limit = atomic_load(&cli->srv_max_frame);
	size_t cap = (size_t)atomic_load(&cli->max_frame_pub);
	if (!limit)
		limit = cap;
	tcpchat_msg m = {.type = TCPCHAT_MSG_TEXT};
	m.room = cli__str(room);
	m.target = cli__str(name);
	/* With RECONNECT every text carries a ref the library makes: count
	 * the longest one ("<16 hex digits>-<20 digits>"). */
	static const char longest_ref[] =
	        "0123456789abcdef-18446744073709551615";
	if (atomic_load(&cli->reconnect_pub))
		m.ref = cli__str(longest_ref);
	tcpchat_buf b = {0};
	/* The largest n whose prefix fits: encoded sizes grow with n. */
	size_t lo = 0, hi = TC_MIN(len, cap);
	if (prefix_fits(cli, &m, text, len, hi, limit, &b)) {
		lo = hi;
	} else {
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			if (prefix_fits(cli, &m, text, len, mid, limit, &b))
				lo = mid;
			else
				hi = mid;
		}
	}
	tcpchat_buf_free(&b);
	return util__utf8_cut(text, len, lo);
}

TCPCHAT_API int tcpchat_client_rooms(tcpchat_client *cli)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	tcpchat_msg m = {.type = TCPCHAT_MSG_ROOMS};
	return cli__post(cli, &m, CC_V2, NULL);
}

TCPCHAT_API int tcpchat_client_who_room(tcpchat_client *cli, const char *room)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	int rc = cli__room_arg(room);
	if (rc)
		return rc;
	tcpchat_msg m = {.type = TCPCHAT_MSG_WHO};
	m.room = cli__str(room);
	return cli__post(cli, &m, CC_V2, NULL);
}

TCPCHAT_API int tcpchat_client_set_topic(tcpchat_client *cli, const char *room,
                                         const char *topic)
{
	if (!cli)
		return TCPCHAT_EINVAL;
	int rc = cli__room_arg(room);
	if (rc)
		return rc;
	tcpchat_str t = cli__str(topic);
	if (t.len > TCPCHAT_TOPIC_MAX)
		return TCPCHAT_EMSGSIZE;
	if (t.len && !util__text_ok(t.ptr, t.len))
		return TCPCHAT_EINVAL;
	tcpchat_msg m = {.type = TCPCHAT_MSG_TOPIC};
	m.room = cli__str(room);
	m.body = t;
	return cli__post(cli, &m, CC_V2, NULL);
}

TCPCHAT_API int tcpchat_client_kick(tcpchat_client *cli, const char *room,
                                    const char *name, const char *reason,
                                    unsigned flags)
{
	if (!cli || !name ||
	    (flags != 0 && flags != TCPCHAT_MSGF_BAN &&
	     flags != TCPCHAT_MSGF_UNBAN))
		return TCPCHAT_EINVAL;
	int rc = cli__room_arg(room);
	if (rc)
		return rc;
	if (tcpchat_name_check(name, strlen(name)) != 0)
		return TCPCHAT_EBADNAME;
	tcpchat_str why =
	        flags == TCPCHAT_MSGF_UNBAN ? cli__str(NULL) : cli__str(reason);
	if (why.len && !util__text_ok(why.ptr, why.len))
		return TCPCHAT_EINVAL;
	tcpchat_msg m = {.type = TCPCHAT_MSG_KICK};
	m.room = cli__str(room);
	m.target = cli__str(name);
	m.body = why;
	m.flags = flags;
	return cli__post(cli, &m, CC_V2, NULL);
}
