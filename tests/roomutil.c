/* Helpers for the protocol-2 integration suites: see roomutil.h. */
#include "roomutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- logging in ---------------------------------------------------------- */

static void login_v2(struct tu_peer *p, int port, const tcpchat_codec *codec,
                     const char *name)
{
	int rc = tu_peer_login(p, port, codec, name, 2, TU_CAPS2, NULL);
	ck_assert_msg(rc == 0, "login of %s: %d", name, rc);
}

void ru_login_bin(struct tu_peer *p, int port, const char *name)
{
	login_v2(p, port, tcpchat_codec_binary(), name);
}

void ru_login_json(struct tu_peer *p, int port, const char *name)
{
	login_v2(p, port, tcpchat_codec_json(), name);
}

void ru_login_line(struct tu_peer *p, int port, const char *name)
{
	char want[64], got[256];
	ck_assert_int_eq(tu_peer_connect(p, port, tcpchat_codec_line(), 0), 0);
	ck_assert_int_eq(tu_peer_send_line(p, name), 0);
	ck_assert_int_eq(tu_peer_line(p, got, sizeof got, TU_TIMEOUT), 1);
	ck_assert_str_eq(got, TU_LINE_GREETING);
	snprintf(want, sizeof want, "=== welcome %s", name);
	ck_assert_int_eq(tu_peer_line(p, got, sizeof got, TU_TIMEOUT), 1);
	ck_assert_str_eq(got, want);
}

/* ---- receiving ----------------------------------------------------------- */

int ru_str_is(const char *have, const char *want)
{
	return !want || strcmp(have, want) == 0;
}

void ru_want(struct tu_peer *p, uint32_t type, const char *sender,
             const char *room, struct tu_msg *m)
{
	for (;;) {
		int rc = tu_peer_recv(p, m, TU_TIMEOUT);
		ck_assert_msg(rc == 1, "waiting for a %s from %s in %s: rc %d",
		              tcpchat_msg_type_name(type),
		              sender ? sender : "anyone",
		              room ? room : "any room", rc);
		if (m->type == type && ru_str_is(m->sender, sender) &&
		    ru_str_is(m->room, room))
			return;
	}
}

void ru_want_error_or(struct tu_peer *p, uint32_t code, uint32_t alt,
                      struct tu_msg *m)
{
	struct tu_msg own;
	if (!m)
		m = &own;
	ru_want(p, TCPCHAT_MSG_ERROR, NULL, NULL, m);
	ck_assert_msg(m->code == code || (alt && m->code == alt),
	              "error %u '%s', expected %u", m->code, m->body, code);
	ck_assert_msg((m->flags & TCPCHAT_MSGF_CLOSING) == 0,
	              "error %u '%s' closes the connection", m->code, m->body);
}

void ru_want_error(struct tu_peer *p, uint32_t code, struct tu_msg *m)
{
	ru_want_error_or(p, code, 0, m);
}

/* ---- requests ------------------------------------------------------------ */

void ru_send_join(struct tu_peer *p, const char *room)
{
	ck_assert_int_eq(tu_peer_send(p, TCPCHAT_MSG_JOIN, 0, room, NULL, NULL),
	                 0);
}

uint32_t ru_join(struct tu_peer *p, const char *name, const char *room)
{
	struct tu_msg m;
	ru_send_join(p, room);
	ru_want(p, TCPCHAT_MSG_JOIN, name, room, &m);
	return m.code;
}

void ru_part(struct tu_peer *p, const char *name, const char *room,
             const char *reason)
{
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_send(p, TCPCHAT_MSG_LEAVE, TCPCHAT_REASON_PART,
	                              room, NULL, reason),
	                 0);
	ru_want(p, TCPCHAT_MSG_LEAVE, name, room, &m);
	ck_assert_uint_eq(m.code, TCPCHAT_REASON_PART);
}

void ru_send_room(struct tu_peer *p, const char *room, const char *text)
{
	ck_assert_int_eq(tu_peer_send(p, TCPCHAT_MSG_TEXT, 0, room, NULL, text),
	                 0);
}

void ru_send_topic(struct tu_peer *p, const char *room, const char *text)
{
	ck_assert_int_eq(
	        tu_peer_send(p, TCPCHAT_MSG_TOPIC, 0, room, NULL, text), 0);
}

void ru_still_here(struct tu_peer *p)
{
	struct tu_msg m;
	ck_assert_int_eq(tu_peer_send(p, TCPCHAT_MSG_WHO, 0, NULL, NULL, NULL),
	                 0);
	ru_want(p, TCPCHAT_MSG_WHO, NULL, "", &m);
}

/* ---- markers ------------------------------------------------------------- */

void ru_mark(tcpchat_server *srv, const char *marker)
{
	ck_assert_int_eq(tcpchat_server_broadcast(srv, marker, strlen(marker)),
	                 0);
}

struct tu_msg ru_seen[RU_SEEN_MAX];

int ru_upto(struct tu_peer *p, const char *marker)
{
	struct tu_msg m;
	int n = 0;
	for (;;) {
		int rc = tu_peer_recv(p, &m, TU_TIMEOUT);
		ck_assert_msg(rc == 1, "no marker '%s' (rc %d)", marker, rc);
		if (m.type == TCPCHAT_MSG_TEXT && m.sender[0] == '\0' &&
		    m.room[0] == '\0' && strcmp(m.body, marker) == 0)
			return n;
		if (n < RU_SEEN_MAX)
			ru_seen[n] = m;
		n++;
	}
}

int ru_count_seen(int n, uint32_t type, const char *sender, const char *room)
{
	int k = 0;
	for (int i = 0; i < n && i < RU_SEEN_MAX; i++)
		if (ru_seen[i].type == type &&
		    ru_str_is(ru_seen[i].sender, sender) &&
		    ru_str_is(ru_seen[i].room, room))
			k++;
	return k;
}

/* ---- line and JSON Lines peers ------------------------------------------- */

int ru_lines_upto(struct tu_peer *p, const char *marker, const char *prefix)
{
	char want_line[256], got[8192];
	int k = 0;
	snprintf(want_line, sizeof want_line, "*** %s", marker);
	for (;;) {
		int rc = tu_peer_line(p, got, sizeof got, TU_TIMEOUT);
		ck_assert_msg(rc == 1, "no marker line '%s' (rc %d)", want_line,
		              rc);
		if (strcmp(got, want_line) == 0)
			return k;
		if (prefix && strncmp(got, prefix, strlen(prefix)) == 0)
			k++;
	}
}

void ru_next_line(struct tu_peer *p, const char *want_line)
{
	char got[8192];
	ck_assert_int_eq(tu_peer_line(p, got, sizeof got, TU_TIMEOUT), 1);
	ck_assert_str_eq(got, want_line);
}

void ru_next_line_prefix(struct tu_peer *p, const char *prefix)
{
	char got[8192];
	ck_assert_int_eq(tu_peer_line(p, got, sizeof got, TU_TIMEOUT), 1);
	ck_assert_msg(strncmp(got, prefix, strlen(prefix)) == 0,
	              "line '%s' does not start with '%s'", got, prefix);
}

long long ru_json_num(const char *line, const char *key)
{
	char k[32];
	snprintf(k, sizeof k, "\"%s\":", key);
	const char *p = strstr(line, k);
	ck_assert_msg(p != NULL, "no %s in %s", key, line);
	return strtoll(p + strlen(k), NULL, 10);
}

void ru_json_line(struct tu_peer *p, const char *want_tpl)
{
	char got[4096], want_line[4096];
	size_t k = 0;
	ck_assert_int_eq(tu_peer_line(p, got, sizeof got, TU_TIMEOUT), 1);
	for (const char *t = want_tpl; *t && k + 32 < sizeof want_line;) {
		if (strncmp(t, "@ID", 3) == 0 || strncmp(t, "@TS", 3) == 0) {
			k += (size_t)snprintf(
			        want_line + k, sizeof want_line - k, "%lld",
			        ru_json_num(got, t[1] == 'I' ? "id" : "ts"));
			t += 3;
		} else {
			want_line[k++] = *t++;
		}
	}
	want_line[k] = '\0';
	ck_assert_str_eq(got, want_line);
}

/* ---- servers ------------------------------------------------------------- */

void ru_server_option(tcpchat_server *srv, int opt, long long v)
{
	ck_assert_int_eq(tcpchat_server_set_option(srv, opt, v), 0);
}

tcpchat_server *ru_server_new(int *port)
{
	const tcpchat_codec *c = tcpchat_codec_binary();
	tcpchat_server *srv = tu_server_new_codecs(&c, 1, port);
	ck_assert_ptr_nonnull(srv);
	return srv;
}

tcpchat_server *ru_server_epoch(int *port, int *json_port, long long epoch)
{
	const tcpchat_codec *codecs[] = {tcpchat_codec_binary(),
	                                 tcpchat_codec_json()};
	int ports[2];
	tcpchat_server *srv =
	        tu_server_new_codecs(codecs, json_port ? 2 : 1, ports);
	ck_assert_ptr_nonnull(srv);
	*port = ports[0];
	if (json_port)
		*json_port = ports[1];
	ru_server_option(srv, TCPCHAT_SOPT_EPOCH, epoch);
	return srv;
}

void ru_server_go(tcpchat_server *srv)
{
	ck_assert_int_eq(tcpchat_server_start(srv), 0);
}

struct stat_cond {
	tcpchat_server *srv;
	uint64_t users, rooms;
};

static int stats_reached(void *arg)
{
	struct stat_cond *c = arg;
	tcpchat_server_stats s = tu_stats(c->srv);
	return (c->users == UINT64_MAX || s.users == c->users) &&
	       (c->rooms == UINT64_MAX || s.rooms == c->rooms);
}

int ru_wait_stats(tcpchat_server *srv, uint64_t users, uint64_t rooms)
{
	struct stat_cond c = {srv, users, rooms};
	return tu_wait_until(stats_reached, &c, TU_TIMEOUT);
}

void ru_finish(tcpchat_server *srv, struct tu_peer *const *peers, int n)
{
	for (int i = 0; i < n; i++)
		tu_peer_close(peers[i]);
	tu_server_stop(srv);
}

void ru_copy_view(char *dst, size_t cap, tcpchat_str s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	if (n)
		memcpy(dst, s.ptr, n);
	dst[n] = '\0';
}
