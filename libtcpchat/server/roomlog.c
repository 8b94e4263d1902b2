/* libtcpchat - a room's log: its sequence numbers, its history, and the
 * way a text gets there.
 *
 * Every TEXT posted to a room gets the room's next sequence number (from
 * 1, one more per accepted text, never given twice in an epoch), so a
 * member sees a gap at once.  The epoch names the history those numbers
 * belong to: drawn at random when the server is created (or set with
 * TCPCHAT_SOPT_EPOCH, or kept in the durable store), so that "seq 17" of
 * a server that lost its history is told from "seq 17" before it.  It
 * comes once per room with the WELCOME and each JOIN, where the room's
 * last number says where the member's view starts, and with each ACK
 * and HISTORY answer, not with every text.
 *
 * Without a store, a text is numbered, kept in the room's history, fanned
 * out and acknowledged at once.  With one (durable.c), it is numbered
 * when its batch goes to the disk, and kept, fanned out and acknowledged
 * when that batch is committed: so nobody ever sees a number the disk
 * does not have.  Numbers are given here only, on the loop thread, after
 * the application accepted the text. */
#include "server_int.h"

void srv__roomlog_epoch(tcpchat_server *srv)
{
	uint64_t key[2];
	util__random_key(key);
	/* 1..2^63-1: it is also an option, a long long */
	srv->epoch = (long long)((key[0] ^ key[1]) >> 1);
	if (srv->epoch == 0)
		srv->epoch = 1; /* 0 means "no epoch" on the wire */
}

void srv__room_publish(tcpchat_server *srv, struct room *r,
                       const tcpchat_msg *m, const struct sconn *except)
{
	srv__hist_add(srv, r, m);
	srv__fanout_room(srv, r, m, except);
}

void srv__room_post(tcpchat_server *srv, struct room *r, tcpchat_msg *m,
                    struct sconn *from, tcpchat_str ref)
{
	srv__room_stamp(srv, r, m);
	if (srv->cl) {
		srv__cluster_post(srv, r, m, from, ref);
		return;
	}
	if (srv->durable) {
		srv__durable_post(srv, r, m, from, ref);
		return;
	}
	m->seq = ++r->last_seq;
	srv__room_publish(srv, r, m, from);
	if (ref.len && from && from->state == S_JOINED) {
		m->ref = ref;
		srv__ack_send(srv, from, srv__ack_new(srv, from, m, 0), m);
		m->ref.ptr = NULL;
		m->ref.len = 0;
	}
}

void srv__room_mark(const tcpchat_server *srv, const struct room *r,
                    tcpchat_msg *m)
{
	m->seq = r->last_seq;
	m->epoch = (uint64_t)srv->epoch;
}
