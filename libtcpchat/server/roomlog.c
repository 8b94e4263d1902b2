/* libtcpchat - a room's log: its sequence numbers.
 *
 * Every TEXT posted to a room gets the room's next sequence number (from
 * 1, one more per accepted text, never given twice in an epoch), so a
 * member sees a gap at once.  The epoch names the history those numbers
 * belong to: drawn at random when the server is created (or set with
 * TCPCHAT_SOPT_EPOCH), so that "seq 17" of a server that started again
 * is told from "seq 17" before it.  It changes only with the server, so
 * it comes once per room with the WELCOME and each JOIN, where the
 * room's last number says where the member's view starts, and not with
 * every text.  Numbers are given here only, on the loop thread, after
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

void srv__room_post(tcpchat_server *srv, struct room *r, tcpchat_msg *m)
{
	srv__room_stamp(srv, r, m);
	m->seq = ++r->last_seq;
}

void srv__room_mark(const tcpchat_server *srv, const struct room *r,
                    tcpchat_msg *m)
{
	m->seq = r->last_seq;
	m->epoch = (uint64_t)srv->epoch;
}
