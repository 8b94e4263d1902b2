/* libtcpchat - the client's place in each room's history: the epoch and
 * the last seq delivered per room it is in (from texts, the marks of
 * JOIN and WELCOME, ACKs and resumes), the duplicates that this
 * position filters out around a resume, and the history calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* ---- positions (loop thread) --------------------------------------------- */

struct cpos *cli__pos_find(tcpchat_client *cli, const char *room, size_t n)
{
	for (size_t i = 0; i < cli->pos.n; i++) {
		struct cpos *p = &cli->pos.v[i];
		if (strlen(p->room) == n && memcmp(p->room, room, n) == 0)
			return p;
	}
	return NULL;
}

/* The position of room[0..n), added (0/0) when missing; NULL when out of
 * memory. */
static struct cpos *pos_get(tcpchat_client *cli, const char *room, size_t n)
{
	struct cpos *p = cli__pos_find(cli, room, n);
	if (p)
		return p;
	struct cpos_list *l = &cli->pos;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		void *v = realloc(l->v, cap * sizeof *l->v);
		if (!v) {
			cli__log(cli, TCPCHAT_LOG_ERROR,
			         "out of memory: room positions");
			return NULL;
		}
		l->v = v;
		l->cap = cap;
	}
	p = &l->v[l->n++];
	memset(p, 0, sizeof *p);
	memcpy(p->room, room, n);
	return p;
}

struct cpos *cli__pos_set(tcpchat_client *cli, const char *room, uint64_t epoch,
                          uint64_t seq, int resuming)
{
	struct cpos *p = pos_get(cli, room, strlen(room));
	if (p) {
		p->epoch = epoch;
		p->seq = p->seen = seq;
		p->resuming = resuming;
	}
	return p;
}

static void pos_remove(tcpchat_client *cli, tcpchat_str room)
{
	struct cpos *p = cli__pos_find(cli, room.ptr, room.len);
	if (!p)
		return;
	size_t i = (size_t)(p - cli->pos.v);
	memmove(p, p + 1, (cli->pos.n - i - 1) * sizeof *p);
	cli->pos.n--;
}

void cli__pos_clear(tcpchat_client *cli)
{
	cli->pos.n = 0;
}

void cli__hist_free(tcpchat_client *cli)
{
	free(cli->pos.v);
	memset(&cli->pos, 0, sizeof cli->pos);
}

/* A mark (the room's last seq, e.g. of a JOIN, or the seq of our own
 * text in an ACK): the position moves up to it, or to it when the epoch
 * changed; not while a resume is under way (the texts it brings are
 * below the mark).  A mark is not a delivery: a server that numbers a
 * text before it publishes it (a durable store) may send it after the
 * mark, and it is not a duplicate. */
static void mark(struct cpos *p, uint64_t epoch, uint64_t seq)
{
	if (!p || !epoch || p->resuming)
		return;
	if (p->epoch != epoch) {
		p->epoch = epoch;
		p->seq = seq;
		p->seen = 0;
	} else if (seq > p->seq) {
		p->seq = seq;
	}
}

void cli__hist_welcome(tcpchat_client *cli, const tcpchat_msg *m)
{
	cli->srv_epoch = m->epoch;
	if (m->code < 2 || !cli__room_fits(m->room))
		return;
	mark(pos_get(cli, m->room.ptr, m->room.len), m->epoch, m->seq);
}

void cli__hist_resume_sent(tcpchat_client *cli, const struct ccmd *c)
{
	cli__pos_set(cli, c->room, c->epoch, c->seq, 1);
	if (cli__list_find(&cli->joined, c->room, strlen(c->room)) < 0)
		cli__rooms_requested(cli, c->room);
}

/* A room text, live or resumed: 1 when it is a duplicate.  A text that
 * names no epoch is of the connection's. */
static int text_seen(tcpchat_client *cli, const tcpchat_msg *m)
{
	struct cpos *p = cli__pos_find(cli, m->room.ptr, m->room.len);
	/* History that was asked for is delivered as it is. */
	if (!p || !m->seq ||
	    ((m->flags & TCPCHAT_MSGF_HISTORY) && !p->resuming))
		return 0;
	uint64_t epoch = m->epoch ? m->epoch : cli->srv_epoch;
	if (!epoch)
		epoch = p->epoch;
	if (p->epoch == epoch && m->seq <= p->seen) {
		cli__log(cli, TCPCHAT_LOG_DEBUG,
		         "%.*s: text %llu delivered already (at %llu): dropped",
		         (int)m->room.len, m->room.ptr,
		         (unsigned long long)m->seq,
		         (unsigned long long)p->seen);
		return 1;
	}
	if (p->epoch != epoch || m->seq > p->seq)
		p->seq = m->seq;
	p->epoch = epoch;
	p->seen = m->seq;
	return 0;
}

/* The end of a history answer: 1 when it ends a resume (reported as
 * RESUMED). */
static int history_end(tcpchat_client *cli, const tcpchat_msg *m)
{
	struct cpos *p = cli__pos_find(cli, m->room.ptr, m->room.len);
	if (!p || !p->resuming)
		return 0;
	p->resuming = 0;
	/* The texts served moved the position; the marker's seq (the
	 * room's last) is not taken: it may count texts still on their
	 * way. */
	if (p->epoch != m->epoch) {
		p->epoch = m->epoch;
		p->seq = p->seen = m->last;
	}
	tcpchat_client_event ev = {.type = TCPCHAT_CEV_RESUMED};
	ev.msg = m;
	ev.room = m->room;
	cli__emit(cli, &ev);
	return 1;
}

int cli__hist_on_msg(tcpchat_client *cli, const tcpchat_msg *m)
{
	if (atomic_load(&cli->srv_protocol) < 2 || !cli__room_fits(m->room))
		return 0;
	if (m->epoch && m->type != TCPCHAT_MSG_TEXT)
		cli->srv_epoch = m->epoch; /* the server's, from its marks */
	switch (m->type) {
	case TCPCHAT_MSG_TEXT:
		return text_seen(cli, m);
	case TCPCHAT_MSG_HISTORY:
		return history_end(cli, m);
	case TCPCHAT_MSG_ACK:
		mark(cli__pos_find(cli, m->room.ptr, m->room.len), m->epoch,
		     m->seq);
		return 0;
	case TCPCHAT_MSG_JOIN:
		if (cli__is_self(cli, m->sender))
			mark(pos_get(cli, m->room.ptr, m->room.len), m->epoch,
			     m->seq);
		else
			mark(cli__pos_find(cli, m->room.ptr, m->room.len),
			     m->epoch, m->seq);
		return 0;
	case TCPCHAT_MSG_LEAVE:
		if (cli__is_self(cli, m->sender))
			pos_remove(cli, m->room);
		return 0;
	case TCPCHAT_MSG_ERROR: {
		/* a refused resume: the room is not being resumed */
		struct cpos *p = cli__pos_find(cli, m->room.ptr, m->room.len);
		if (p && p->resuming) {
			p->resuming = 0;
			if (cli__list_find(&cli->joined, m->room.ptr,
			                   m->room.len) < 0)
				pos_remove(cli, m->room);
		}
		return 0;
	}
	default:
		return 0;
	}
}

/* ---- the calls ------------------------------------------------------------ */

TCPCHAT_API int tcpchat_client_history(tcpchat_client *cli, const char *room,
                                       int how, uint64_t seq, uint32_t limit)
{
	if (!cli || how < TCPCHAT_HISTORY_LATEST ||
	    how > TCPCHAT_HISTORY_BEFORE)
		return TCPCHAT_EINVAL;
	int rc = room ? cli__room_arg(room) : 0;
	if (rc)
		return rc;
	tcpchat_msg m = {.type = TCPCHAT_MSG_HISTORY};
	m.room = cli__str(room);
	m.code = limit;
	if (how != TCPCHAT_HISTORY_LATEST) {
		m.flags = how == TCPCHAT_HISTORY_AFTER ? TCPCHAT_MSGF_AFTER
		                                       : TCPCHAT_MSGF_BEFORE;
		m.seq = seq;
	}
	return cli__post(cli, &m, CC_HIST, NULL);
}

TCPCHAT_API int tcpchat_client_room_resume(tcpchat_client *cli,
                                           const char *room, uint64_t epoch,
                                           uint64_t after_seq)
{
	return cli__post_join(cli, room, CC_RESUME, epoch, after_seq);
}

TCPCHAT_API int tcpchat_client_room_position(tcpchat_client *cli,
                                             const char *room, uint64_t *epoch,
                                             uint64_t *seq)
{
	if (!cli || !room)
		return TCPCHAT_EINVAL;
	size_t n = strlen(room);
	struct cpos *p = cli__pos_find(cli, room, n);
	if (!p || cli__list_find(&cli->joined, room, n) < 0)
		return TCPCHAT_ENOTMEMBER;
	if (epoch)
		*epoch = p->epoch;
	if (seq)
		*seq = p->seq;
	return 0;
}
