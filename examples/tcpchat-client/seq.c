/* tcpchat-client - where each room stands: the last text seen, to tell
 * the user about texts missed, and the rooms whose history to show once
 * the join is confirmed.
 * SPDX-License-Identifier: MIT
 *
 * The positions belong to the loop thread; the list of wanted histories
 * is shared with the main thread under G.out. */
#include <stdio.h>
#include <string.h>

#include "app.h"

#define SEQ_ROOMS 64 /* rooms tracked; beyond that, no gap lines */

struct pos {
	char room[TCPCHAT_ROOM_MAX + 1];
	uint64_t epoch, seq;
};
static struct pos pos[SEQ_ROOMS];
static int npos;

/* Rooms joined from the command line or with /join whose confirmation
 * is still to come. */
static char wanted[ROOMS_MAX * 2][TCPCHAT_ROOM_MAX + 1];
static int nwanted;

static struct pos *find(tcpchat_str room, int add)
{
	if (!room.len || room.len > TCPCHAT_ROOM_MAX)
		return NULL;
	for (int i = 0; i < npos; i++)
		if (strlen(pos[i].room) == room.len &&
		    !memcmp(pos[i].room, room.ptr, room.len))
			return &pos[i];
	if (!add || npos == SEQ_ROOMS)
		return NULL;
	struct pos *p = &pos[npos++];
	memcpy(p->room, room.ptr, room.len);
	p->room[room.len] = '\0';
	p->epoch = p->seq = 0;
	return p;
}

void seq_forget(tcpchat_str room)
{
	struct pos *p = find(room, 0);
	if (p)
		*p = pos[--npos];
}

void seq_mark(tcpchat_client *cli, tcpchat_str room)
{
	struct pos *p = find(room, 1);
	if (p &&
	    tcpchat_client_room_position(cli, p->room, &p->epoch, &p->seq) != 0)
		p->epoch = p->seq = 0;
}

void seq_set(tcpchat_str room, uint64_t epoch, uint64_t seq)
{
	struct pos *p = find(room, 1);
	if (!p || !seq)
		return;
	if (epoch && p->epoch && epoch != p->epoch)
		p->seq =
		        0; /* a new history: numbers from before mean nothing */
	if (epoch)
		p->epoch = epoch;
	if (seq > p->seq)
		p->seq = seq;
}

uint64_t seq_text(tcpchat_str room, uint64_t epoch, uint64_t seq)
{
	struct pos *p = find(room, 1);
	if (!p || !seq)
		return 0;
	uint64_t missed = 0;
	int same = !epoch || !p->epoch || epoch == p->epoch;
	if (same && p->seq && seq > p->seq + 1)
		missed = seq - p->seq - 1;
	if (!same)
		p->seq = 0;
	if (epoch)
		p->epoch = epoch;
	if (seq > p->seq)
		p->seq = seq;
	return missed;
}

void seq_want_history(const char *room)
{
	if (!G.history || !room || !*room)
		return;
	pthread_mutex_lock(&G.out);
	if (nwanted < (int)(sizeof wanted / sizeof wanted[0]))
		snprintf(wanted[nwanted++], sizeof wanted[0], "%s", room);
	pthread_mutex_unlock(&G.out);
}

int seq_take_history(tcpchat_str room)
{
	int found = 0;
	pthread_mutex_lock(&G.out);
	for (int i = 0; i < nwanted && !found; i++) {
		if (strlen(wanted[i]) != room.len ||
		    memcmp(wanted[i], room.ptr, room.len))
			continue;
		memmove(wanted[i], wanted[i + 1],
		        (size_t)(nwanted - i - 1) * sizeof wanted[0]);
		nwanted--;
		found = 1;
	}
	pthread_mutex_unlock(&G.out);
	return found;
}
