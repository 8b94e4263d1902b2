/* libtcpchat - fan-out: a message is encoded once per codec and protocol
 * version in use, and the frame is shared by every recipient's queue;
 * recipients are every user, a room's members, or the users who share a
 * room with someone; queues are flushed once, at the end of the loop
 * iteration, with one batched write each; the slow-consumer policy decides
 * what a full queue means. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "server_int.h"

struct frame *srv__encode(tcpchat_server *srv, const tcpchat_codec *codec,
                          const tcpchat_msg *m)
{
	srv->sh.enc.len = 0;
	if (codec->encode(codec->codec_data, m, TCPCHAT_FROM_SERVER,
	                  &srv->sh.enc) != 0)
		return NULL;
	return frame__new(srv->sh.enc.data, srv->sh.enc.len);
}

void srv__want_flush(tcpchat_server *srv, struct sconn *sc)
{
	if (!sc->in_flush) {
		sc->in_flush = 1;
		sc->fnext = srv->flush_head;
		srv->flush_head = sc;
	}
}

/* Closes sc because of a failed delivery (err: TCPCHAT_ESLOW or an
 * allocation failure).  Inside a fan-out the close waits until the
 * outermost one is over: closing fans out a LEAVE, which may close more
 * connections, and those must not be unlinked from the member list while
 * a fan-out is walking it. */
static void close_later(tcpchat_server *srv, struct sconn *sc, int err)
{
	if (sc->doomed)
		return;
	if (!srv->fanning) {
		srv__close(sc,
		           err == TCPCHAT_ESLOW ? TCPCHAT_REASON_SLOW
		                                : TCPCHAT_REASON_ERROR,
		           err,
		           err == TCPCHAT_ESLOW ? "too slow to keep up"
		                                : "out of memory");
		return;
	}
	sc->doomed = (uint8_t)-err; /* the codes are -1 .. -127 */
	sc->cnext = srv->close_head;
	srv->close_head = sc;
}

/* Carries out the closes put off by close_later(). */
static void close_doomed(tcpchat_server *srv)
{
	if (srv->reaping)
		return; /* the loop below picks up new ones */
	srv->reaping = 1;
	while (srv->close_head) {
		struct sconn *sc = srv->close_head;
		srv->close_head = sc->cnext;
		sc->cnext = NULL;
		int err = -(int)sc->doomed;
		sc->doomed = 0;
		close_later(srv, sc, err);
	}
	srv->reaping = 0;
}

static int push(tcpchat_server *srv, struct sconn *sc, struct frame *f)
{
	return conn__push(&sc->c, &srv->sh, f, (uint32_t)srv->queue_frames,
	                  (size_t)srv->queue_bytes);
}

void srv__deliver(tcpchat_server *srv, struct sconn *sc, struct frame *f)
{
	if (sc->doomed)
		return; /* closing: nothing more is queued */
	int rc = push(srv, sc, f);
	if (rc == TCPCHAT_EQUEUEFULL && !(sc->c.w.events & LOOP_WRITE)) {
		/* Output is flushed at the end of the iteration, so a fast
		 * reader's queue can fill within one burst of input.  It is
		 * only full if the socket takes nothing more either. */
		size_t bytes, frames;
		int frc = conn__flush(&sc->c, &srv->sh, &bytes, &frames);
		srv->st.bytes_out += bytes;
		sc->out_bytes += bytes;
		sc->out_frames += (uint32_t)frames;
		if (frc < 0) {
			srv__want_flush(srv, sc); /* flush_all() closes it */
			return;
		}
		if (frc == 1)
			srv__set_events(srv, sc, LOOP_READ | LOOP_WRITE);
		rc = push(srv, sc, f);
	}
	if (rc == TCPCHAT_EQUEUEFULL) {
		sc->dropped++;
		sc->drops_new++;
		srv->st.dropped++;
		if (srv->policy == TCPCHAT_SLOW_DISCONNECT) {
			close_later(srv, sc, TCPCHAT_ESLOW);
			return;
		}
		srv__want_flush(srv, sc); /* reports the drop */
		if (srv->policy == TCPCHAT_SLOW_DROP_OLDEST &&
		    conn__drop_oldest(&sc->c))
			rc = push(srv, sc, f);
		if (rc == TCPCHAT_EQUEUEFULL)
			return;
	}
	if (rc) {
		close_later(srv, sc, rc);
		return;
	}
	srv->st.out++;
	srv__want_flush(srv, sc);
}

/* Queues the control frame f (kept by the queue: the caller keeps its
 * own reference) outside the queue limits.  Returns 0, or an error after
 * which sc is closed. */
static int push_control(tcpchat_server *srv, struct sconn *sc, struct frame *f,
                        uint32_t type)
{
	int rc = f ? conn__push(&sc->c, &srv->sh, f, UINT32_MAX, SIZE_MAX)
	           : TCPCHAT_ENOMEM;
	if (rc == 0) {
		srv->st.out++;
		srv__want_flush(srv, sc);
		return 0;
	}
	srv__log(srv, TCPCHAT_LOG_ERROR, "conn %llu: cannot queue a %s: %s",
	         (unsigned long long)sc->id, tcpchat_msg_type_name(type),
	         tcpchat_strerror(rc));
	if (sc->state != S_DEAD)
		close_later(srv, sc, TCPCHAT_ENOMEM);
	return rc;
}

/* Sends one control message to one connection: no queue limit, so an
 * ERROR or a WELCOME is never lost to the slow-consumer policy. */
void srv__send_one(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m)
{
	struct frame *f = srv__encode(srv, sc->c.codec, m);
	push_control(srv, sc, f, m->type);
	frame__unref(f);
}

void srv__deliver_control(tcpchat_server *srv, struct sconn *sc,
                          struct frame *f)
{
	push_control(srv, sc, f, TCPCHAT_MSG_ACK);
}

/* What a protocol-1 peer gets of m, in *out: the same message without
 * the protocol-2 fields, so that its frames are those of protocol 1.
 * Returns 0 when it gets nothing (a private message, a type it does not
 * know). */
static int proto1_view(const tcpchat_msg *m, tcpchat_msg *out)
{
	if (m->type > TCPCHAT_MSG_WHO || m->target.len)
		return 0;
	*out = *m;
	out->room.ptr = NULL;
	out->room.len = 0;
	out->flags = 0;
	out->seq = out->epoch = 0;
	if (m->type == TCPCHAT_MSG_JOIN)
		out->code = 0;
	if (m->type == TCPCHAT_MSG_LEAVE) {
		/* Protocol 1 knew no part: leaving its one room is a quit;
		 * and only a kick had a reason in words. */
		if (m->code == TCPCHAT_REASON_PART)
			out->code = TCPCHAT_REASON_QUIT;
		if (m->code != TCPCHAT_REASON_KICKED) {
			out->body.ptr = NULL;
			out->body.len = 0;
		}
	}
	return 1;
}

/* One message on its way to many recipients: encoded at most once per
 * codec and protocol version, the frame shared by every queue. */
struct fan {
	const tcpchat_msg *m;
	tcpchat_msg v1;
	int v1_ok;
	struct frame *f[MAX_CODECS][2]; /* [codec slot][protocol 2?] */
	uint8_t bad[MAX_CODECS][2];
};

static void fan_init(tcpchat_server *srv, struct fan *fan, const tcpchat_msg *m)
{
	memset(fan->f, 0, sizeof fan->f);
	memset(fan->bad, 0, sizeof fan->bad);
	fan->m = m;
	fan->v1_ok = proto1_view(m, &fan->v1);
	srv->fanning++; /* nobody leaves a list during a walk */
}

static inline void fan_to(tcpchat_server *srv, struct fan *fan,
                          struct sconn *sc)
{
	int v = sc->proto >= 2, slot = sc->codec_slot;
	if (!v && !fan->v1_ok)
		return;
	struct frame *f = fan->f[slot][v];
	if (!f && !fan->bad[slot][v]) {
		f = srv__encode(srv, sc->c.codec, v ? fan->m : &fan->v1);
		fan->f[slot][v] = f;
		fan->bad[slot][v] = f == NULL;
		if (!f)
			srv__log(srv, TCPCHAT_LOG_ERROR,
			         "codec %s cannot encode a %s message",
			         sc->c.codec->name,
			         tcpchat_msg_type_name((int)fan->m->type));
	}
	if (f)
		srv__deliver(srv, sc, f);
	else
		srv->st.dropped++; /* counted: nothing goes silently */
}

static void fan_done(tcpchat_server *srv, struct fan *fan)
{
	srv->fanning--;
	for (int i = 0; i < srv->ncodecs; i++) {
		frame__unref(fan->f[i][0]);
		frame__unref(fan->f[i][1]);
	}
	if (!srv->fanning)
		close_doomed(srv);
}

/* To every joined user. */
void srv__fanout(tcpchat_server *srv, const tcpchat_msg *m,
                 const struct sconn *except)
{
	struct fan fan;
	fan_init(srv, &fan, m);
	struct dlist *it;
	for (it = srv->members.next; it != &srv->members; it = it->next) {
		struct sconn *sc = CONTAINER(it, struct sconn, member);
		if (sc != except)
			fan_to(srv, &fan, sc);
	}
	fan_done(srv, &fan);
}

/* To every member of room r. */
void srv__fanout_room(tcpchat_server *srv, struct room *r, const tcpchat_msg *m,
                      const struct sconn *except)
{
	struct fan fan;
	fan_init(srv, &fan, m);
	struct dlist *it;
	for (it = r->members.next; it != &r->members; it = it->next) {
		struct sconn *sc = CONTAINER(it, struct member, link)->sc;
		if (sc != except)
			fan_to(srv, &fan, sc);
	}
	fan_done(srv, &fan);
}

/* Once to every user who shares a room with sc in which presence is
 * announced (at most ANNOUNCE_MAX members), not to sc: a user in three
 * of those rooms gets it once.  Each recipient is marked with this
 * fan-out's generation. */
void srv__fanout_rooms_of(tcpchat_server *srv, struct sconn *sc,
                          const tcpchat_msg *m)
{
	struct fan fan;
	fan_init(srv, &fan, m);
	uint32_t gen = ++srv->mark;
	if (gen == 0) { /* wrapped: no mark may look current */
		struct dlist *it;
		for (it = srv->members.next; it != &srv->members; it = it->next)
			CONTAINER(it, struct sconn, member)->mark = 0;
		gen = srv->mark = 1;
	}
	sc->mark = gen;
	for (struct member *mb = sc->rooms; mb; mb = mb->unext) {
		struct room *r = mb->room;
		if (r->nmembers > (uint64_t)srv->announce_max)
			continue;
		struct dlist *it;
		for (it = r->members.next; it != &r->members; it = it->next) {
			struct sconn *u =
			        CONTAINER(it, struct member, link)->sc;
			if (u->mark != gen) {
				u->mark = gen;
				fan_to(srv, &fan, u);
			}
		}
	}
	fan_done(srv, &fan);
}

void srv__fanout_room_list(tcpchat_server *srv, struct room *const *rooms,
                           size_t n, const tcpchat_msg *m)
{
	struct fan fan;
	fan_init(srv, &fan, m);
	uint32_t gen = ++srv->mark;
	if (gen == 0) {
		struct dlist *it;
		for (it = srv->members.next; it != &srv->members; it = it->next)
			CONTAINER(it, struct sconn, member)->mark = 0;
		gen = srv->mark = 1;
	}
	for (size_t i = 0; i < n; i++) {
		struct dlist *it;
		for (it = rooms[i]->members.next; it != &rooms[i]->members;
		     it = it->next) {
			struct sconn *u =
			        CONTAINER(it, struct member, link)->sc;
			if (u->mark != gen) {
				u->mark = gen;
				fan_to(srv, &fan, u);
			}
		}
	}
	fan_done(srv, &fan);
}

/* To one user, within its queue limits (a chat message, not a control
 * message: see srv__send_one). */
void srv__send_to(tcpchat_server *srv, struct sconn *sc, const tcpchat_msg *m)
{
	struct fan fan;
	fan_init(srv, &fan, m);
	fan_to(srv, &fan, sc);
	fan_done(srv, &fan);
}

void srv__do_flush(tcpchat_server *srv, struct sconn *sc)
{
	size_t bytes, frames;
	int rc = conn__flush(&sc->c, &srv->sh, &bytes, &frames);
	srv->st.bytes_out += bytes;
	sc->out_bytes += bytes;
	sc->out_frames += (uint32_t)frames;
	if (frames)
		srv__note_freed(srv, bytes); /* written frames go back */
	if (rc < 0) {
		if (sc->state != S_DEAD)
			srv__lost(sc, rc);
		return;
	}
	srv__set_events(srv, sc, LOOP_READ | (rc == 1 ? LOOP_WRITE : 0));
}

/* Logs the drops of sc since the last report (once per flush at most). */
static void report_drops(tcpchat_server *srv, struct sconn *sc)
{
	static const char *const policy[] = {"drop-newest", "drop-oldest",
	                                     "disconnect"};
	uint32_t n = sc->drops_new;
	sc->drops_new = 0;
	if (!srv__logs(srv, TCPCHAT_LOG_DEBUG))
		return;
	char who[SRV_WHO_MAX];
	srv__log(srv, TCPCHAT_LOG_DEBUG,
	         "%s: dropped %" PRIu32 " frames (queue full, %s), %" PRIu64
	         " in all",
	         srv__who(sc, who, sizeof who), n,
	         policy[srv->policy >= 0 && srv->policy < 3 ? srv->policy : 0],
	         sc->dropped);
}

/* End of an iteration: flush every connection that got output, report
 * drops, free closed connections. */
void srv__flush_all(tcpchat_server *srv)
{
	while (srv->flush_head) {
		struct sconn *list = srv->flush_head;
		srv->flush_head = NULL;
		while (list) {
			struct sconn *sc = list;
			list = sc->fnext;
			sc->in_flush = 0;
			sc->fnext = NULL;
			if (sc->state == S_DEAD) {
				size_t b, f;
				if (!conn__drained(&sc->c)) {
					conn__flush(&sc->c, &srv->sh, &b, &f);
					srv->st.bytes_out += b;
				}
				sc->fnext = srv->dead_head;
				srv->dead_head = sc;
				continue;
			}
			if (!(sc->c.w.events & LOOP_WRITE))
				srv__do_flush(srv, sc);
			if (sc->drops_new && sc->state != S_DEAD) {
				report_drops(srv, sc);
				tcpchat_server_event ev;
				srv__conn_event(sc, &ev, TCPCHAT_SEV_DROP);
				ev.dropped = sc->dropped;
				srv__emit(srv, &ev);
			}
		}
	}
	while (srv->dead_head) {
		struct sconn *sc = srv->dead_head;
		srv->dead_head = sc->fnext;
		srv__free(srv, sc);
	}
}
