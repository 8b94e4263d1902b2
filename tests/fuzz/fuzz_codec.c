/* libFuzzer harness for the built-in codecs.  See README in this folder.
 *
 * The first input byte picks the mode:
 *   bit 7 clear: decode mode.  (byte % 3) picks the codec, ((byte / 3) % 4)
 *     the decode flags (FROM_SERVER, HANDSHAKE) and ((byte / 12) % 4) the
 *     frame limit.  The rest is decoded frame by frame, like a connection
 *     would, until need-more or an error.  Every frame is also decoded from
 *     an exact-size copy and from a strict prefix (which must ask for more,
 *     with a ctx->need no larger than the frame); every message is
 *     re-encoded with the same codec and direction, and the re-encoding
 *     must decode to the same message, every field of codec abi 2
 *     included.  A binary message must also survive JSON and a JSON one
 *     binary, when the other codec can express it.  A line message may
 *     only hold what its line form carries (line_fields_ok()).
 *   bit 7 set: encode mode.  The rest is cut into a message with arbitrary
 *     strings, numbers, flags and type (any 0..255, or TCPCHAT_MSG_UNKNOWN,
 *     256, UINT32_MAX), which every codec encodes in both directions; the
 *     codec must refuse exactly what it cannot express, and otherwise the
 *     result must be a single frame that decodes back (for line: to what
 *     line_expect() says, when the names are names).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tcpchat/tcpchat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			        __LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

#define BIG_FRAME ((size_t)1 << 30)

static const size_t limits[] = {65536, 64, 300, 4096};

static const tcpchat_codec *pick(unsigned i)
{
	switch (i % 3) {
	case 0:
		return tcpchat_codec_binary();
	case 1:
		return tcpchat_codec_line();
	default:
		return tcpchat_codec_json();
	}
}

/* Decodes data[0..len) from an exact-size heap copy with an exact-size
 * scratch buffer.  The copy and scratch stay alive in *copy / *scratch
 * (free them after using the message).  *need (if not NULL) receives
 * ctx->need. */
static long decode_copy(const tcpchat_codec *c, const void *data, size_t len,
                        unsigned flags, size_t max_frame, tcpchat_msg *m,
                        char **copy, char **scratch, const char **error,
                        size_t *need)
{
	size_t slen = len < max_frame ? len : max_frame;
	tcpchat_decode_ctx ctx;
	long rc;

	*copy = malloc(len ? len : 1);
	*scratch = malloc(slen ? slen : 1);
	CHECK(*copy && *scratch);
	if (len)
		memcpy(*copy, data, len);
	memset(m, 0, sizeof(*m));
	memset(&ctx, 0, sizeof(ctx));
	ctx.flags = flags;
	ctx.max_frame = max_frame;
	ctx.scratch = *scratch;
	ctx.scratch_len = slen;
	rc = c->decode(c->codec_data, *copy, len, m, &ctx);
	if (rc < 0) {
		CHECK(rc == TCPCHAT_EPROTO || rc == TCPCHAT_EMSGSIZE);
		CHECK(ctx.error && ctx.error[0]);
	}
	CHECK(rc <= (long)len);
	if (rc == 0) {
		/* the built-in codecs always know a little more is needed,
		 * and never more than the limit allows */
		CHECK(ctx.need > len);
		CHECK(ctx.need <= max_frame);
	}
	if (error)
		*error = ctx.error;
	if (need)
		*need = ctx.need;
	return rc;
}

static int str_eq(tcpchat_str a, tcpchat_str b)
{
	return a.len == b.len &&
	       (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The numbers and the type agree (every field but the strings). */
static int nums_eq(const tcpchat_msg *a, const tcpchat_msg *b)
{
	return a->type == b->type && a->code == b->code && a->id == b->id &&
	       a->timestamp == b->timestamp && a->flags == b->flags &&
	       a->caps == b->caps && a->max_frame == b->max_frame &&
	       a->queue_frames == b->queue_frames &&
	       a->queue_bytes == b->queue_bytes && a->seq == b->seq &&
	       a->epoch == b->epoch && a->first == b->first &&
	       a->last == b->last && a->oldest == b->oldest;
}

static int msg_eq(const tcpchat_msg *a, const tcpchat_msg *b)
{
	return nums_eq(a, b) && str_eq(a->sender, b->sender) &&
	       str_eq(a->body, b->body) && str_eq(a->room, b->room) &&
	       str_eq(a->target, b->target) && str_eq(a->ref, b->ref) &&
	       str_eq(a->cursor, b->cursor);
}

static int all_utf8(const tcpchat_msg *m)
{
	return tcpchat_utf8_valid(m->sender.ptr, m->sender.len) &&
	       tcpchat_utf8_valid(m->body.ptr, m->body.len) &&
	       tcpchat_utf8_valid(m->room.ptr, m->room.len) &&
	       tcpchat_utf8_valid(m->target.ptr, m->target.len) &&
	       tcpchat_utf8_valid(m->ref.ptr, m->ref.len) &&
	       tcpchat_utf8_valid(m->cursor.ptr, m->cursor.len);
}

/* ---- the line codec's model ------------------------------------------ */

/* What the line codec writes for a byte: line-breaking bytes become '?'. */
static char line_clean(char c)
{
	unsigned char u = (unsigned char)c;

	return (u < 0x20 && u != '\t') || u == 0x7F ? '?' : c;
}

static int blank(char c)
{
	return c == ' ' || c == '\t';
}

static int room_ok(tcpchat_str r)
{
	return tcpchat_room_check(r.ptr, r.len) == 0;
}

static int name_ok(tcpchat_str n)
{
	return tcpchat_name_check(n.ptr, n.len) == 0;
}

static int str_is(tcpchat_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* 1 when s holds only spaces and tabs, or nothing. */
static int has_blank(tcpchat_str s)
{
	for (size_t i = 0; i < s.len; i++)
		if (blank(s.ptr[i]))
			return 1;
	return 0;
}

/* A HELLO with a credential: "NAME CREDENTIAL" must read back as one. */
static int line_hello_ok(const tcpchat_msg *m)
{
	return !m->body.len || (m->sender.len && !has_blank(m->sender) &&
	                        !blank(m->body.ptr[0]));
}

static int all_blank(tcpchat_str s)
{
	size_t i;

	for (i = 0; i < s.len; i++)
		if (!blank(s.ptr[i]))
			return 0;
	return 1;
}

/* 1 when a client line holding body (cleaned first when clean is set)
 * reads as "ROOM TEXT": a room name, a blank, then at least one byte. */
static int room_text_form(tcpchat_str body, int clean)
{
	char w[TCPCHAT_ROOM_MAX];
	size_t i = 0;

	while (i < body.len && !blank(body.ptr[i])) {
		if (i == sizeof(w))
			return 0;
		w[i] = clean ? line_clean(body.ptr[i]) : body.ptr[i];
		i++;
	}
	return i + 1 < body.len && tcpchat_room_check(w, i) == 0;
}

/* The types whose line names a room (ROOMS: only the server's). */
static int line_room_type(uint32_t type, unsigned dir)
{
	return type == TCPCHAT_MSG_TEXT || type == TCPCHAT_MSG_JOIN ||
	       type == TCPCHAT_MSG_LEAVE || type == TCPCHAT_MSG_WHO ||
	       type == TCPCHAT_MSG_TOPIC || type == TCPCHAT_MSG_HISTORY ||
	       type == TCPCHAT_MSG_KICK || (dir && type == TCPCHAT_MSG_ROOMS);
}

#define KICK_FLAGS (TCPCHAT_MSGF_BAN | TCPCHAT_MSGF_UNBAN)

/* A KICK line, either way: a room, a target, BAN or UNBAN (not both),
 * no reason with UNBAN. */
static int line_kick_ok(const tcpchat_msg *m)
{
	return m->room.len && name_ok(m->target) &&
	       (m->flags & KICK_FLAGS) != KICK_FLAGS &&
	       !((m->flags & TCPCHAT_MSGF_UNBAN) && m->body.len);
}

/* The most texts a client's "/history N" asks for. */
#define LINE_HISTORY_MAX 1000

/* What the line codec can express in direction dir (1: from the server),
 * written from the list of line forms in codec_line.c. */
static int line_can_encode(const tcpchat_msg *m, unsigned dir)
{
	if (line_room_type(m->type, dir) && m->room.len && !room_ok(m->room))
		return 0;
	if (dir) {
		switch (m->type) {
		case TCPCHAT_MSG_TEXT:
			if (!m->target.len)
				return 1;
			return !m->room.len &&
			       ((m->flags & TCPCHAT_MSGF_ECHO) ||
			        m->sender.len);
		case TCPCHAT_MSG_TOPIC:
		case TCPCHAT_MSG_HISTORY:
			return m->room.len > 0;
		case TCPCHAT_MSG_KICK:
			return line_kick_ok(m);
		case TCPCHAT_MSG_WELCOME:
		case TCPCHAT_MSG_JOIN:
		case TCPCHAT_MSG_LEAVE:
		case TCPCHAT_MSG_ERROR:
		case TCPCHAT_MSG_PING:
		case TCPCHAT_MSG_PONG:
		case TCPCHAT_MSG_WHO:
		case TCPCHAT_MSG_ROOMS:
			return 1;
		default:
			return 0;
		}
	}
	switch (m->type) {
	case TCPCHAT_MSG_HELLO:
		return line_hello_ok(m);
	case TCPCHAT_MSG_PING:
	case TCPCHAT_MSG_PONG:
	case TCPCHAT_MSG_WHO:
	case TCPCHAT_MSG_ROOMS:
		return 1;
	case TCPCHAT_MSG_TEXT:
		if (m->target.len)
			return !m->room.len && m->body.len &&
			       name_ok(m->target);
		if (m->room.len)
			return m->body.len > 0;
		return !room_text_form(m->body, 1);
	case TCPCHAT_MSG_JOIN:
	case TCPCHAT_MSG_TOPIC:
		return m->room.len > 0;
	case TCPCHAT_MSG_HISTORY:
		/* no selector on a line */
		return m->code <= LINE_HISTORY_MAX &&
		       !(m->flags & (TCPCHAT_MSGF_AFTER | TCPCHAT_MSGF_BEFORE));
	case TCPCHAT_MSG_LEAVE:
		if (m->room.len || m->code != TCPCHAT_REASON_PART ||
		    !m->body.len)
			return 1;
		return m->body.ptr[0] != '#' && !blank(m->body.ptr[0]);
	case TCPCHAT_MSG_KICK:
		return line_kick_ok(m);
	default:
		return 0;
	}
}

/* The flags a line of direction dir may carry for m: ECHO on a server's
 * private echo, HISTORY on a server's TEXT, GAP on a server's HISTORY. */
static uint32_t line_flags_carried(const tcpchat_msg *m, unsigned dir)
{
	if (dir && m->type == TCPCHAT_MSG_TEXT)
		return TCPCHAT_MSGF_HISTORY |
		       (m->target.len && !m->sender.len ? TCPCHAT_MSGF_ECHO
		                                        : 0);
	if (dir && m->type == TCPCHAT_MSG_HISTORY)
		return TCPCHAT_MSGF_GAP;
	if (m->type == TCPCHAT_MSG_KICK)
		return KICK_FLAGS;
	return 0;
}

/* A message the line decoder may produce from a line of direction flags:
 * only the fields the codec carries, for the types that carry them. */
static int line_fields_ok(const tcpchat_msg *m, unsigned flags)
{
	unsigned dir = flags & TCPCHAT_FROM_SERVER;
	int end = dir && m->type == TCPCHAT_MSG_HISTORY; /* HISTORY end */

	if (m->id || m->timestamp || m->caps || m->max_frame ||
	    m->queue_frames || m->queue_bytes || m->seq || m->epoch ||
	    m->ref.len || m->cursor.len)
		return 0;
	if (!end && (m->first || m->last || m->oldest))
		return 0;
	if (m->room.len && (!line_room_type(m->type, dir) || !room_ok(m->room)))
		return 0;
	if (m->target.len && m->type != TCPCHAT_MSG_KICK &&
	    (m->type != TCPCHAT_MSG_TEXT || m->room.len))
		return 0;
	if (m->flags & ~line_flags_carried(m, dir))
		return 0;
	if ((m->type == TCPCHAT_MSG_TOPIC || end ||
	     (!dir && m->type == TCPCHAT_MSG_JOIN)) &&
	    !m->room.len)
		return 0;
	switch (m->type) {
	case TCPCHAT_MSG_HELLO:
	case TCPCHAT_MSG_WELCOME:
		return m->code == TCPCHAT_PROTOCOL_VERSION;
	case TCPCHAT_MSG_LEAVE:
		if (dir)
			return m->code <= TCPCHAT_REASON_LOST;
		return m->code == TCPCHAT_REASON_PART ||
		       (m->code == TCPCHAT_REASON_QUIT && !m->body.len);
	case TCPCHAT_MSG_TEXT:
		/* a client names its target; a private TEXT to me has
		 * target "*" */
		if (m->target.len && !dir && !name_ok(m->target))
			return 0;
		if (m->target.len && dir && !(m->flags & TCPCHAT_MSGF_ECHO) &&
		    !str_is(m->target, "*"))
			return 0;
		return m->code == 0;
	case TCPCHAT_MSG_ERROR:
	case TCPCHAT_MSG_WHO:
	case TCPCHAT_MSG_UNKNOWN:
		return 1;
	case TCPCHAT_MSG_ROOMS:
		return dir || m->code == 0;
	case TCPCHAT_MSG_HISTORY:
		/* first and last only with texts, oldest only with GAP */
		if (dir)
			return (m->code || (!m->first && !m->last)) &&
			       ((m->flags & TCPCHAT_MSGF_GAP) || !m->oldest);
		return m->code <= LINE_HISTORY_MAX;
	case TCPCHAT_MSG_ACK:
		return 0; /* never on a line */
	case TCPCHAT_MSG_KICK:
		return m->code == 0 && !m->sender.len && line_kick_ok(m);
	default:
		return m->code == 0;
	}
}

/* A message whose line reads back as line_expect() says: the names are
 * names, and none of the forms that read back otherwise (documented in
 * codec_line.c) is used. */
static int line_unambiguous(const tcpchat_msg *m, unsigned dir)
{
	if (m->sender.len && !name_ok(m->sender))
		return 0;
	if (dir) {
		if (m->type == TCPCHAT_MSG_TEXT && m->target.len &&
		    !(m->flags & TCPCHAT_MSGF_ECHO))
			return !str_is(m->sender, "*");
		if (m->type == TCPCHAT_MSG_TEXT && m->target.len)
			return name_ok(m->target);
		if (m->type == TCPCHAT_MSG_TOPIC)
			return m->room.ptr[m->room.len - 1] != ':';
		return 1;
	}
	if (m->type == TCPCHAT_MSG_HELLO)
		return m->sender.len > 0 && !has_blank(m->sender);
	if (m->type == TCPCHAT_MSG_TEXT && !m->target.len && !m->room.len)
		return !all_blank(m->body); /* a blank line is skipped */
	if (m->type == TCPCHAT_MSG_KICK)    /* a blank reason reads as none */
		return !m->body.len || !all_blank(m->body);
	return 1;
}

/* What the line decoder must make of m written in direction dir, when
 * line_unambiguous(m, dir): the fields each line form carries. */
static void line_expect(const tcpchat_msg *m, unsigned dir, tcpchat_msg *w)
{
	static const char me[] = "*";
	int def = (m->flags & TCPCHAT_MSGF_DEFAULT_ROOM) != 0;

	memset(w, 0, sizeof(*w));
	w->type = m->type;
	if (m->type == TCPCHAT_MSG_KICK) {
		w->room = m->room;
		w->target = m->target;
		w->body = m->body;
		w->flags = m->flags & KICK_FLAGS;
		return;
	}
	if (!dir) {
		switch (m->type) {
		case TCPCHAT_MSG_HELLO:
			w->code = TCPCHAT_PROTOCOL_VERSION;
			w->sender = m->sender;
			w->body = m->body; /* the credential */
			break;
		case TCPCHAT_MSG_LEAVE:
			w->room = m->room;
			w->code = m->room.len || m->code == TCPCHAT_REASON_PART
			                  ? TCPCHAT_REASON_PART
			                  : TCPCHAT_REASON_QUIT;
			if (w->code == TCPCHAT_REASON_PART)
				w->body = m->body;
			break;
		case TCPCHAT_MSG_TEXT:
			w->target = m->target;
			/* fall through */
		case TCPCHAT_MSG_TOPIC:
			w->body = m->body;
			/* fall through */
		case TCPCHAT_MSG_JOIN:
		case TCPCHAT_MSG_WHO:
			w->room = m->room;
			break;
		case TCPCHAT_MSG_HISTORY:
			w->code = m->code;
			w->room = m->room;
			break;
		default:
			break;
		}
		return;
	}
	switch (m->type) {
	case TCPCHAT_MSG_TEXT:
		w->body = m->body;
		if (m->target.len && (m->flags & TCPCHAT_MSGF_ECHO)) {
			w->target = m->target;
			w->flags = TCPCHAT_MSGF_ECHO;
		} else if (m->target.len) {
			w->sender = m->sender;
			w->target.ptr = me;
			w->target.len = 1;
		} else {
			w->sender = m->sender;
			if (!def)
				w->room = m->room;
		}
		w->flags |= m->flags & TCPCHAT_MSGF_HISTORY;
		break;
	case TCPCHAT_MSG_LEAVE:
		w->code = m->code <= TCPCHAT_REASON_LOST ? m->code : 0;
		w->body = m->body;
		/* fall through */
	case TCPCHAT_MSG_JOIN:
		w->sender = m->sender;
		if (!def)
			w->room = m->room;
		break;
	case TCPCHAT_MSG_WELCOME:
		w->code = TCPCHAT_PROTOCOL_VERSION;
		w->sender = m->sender;
		break;
	case TCPCHAT_MSG_ERROR:
		w->code = m->code;
		w->body = m->body;
		break;
	case TCPCHAT_MSG_WHO:
		w->code = m->code;
		w->body = m->body;
		w->room = m->room;
		break;
	case TCPCHAT_MSG_TOPIC:
		w->room = m->room;
		w->body = m->body;
		w->sender = m->sender;
		break;
	case TCPCHAT_MSG_ROOMS:
		w->code = m->code;
		w->room = m->room;
		if (m->room.len)
			w->body = m->body;
		break;
	case TCPCHAT_MSG_HISTORY:
		w->code = m->code;
		w->room = m->room;
		if (m->code) {
			w->first = m->first;
			w->last = m->last;
		}
		if (m->flags & TCPCHAT_MSGF_GAP) {
			w->flags = TCPCHAT_MSGF_GAP;
			w->oldest = m->oldest;
		}
		break;
	default:
		break;
	}
}

/* What each codec can express: binary a type 1..255 with 16-bit flags,
 * JSON a type 1..255, line what line_can_encode() says. */
static int can_encode(const tcpchat_codec *c, const tcpchat_msg *m,
                      unsigned dir)
{
	if (m->type < 1 || m->type > 255)
		return 0;
	if (c == tcpchat_codec_binary())
		return m->flags <= 0xFFFF;
	if (c == tcpchat_codec_json())
		return 1;
	return line_can_encode(m, dir);
}

/* A string must lie inside the frame or inside the scratch buffer. */
static void check_str_in(tcpchat_str s, const char *frame, size_t flen,
                         const char *scratch, size_t slen)
{
	if (s.len == 0)
		return;
	CHECK(s.ptr != NULL);
	if (s.ptr >= frame && s.ptr < frame + flen) {
		CHECK(s.len <= (size_t)(frame + flen - s.ptr));
		return;
	}
	CHECK(s.ptr >= scratch && s.ptr <= scratch + slen);
	CHECK(s.len <= (size_t)(scratch + slen - s.ptr));
}

/* What the line codec makes of a string: line-breaking bytes become '?'. */
static int line_clean_eq(tcpchat_str orig, tcpchat_str got)
{
	size_t i;

	if (orig.len != got.len)
		return 0;
	for (i = 0; i < orig.len; i++)
		if (got.ptr[i] != line_clean(orig.ptr[i]))
			return 0;
	return 1;
}

/* got is what the line codec gives back for want: the same numbers, and
 * the same strings once cleaned. */
static int line_msg_eq(const tcpchat_msg *want, const tcpchat_msg *got)
{
	return nums_eq(want, got) && line_clean_eq(want->sender, got->sender) &&
	       line_clean_eq(want->body, got->body) &&
	       line_clean_eq(want->room, got->room) &&
	       line_clean_eq(want->target, got->target) &&
	       line_clean_eq(want->ref, got->ref) &&
	       line_clean_eq(want->cursor, got->cursor);
}

/* An encoded line-based frame holds exactly one '\n', at its end, and no
 * '\r'. */
static void check_one_line(const tcpchat_buf *b)
{
	CHECK(b->len > 0);
	CHECK(memchr(b->data, '\n', b->len) == b->data + b->len - 1);
	CHECK(memchr(b->data, '\r', b->len) == NULL);
}

/* Encodes m (a message decoded with flags) with c, which must refuse it
 * exactly when it cannot express it, and checks that it decodes back:
 * every field, but what the line codec does not carry and the bytes JSON
 * must replace. */
static void reencode_with(const tcpchat_codec *c, const tcpchat_msg *m,
                          unsigned flags)
{
	unsigned enc_flags = flags & TCPCHAT_FROM_SERVER;
	tcpchat_buf b = {0};
	tcpchat_msg m2;
	char *copy, *scratch;
	long rc;
	int erc;

	erc = c->encode(c->codec_data, m, enc_flags, &b);
	if (!can_encode(c, m, enc_flags)) {
		CHECK(erc == TCPCHAT_EINVAL);
		CHECK(b.len == 0);
		tcpchat_buf_free(&b);
		return;
	}
	CHECK(erc == 0);
	if (c != tcpchat_codec_binary())
		check_one_line(&b);

	rc = decode_copy(c, b.data, b.len, flags, BIG_FRAME, &m2, &copy,
	                 &scratch, NULL, NULL);
	CHECK(rc == (long)b.len);
	if (c == tcpchat_codec_line()) {
		/* m came from the line codec: every field comes back */
		CHECK(line_msg_eq(m, &m2));
		CHECK(line_fields_ok(&m2, flags));
	} else if (c == tcpchat_codec_json() && !all_utf8(m)) {
		/* bytes that are not UTF-8 become U+FFFD */
		CHECK(nums_eq(m, &m2));
	} else {
		CHECK(msg_eq(m, &m2));
	}
	free(copy);
	free(scratch);
	tcpchat_buf_free(&b);
}

/* The one line message the line codec decodes but cannot write: a
 * client's plain TEXT such as "#a\x01 b" (chat text, the first word is
 * no room name), which the encoder would write as "#a? b", a room
 * message. */
static int line_clean_reads_as_room(const tcpchat_msg *m, unsigned flags)
{
	return !(flags & TCPCHAT_FROM_SERVER) && m->type == TCPCHAT_MSG_TEXT &&
	       !m->room.len && !m->target.len && room_text_form(m->body, 1) &&
	       !room_text_form(m->body, 0);
}

static void reencode(const tcpchat_codec *c, const tcpchat_msg *m,
                     unsigned flags)
{
	/* every message a codec decodes, it can encode in that direction,
	 * except TCPCHAT_MSG_UNKNOWN, which no codec can send */
	if (m->type == TCPCHAT_MSG_UNKNOWN)
		CHECK(!can_encode(c, m, flags & TCPCHAT_FROM_SERVER));
	else if (c == tcpchat_codec_line() &&
	         line_clean_reads_as_room(m, flags))
		CHECK(!can_encode(c, m, flags & TCPCHAT_FROM_SERVER));
	else if (c != tcpchat_codec_binary() || m->flags <= 0xFFFF)
		CHECK(can_encode(c, m, flags & TCPCHAT_FROM_SERVER));
	reencode_with(c, m, flags);

	/* binary and JSON carry the same fields */
	if (c == tcpchat_codec_binary())
		reencode_with(tcpchat_codec_json(), m, flags);
	else if (c == tcpchat_codec_json())
		reencode_with(tcpchat_codec_binary(), m, flags);
}

/* The type of a decoded message: 0 (skipped), 1..255, or, from JSON or
 * line, TCPCHAT_MSG_UNKNOWN. */
static void check_type(const tcpchat_codec *c, const tcpchat_msg *m,
                       unsigned flags)
{
	if (c == tcpchat_codec_binary()) {
		CHECK(m->type >= 1 && m->type <= 255);
		CHECK(m->flags <= 0xFFFF);
	} else if (c == tcpchat_codec_json()) {
		CHECK(m->type <= 255 || m->type == TCPCHAT_MSG_UNKNOWN);
		CHECK(m->type != 0);
	} else {
		CHECK(m->type <= TCPCHAT_MSG_TYPE_MAX ||
		      m->type == TCPCHAT_MSG_UNKNOWN);
		CHECK(line_fields_ok(m, flags));
		if (m->type == TCPCHAT_MSG_UNKNOWN) {
			/* an unknown command, from a client only */
			CHECK(!(flags &
			        (TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE)));
			CHECK(m->body.len >= 2 && m->body.ptr[0] == '/' &&
			      m->body.ptr[1] != '/');
		}
	}
}

static void decode_mode(unsigned sel, const uint8_t *data, size_t size)
{
	const tcpchat_codec *c = pick(sel);
	unsigned flags = (sel / 3) % 4; /* FROM_SERVER 1, HANDSHAKE 2 */
	size_t max_frame = limits[(sel / 12) % 4];
	size_t off = 0;

	while (off < size) {
		size_t len = size - off;
		size_t slen = len < max_frame ? len : max_frame;
		tcpchat_msg m, m2;
		char *copy, *scratch, *copy2, *scratch2;
		size_t need;
		long rc, rc2;

		rc = decode_copy(c, data + off, len, flags, max_frame, &m,
		                 &copy, &scratch, NULL, NULL);
		if (rc <= 0) {
			/* need-more is only allowed while under the limit
			 * (binary cannot know before the length arrives) */
			if (rc == 0 && c != tcpchat_codec_binary())
				CHECK(len < max_frame);
			free(copy);
			free(scratch);
			break;
		}
		CHECK((size_t)rc <= max_frame);
		if (m.type != 0)
			check_type(c, &m, flags);
		check_str_in(m.sender, copy, (size_t)rc, scratch, slen);
		check_str_in(m.body, copy, (size_t)rc, scratch, slen);
		check_str_in(m.room, copy, (size_t)rc, scratch, slen);
		check_str_in(m.target, copy, (size_t)rc, scratch, slen);
		check_str_in(m.ref, copy, (size_t)rc, scratch, slen);
		check_str_in(m.cursor, copy, (size_t)rc, scratch, slen);
		if (c == tcpchat_codec_json())
			CHECK(all_utf8(&m));

		/* the frame alone decodes the same */
		rc2 = decode_copy(c, data + off, (size_t)rc, flags, max_frame,
		                  &m2, &copy2, &scratch2, NULL, NULL);
		CHECK(rc2 == rc);
		CHECK(msg_eq(&m, &m2));
		free(copy2);
		free(scratch2);

		/* a strict prefix asks for more, and for no more than the
		 * frame */
		rc2 = decode_copy(c, data + off, (size_t)rc - 1, flags,
		                  max_frame, &m2, &copy2, &scratch2, NULL,
		                  &need);
		CHECK(rc2 == 0);
		CHECK(need <= (size_t)rc);
		free(copy2);
		free(scratch2);

		if (m.type != 0)
			reencode(c, &m, flags);
		free(copy);
		free(scratch);
		off += (size_t)rc;
	}
}

/* Takes n bytes (as many as there are) from the input. */
static tcpchat_str take(const uint8_t **p, size_t *left, size_t n)
{
	tcpchat_str s;

	if (n > *left)
		n = *left;
	s.ptr = (const char *)*p;
	s.len = n;
	*p += n;
	*left -= n;
	return s;
}

/* Takes up to n (<= 8) bytes as a big-endian number. */
static uint64_t take_n(const uint8_t **p, size_t *left, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n && *left; i++) {
		v = (v << 8) | **p;
		(*p)++;
		(*left)--;
	}
	return v;
}

static uint64_t take_u64(const uint8_t **p, size_t *left)
{
	return take_n(p, left, 8);
}

static uint8_t take_byte(const uint8_t **p, size_t *left)
{
	return (uint8_t)take_n(p, left, 1);
}

/* Input layout: type byte, control byte (bit 7: a special type instead,
 * bit 6: flags may exceed 16 bits, bits 0-5: which of the six abi-2
 * numbers follow), a second control byte (bits 0-2: which of first, last
 * and oldest follow), code, id, timestamp, flags (4), the chosen numbers,
 * six string lengths, then the strings; what is left makes the body
 * longer. */
static void build_msg(const uint8_t *data, size_t size, tcpchat_msg *m)
{
	static const uint32_t special[] = {TCPCHAT_MSG_UNKNOWN, 256, UINT32_MAX,
	                                   0};
	uint64_t *nums[9];
	const uint8_t *p = data;
	size_t left = size;
	uint8_t type, ctl, ctl2, lens[6] = {0};
	size_t i;

	memset(m, 0, sizeof(*m));
	nums[0] = &m->caps;
	nums[1] = &m->max_frame;
	nums[2] = &m->queue_frames;
	nums[3] = &m->queue_bytes;
	nums[4] = &m->seq;
	nums[5] = &m->epoch;
	nums[6] = &m->first;
	nums[7] = &m->last;
	nums[8] = &m->oldest;

	type = take_byte(&p, &left);
	ctl = take_byte(&p, &left);
	ctl2 = take_byte(&p, &left);
	m->type = (ctl & 0x80) ? special[type % 4] : type;
	m->code = (uint32_t)take_n(&p, &left, 4);
	m->id = take_u64(&p, &left);
	m->timestamp = (int64_t)take_u64(&p, &left);
	m->flags = (uint32_t)take_n(&p, &left, 4);
	if (!(ctl & 0x40))
		m->flags &= 0xFFFF;
	for (i = 0; i < 9; i++)
		if ((i < 6 ? ctl >> i : ctl2 >> (i - 6)) & 1u)
			*nums[i] = take_u64(&p, &left);
	for (i = 0; i < 6; i++)
		lens[i] = take_byte(&p, &left);
	m->sender = take(&p, &left, lens[0]);
	m->body = take(&p, &left, lens[1]);
	m->room = take(&p, &left, lens[2]);
	m->target = take(&p, &left, lens[3]);
	m->ref = take(&p, &left, lens[4]);
	m->cursor = take(&p, &left, lens[5]);
	if (left)
		m->body = take(&p, &left, left); /* the rest: a long body */
}

static void encode_mode(const uint8_t *data, size_t size)
{
	tcpchat_msg m;
	unsigned ci, dir;

	build_msg(data, size, &m);
	for (ci = 0; ci < 3; ci++) {
		const tcpchat_codec *c = pick(ci);

		for (dir = 0; dir <= TCPCHAT_FROM_SERVER; dir++) {
			tcpchat_buf b = {0};
			tcpchat_msg m2;
			char *copy, *scratch;
			unsigned dflags = dir;
			int rc;
			long drc;

			CHECK(tcpchat_buf_append(&b, "xy", 2) == 0);
			rc = c->encode(c->codec_data, &m, dir, &b);
			CHECK(memcmp(b.data, "xy", 2) == 0);
			if (!can_encode(c, &m, dir)) {
				CHECK(rc == TCPCHAT_EINVAL);
				CHECK(b.len == 2);
				tcpchat_buf_free(&b);
				continue;
			}
			CHECK(rc == 0);
			if (c != tcpchat_codec_binary()) {
				tcpchat_buf line = {b.data + 2, b.len - 2, 0};

				check_one_line(&line);
			}
			if (c == tcpchat_codec_line() && !dir &&
			    m.type == TCPCHAT_MSG_HELLO)
				dflags |= TCPCHAT_HANDSHAKE;
			drc = decode_copy(c, b.data + 2, b.len - 2, dflags,
			                  BIG_FRAME, &m2, &copy, &scratch, NULL,
			                  NULL);
			if (c == tcpchat_codec_binary()) {
				CHECK(drc == (long)(b.len - 2));
				CHECK(msg_eq(&m, &m2));
			} else if (c == tcpchat_codec_json()) {
				CHECK(drc == (long)(b.len - 2));
				CHECK(nums_eq(&m, &m2));
				if (all_utf8(&m))
					CHECK(msg_eq(&m, &m2));
				if (tcpchat_utf8_valid(m.body.ptr, m.body.len))
					CHECK(str_eq(m.body, m2.body));
				if (tcpchat_utf8_valid(m.ref.ptr, m.ref.len))
					CHECK(str_eq(m.ref, m2.ref));
			} else if (line_unambiguous(&m, dir)) {
				/* names are names: the line reads back as
				 * its form says */
				tcpchat_msg want;

				line_expect(&m, dir, &want);
				CHECK(drc == (long)(b.len - 2));
				CHECK(line_msg_eq(&want, &m2));
				CHECK(line_fields_ok(&m2, dflags));
			} else {
				/* the line form may not parse back (a name
				 * with a space, an empty text), but it never
				 * spans more than the one line, and carries
				 * only what a line carries */
				CHECK(drc == (long)(b.len - 2) ||
				      drc == TCPCHAT_EPROTO);
				if (drc > 0 && m2.type != 0)
					CHECK(line_fields_ok(&m2, dflags));
			}
			free(copy);
			free(scratch);
			tcpchat_buf_free(&b);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned sel;

	if (size < 1)
		return 0;
	sel = data[0];
	if (sel & 0x80)
		encode_mode(data + 1, size - 1);
	else
		decode_mode(sel, data + 1, size - 1);
	return 0;
}
