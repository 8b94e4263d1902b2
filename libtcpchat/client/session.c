/* libtcpchat - a client connection: connect (each resolved address in
 * turn), handshake, receive, heartbeat, goodbye, and its end. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../tls.h"
#include "client_int.h"

void cli__publish_queue(tcpchat_client *cli)
{
	atomic_store_explicit(&cli->q_frames, cli->c.qcount,
	                      memory_order_relaxed);
	atomic_store_explicit(&cli->q_bytes, cli->c.qbytes,
	                      memory_order_relaxed);
}

static int reason_of(int err)
{
	switch (err) {
	case TCPCHAT_EKICKED:
		return TCPCHAT_REASON_KICKED;
	case TCPCHAT_ESHUTDOWN:
		return TCPCHAT_REASON_SHUTDOWN;
	case TCPCHAT_ESLOW:
		return TCPCHAT_REASON_SLOW;
	case TCPCHAT_ETIMEDOUT:
		return TCPCHAT_REASON_TIMEOUT;
	case 0:
		return TCPCHAT_REASON_CLOSED;
	default:
		return TCPCHAT_REASON_ERROR;
	}
}

void cli__drop_connection(tcpchat_client *cli)
{
	loop__unwatch(&cli->loop, &cli->c.w);
	transport__close(&cli->c.tp, 0);
	conn__clear(&cli->c, &cli->sh);
}

/* Ends the connection and reports it once. */
void cli__finish(tcpchat_client *cli, int err, int reason, const char *why)
{
	if (cli->state == C_DONE || cli->state == C_IDLE)
		return;
	if (cli__reconnect_wanted(cli, err)) {
		cli__reconnect_lost(cli, err, reason, why);
		return;
	}
	cli__drop_connection(cli);
	loop__timer_stop(&cli->loop, &cli->timer);
	cli__publish_queue(cli);
	cli->state = C_DONE;
	cli->result = err;
	atomic_store(&cli->connected, 0);
	atomic_store(&cli->alive, 0);
	cli__rooms_reset(cli, 1);
	cli__reconnect_end(cli, err, why);
	/* Every text with a ref gets its answer before DISCONNECTED. */
	cli__take_commands(cli);
	cli__acks_refuse_all(cli, TCPCHAT_ECLOSED, "disconnected");
	cli__pos_clear(cli);
	tcpchat_client_event ev = {.type = TCPCHAT_CEV_DISCONNECTED};
	ev.reason = reason;
	ev.error = err;
	ev.text = why;
	ev.wire_code = cli->last_error ? cli->last_wire : 0;
	cli__log(cli, err ? TCPCHAT_LOG_WARN : TCPCHAT_LOG_INFO,
	         "disconnected (%s): %s", tcpchat_reason_name(reason), why);
	cli__emit(cli, &ev);
}

/* Ends the connection after an error or EOF, using what the server said
 * in its closing ERROR message when it sent one. */
static void finish_remote(tcpchat_client *cli, int err, const char *why)
{
	if (cli->last_error) {
		cli__finish(cli, cli->last_error, reason_of(cli->last_error),
		            cli->last_reason);
		return;
	}
	cli__finish(cli, err,
	            err == TCPCHAT_ECLOSED ? TCPCHAT_REASON_CLOSED
	                                   : reason_of(err),
	            why);
}

int cli__push_frame(tcpchat_client *cli, struct frame *f)
{
	int rc = conn__push(&cli->c, &cli->sh, f, UINT32_MAX, SIZE_MAX);
	cli__publish_queue(cli);
	return rc;
}

int cli__push_msg(tcpchat_client *cli, const tcpchat_msg *m)
{
	cli->sh.enc.len = 0;
	int rc = cli->codec->encode(cli->codec->codec_data, m, 0, &cli->sh.enc);
	if (rc)
		return rc;
	struct frame *f = frame__new(cli->sh.enc.data, cli->sh.enc.len);
	if (!f)
		return TCPCHAT_ENOMEM;
	rc = cli__push_frame(cli, f);
	frame__unref(f);
	return rc;
}

void cli__begin_close(tcpchat_client *cli)
{
	tcpchat_msg m = {.type = TCPCHAT_MSG_LEAVE};
	m.code = TCPCHAT_REASON_QUIT;
	cli__push_msg(cli, &m);
	cli->state = C_CLOSING;
	cli->deadline = cli->loop.now + cli->stop_timeout;
	cli__arm_timer(cli);
}

/* One timer per connection; input only notes the time, and the timer
 * works out what is due when it fires. */
void cli__arm_timer(tcpchat_client *cli)
{
	int64_t due = INT64_MAX;
	switch (cli->state) {
	case C_CONNECTING:
	case C_HANDSHAKE:
	case C_CLOSING:
	case C_WAITING:
		if (cli->deadline)
			due = cli->deadline;
		break;
	case C_CONNECTED:
		if (cli->ping_interval > 0)
			due = cli->last_rx_ms +
			      (cli->ping_sent ? 2 : 1) * cli->ping_interval;
		break;
	default:
		break;
	}
	if (due == INT64_MAX)
		loop__timer_stop(&cli->loop, &cli->timer);
	else
		loop__timer_at(&cli->loop, &cli->timer, due);
}

void cli__on_timer(struct loop_timer *t)
{
	tcpchat_client *cli = t->data;
	int64_t now = cli->loop.now;
	switch (cli->state) {
	case C_CONNECTING:
	case C_HANDSHAKE:
		if (cli->deadline && now >= cli->deadline) {
			char why[200], after[32];
			long long ms = cli->connect_timeout;
			if (ms % 1000 == 0)
				snprintf(after, sizeof after, "%lld s",
				         ms / 1000);
			else
				snprintf(after, sizeof after, "%lld ms", ms);
			if (cli->state == C_CONNECTING)
				snprintf(why, sizeof why,
				         "no answer to the TCP connect within "
				         "%s",
				         after);
			else
				snprintf(why, sizeof why,
				         "the server accepted the connection "
				         "but did not answer the handshake "
				         "within %s (does it speak the %s "
				         "codec?)",
				         after,
				         cli->codec->name ? cli->codec->name
				                          : "chosen");
			cli__finish(cli, TCPCHAT_ETIMEDOUT,
			            TCPCHAT_REASON_TIMEOUT, why);
			return;
		}
		break;
	case C_CLOSING:
		if (now >= cli->deadline) {
			cli__finish(cli, 0, TCPCHAT_REASON_QUIT,
			            "goodbye (timed out)");
			return;
		}
		break;
	case C_WAITING:
		if (now >= cli->deadline) {
			int rc = cli__dial(cli);
			if (rc) {
				char why[160];
				snprintf(why, sizeof why, "connect: %s",
				         rc == TCPCHAT_ESYS
				                 ? strerror(errno)
				                 : tcpchat_strerror(rc));
				cli__finish(cli, rc, TCPCHAT_REASON_ERROR, why);
			}
			return;
		}
		break;
	case C_CONNECTED:
		if (cli->ping_interval <= 0)
			return;
		if (now - cli->last_rx_ms >= 2 * cli->ping_interval) {
			cli__finish(cli, TCPCHAT_ETIMEDOUT,
			            TCPCHAT_REASON_TIMEOUT,
			            "server stopped answering");
			return;
		}
		if (!cli->ping_sent &&
		    now - cli->last_rx_ms >= cli->ping_interval) {
			tcpchat_msg p = {.type = TCPCHAT_MSG_PING};
			cli__push_msg(cli, &p);
			cli->ping_sent = 1;
		}
		break;
	default:
		return;
	}
	cli__arm_timer(cli);
}

static void set_events(tcpchat_client *cli, unsigned ev)
{
	loop__set(&cli->loop, &cli->c.w, conn__interest(&cli->c, ev));
}

void cli__flush(tcpchat_client *cli)
{
	if (cli->c.tp.fd < 0 || cli->state == C_CONNECTING)
		return;
	size_t bytes, frames;
	int rc = conn__flush(&cli->c, &cli->sh, &bytes, &frames);
	cli__publish_queue(cli);
	if (rc == TCPCHAT_ETLS) {
		cli__tls_failed(cli);
		return;
	}
	if (rc < 0) {
		char why[128];
		snprintf(why, sizeof why, "write: %s", strerror(errno));
		finish_remote(cli, TCPCHAT_ESYS, why);
		return;
	}
	if (rc == 0 && cli->state == C_CLOSING && !cli->shut_wr) {
		transport__shutdown(&cli->c.tp);
		cli->shut_wr = 1;
	}
	set_events(cli, LOOP_READ | (rc == 1 ? LOOP_WRITE : 0));
}

/* Takes note of an ERROR.  Returns 1 when it ends the connection: the
 * server flagged it so, it came during the handshake, or the server
 * announced no capabilities and the code is one it closes on. */
static int note_error(tcpchat_client *cli, const tcpchat_msg *m)
{
	int closing = (m->flags & TCPCHAT_MSGF_CLOSING) ||
	              cli->state == C_HANDSHAKE ||
	              (!(atomic_load(&cli->srv_caps) & TCPCHAT_CAP_BASE) &&
	               proto__legacy_fatal(m->code));
	if (!closing)
		return 0;
	cli->last_wire = m->code;
	cli->last_error = tcpchat_error_from_wire(m->code);
	size_t n = TC_MIN(m->body.len, sizeof cli->last_reason - 1);
	memcpy(cli->last_reason, m->body.ptr, n);
	cli->last_reason[n] = '\0';
	if (!n)
		snprintf(cli->last_reason, sizeof cli->last_reason, "%s",
		         tcpchat_strerror(cli->last_error));
	return 1;
}

static void welcome(tcpchat_client *cli, const tcpchat_msg *m)
{
	cli->c.dflags &= ~TCPCHAT_HANDSHAKE;
	atomic_store(&cli->srv_caps, m->caps);
	atomic_store(&cli->srv_max_frame, m->max_frame);
	atomic_store(&cli->srv_queue_frames, m->queue_frames);
	atomic_store(&cli->srv_queue_bytes, m->queue_bytes);
	cli__rooms_welcome(cli, m);
	atomic_store(&cli->have_info, 1);
	cli->state = C_CONNECTED;
	atomic_store(&cli->connected, 1);
	cli->deadline = 0;
	cli__arm_timer(cli);
	cli__hist_welcome(cli, m);
	if (cli->reconnecting) {
		cli__reconnect_welcome(cli);
	} else {
		tcpchat_client_event ev = {.type = TCPCHAT_CEV_CONNECTED};
		ev.name.ptr = cli->name;
		ev.name.len = cli->name_len;
		cli__log(cli, TCPCHAT_LOG_INFO, "joined as %s", cli->name);
		cli__emit(cli, &ev);
	}
	/* Texts queued during the handshake go now, before the goodbye of
	 * a stop that came meanwhile. */
	if (cli->state == C_CONNECTED)
		cli__take_commands(cli);
	if (cli->stop_seen && cli->state == C_CONNECTED)
		cli__begin_close(cli);
}

#define TLS_PORT_WHY "the server speaks TLS on this port: connect with TLS"

/* 1 when body is the notice of a TLS port (transport_tls.c). */
static int tls_notice(tcpchat_str body)
{
	static const char notice[] = "this port needs TLS";
	return body.len == sizeof notice - 1 &&
	       !memcmp(body.ptr, notice, body.len);
}

static int on_handshake_msg(tcpchat_client *cli, tcpchat_msg *m)
{
	switch (m->type) {
	case TCPCHAT_MSG_WELCOME:
		welcome(cli, m);
		return 0;
	case TCPCHAT_MSG_ERROR:
		note_error(cli, m);
		finish_remote(cli, cli->last_error, cli->last_reason);
		return 1;
	case TCPCHAT_MSG_PING:
	case TCPCHAT_MSG_PONG:
		return 0;
	default:
		/* the plain line "error: this port needs TLS" of a TLS port,
		 * as the line codec reads it */
		cli__finish(
		        cli, TCPCHAT_EPROTO, TCPCHAT_REASON_ERROR,
		        tls_notice(m->body)
		                ? TLS_PORT_WHY
		                : "the server answered the handshake with a "
		                  "message that is not a WELCOME");
		return 1;
	}
}

static int on_msg(void *ctx, tcpchat_msg *m)
{
	tcpchat_client *cli = ctx;
	cli->last_rx_ms = cli->loop.now;
	cli->ping_sent = 0;
	if (cli->state == C_HANDSHAKE)
		return on_handshake_msg(cli, m);
	switch (m->type) {
	case TCPCHAT_MSG_PING: {
		tcpchat_msg p = {.type = TCPCHAT_MSG_PONG};
		p.id = m->id;
		cli__push_msg(cli, &p);
		return 0;
	}
	case TCPCHAT_MSG_PONG:
	case TCPCHAT_MSG_WELCOME:
	case TCPCHAT_MSG_HELLO:
		return 0;
	case TCPCHAT_MSG_ERROR:
		/* A closing one is also remembered, to be reported by
		 * DISCONNECTED when the connection ends. */
		note_error(cli, m);
		break;
	default:
		break; /* TEXT, JOIN, LEAVE, WHO, TOPIC, ROOMS, and types from
		          the future */
	}
	if (cli__hist_on_msg(cli, m) || cli__acks_on_msg(cli, m)) {
		cli__rooms_on_msg(cli, m);
		return cli->state == C_DONE;
	}
	cli__rooms_on_msg(cli, m);
	tcpchat_client_event ev = {.type = TCPCHAT_CEV_MESSAGE};
	ev.msg = m;
	cli__emit(cli, &ev);
	return cli->state == C_DONE;
}

static int connect_next(tcpchat_client *cli);

/* Writes bytes[0..n) as a C string literal's contents into out: printable
 * ASCII as it is, the rest escaped ("\\n", "\\xNN"); a cut is marked
 * with "...". */
static void quote_bytes(char *out, size_t size, const char *bytes, size_t n,
                        int more)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 8 < size; i++) {
		unsigned char c = (unsigned char)bytes[i];
		int w;
		if (c == '\n')
			w = snprintf(out + o, size - o, "\\n");
		else if (c == '\r')
			w = snprintf(out + o, size - o, "\\r");
		else if (c == '"' || c == '\\')
			w = snprintf(out + o, size - o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7F)
			w = snprintf(out + o, size - o, "\\x%02X", c);
		else
			w = snprintf(out + o, size - o, "%c", c);
		o += (size_t)w;
		if (i + 1 == n && more)
			o += (size_t)snprintf(out + o, size - o, "...");
	}
	out[o < size ? o : size - 1] = '\0';
}

/* Before the WELCOME, the server sent bytes that are not a frame of our
 * codec: it speaks another codec, or another protocol altogether. */
static void finish_foreign(tcpchat_client *cli, const char *head, size_t n,
                           size_t total)
{
	static const char tls_only[] = "error: this port needs TLS";
	if (n >= 16 &&
	    !memcmp(head, tls_only, TC_MIN(n, sizeof tls_only - 1))) {
		cli__finish(cli, TCPCHAT_EPROTO, TCPCHAT_REASON_ERROR,
		            TLS_PORT_WHY);
		return;
	}
	char shown[4 * sizeof((struct conn_read_result *)0)->head + 8];
	char why[320];
	quote_bytes(shown, sizeof shown, head, n, total > n);
	snprintf(why, sizeof why,
	         "the server does not speak the %s codec: it sent \"%s\"%s",
	         cli->codec->name ? cli->codec->name : "chosen", shown,
	         n >= 5 && !memcmp(head, "HTTP/", 5) ? " (an HTTP server)"
	                                             : "");
	cli__finish(cli, TCPCHAT_EPROTO, TCPCHAT_REASON_ERROR, why);
}

static void connected_check(tcpchat_client *cli)
{
	int rc = cli->c.tp.ops->connected(&cli->c.tp);
	if (rc == TRANSPORT_AGAIN) {
		if (cli->c.tp.wants) /* a TLS handshake: only what it needs */
			loop__set(&cli->loop, &cli->c.w,
			          conn__interest(&cli->c, 0));
		return;
	}
	if (rc == 0) {
		cli->state = C_HANDSHAKE;
		set_events(cli, LOOP_READ | LOOP_WRITE);
		return;
	}
	if (rc == TCPCHAT_ETLS) {
		cli__tls_failed(cli);
		return;
	}
	int err = errno;
	if (cli->addr_next < cli->addrs.n) {
		cli__log(cli, TCPCHAT_LOG_DEBUG, "connect: %s; next address",
		         strerror(err));
		cli__drop_connection(cli);
		if (connect_next(cli) == 0)
			return;
		err = errno;
	}
	char why[160];
	snprintf(why, sizeof why, "%s", strerror(err));
	errno = err;
	cli__finish(cli, TCPCHAT_ESYS, TCPCHAT_REASON_ERROR, why);
}

/* The server closed the connection before answering the handshake. */
static void finish_silent(tcpchat_client *cli)
{
	char why[160];
	snprintf(why, sizeof why,
	         "the server closed the connection during the handshake "
	         "(does it speak the %s codec?)",
	         cli->codec->name ? cli->codec->name : "chosen");
	cli__finish(cli, TCPCHAT_ECLOSED, TCPCHAT_REASON_CLOSED, why);
}

static void on_read(tcpchat_client *cli)
{
	struct conn_read_result res;
	int rc = conn__read(&cli->c, &cli->sh, (size_t)cli->max_frame, on_msg,
	                    cli, &res);
	if (cli->state == C_DONE || rc == 0 || rc == 1)
		return;
	if (rc == TCPCHAT_ECLOSED) {
		if (cli->state == C_CLOSING)
			cli__finish(cli, 0, TCPCHAT_REASON_QUIT, "goodbye");
		else if (cli->state == C_HANDSHAKE && res.head_len)
			finish_foreign(cli, res.head, res.head_len,
			               res.head_len); /* all there was */
		else if (cli->state == C_HANDSHAKE && !cli->last_error)
			finish_silent(cli);
		else
			finish_remote(cli, TCPCHAT_ECLOSED,
			              "connection closed by the server");
	} else if (rc == TCPCHAT_ESYS && errno == ECONNRESET &&
	           cli->state == C_HANDSHAKE && !cli->last_error) {
		/* closed without reading our HELLO */
		if (cli->c.rlen)
			finish_foreign(cli, cli->c.rbuf,
			               TC_MIN(cli->c.rlen, sizeof res.head),
			               cli->c.rlen);
		else
			finish_silent(cli);
	} else if ((rc == TCPCHAT_EPROTO || rc == TCPCHAT_EMSGSIZE) &&
	           cli->state == C_HANDSHAKE) {
		finish_foreign(cli, res.head, res.head_len,
		               res.head_len + 1); /* more may follow */
	} else if (rc == TCPCHAT_EPROTO || rc == TCPCHAT_EMSGSIZE) {
		cli__finish(cli, rc, TCPCHAT_REASON_ERROR, res.error);
	} else if (rc == TCPCHAT_ETLS) {
		cli__tls_failed(cli);
	} else {
		char why[128];
		snprintf(why, sizeof why, "read: %s",
		         rc == TCPCHAT_ESYS ? strerror(errno)
		                            : tcpchat_strerror(rc));
		finish_remote(cli, rc, why);
	}
}

static void on_io(struct loop_watcher *w, unsigned events)
{
	tcpchat_client *cli = w->data;
	if (cli->state == C_CONNECTING) {
		connected_check(cli);
		if (cli->state != C_HANDSHAKE)
			return;
	}
	if (events & LOOP_WRITE)
		cli__flush(cli);
	if (cli->c.tp.fd >= 0 && cli->state != C_DONE &&
	    ((events & (LOOP_READ | LOOP_ERROR)) ||
	     transport__pending(&cli->c.tp)))
		on_read(cli);
	/* A TLS read may leave output to move. */
	if (cli->c.tp.fd >= 0 && cli->state != C_DONE &&
	    conn__interest(&cli->c, cli->c.w.events) != cli->c.w.events)
		set_events(cli, cli->c.w.events);
}

/* Starts a connect to the next address.  Returns 0 or TCPCHAT_ESYS. */
static int connect_next(tcpchat_client *cli)
{
	int rc = TCPCHAT_ESYS;
	while (cli->addr_next < cli->addrs.n) {
		int i = cli->addr_next++;
		int fd;
		rc = net__connect(&cli->addrs.a[i], cli->addrs.len[i], &fd);
		if (rc)
			continue;
		rc = cli__transport(cli, fd);
		if (rc) {
			close(fd);
			errno = EPROTO;
			continue;
		}
		rc = loop__watch(&cli->loop, &cli->c.w, fd,
		                 LOOP_READ | LOOP_WRITE, on_io, cli);
		if (rc == 0)
			return 0;
		int e = errno;
		transport__close(&cli->c.tp, 0);
		errno = e;
	}
	return rc;
}

int cli__dial(tcpchat_client *cli)
{
	cli->addr_next = 0;
	int rc = connect_next(cli);
	if (rc)
		return rc;
	cli->c.codec = cli->codec;
	cli->c.dflags = TCPCHAT_FROM_SERVER | TCPCHAT_HANDSHAKE;
	cli->state = C_CONNECTING;
	cli->shut_wr = 0;
	cli->last_error = 0;
	cli->last_wire = 0;
	cli->last_reason[0] = '\0';
	cli->result = 0;
	cli->ping_sent = 0;
	loop__update_now(&cli->loop);
	cli->last_rx_ms = cli->loop.now;
	cli->deadline = cli->connect_timeout > 0
	                        ? cli->loop.now + cli->connect_timeout
	                        : 0;
	atomic_store(&cli->have_info, 0);
	atomic_store(&cli->srv_caps, 0);
	atomic_store(&cli->srv_max_frame, 0);
	atomic_store(&cli->srv_protocol, 0);
	cli__arm_timer(cli);
	tcpchat_msg hello = {.type = TCPCHAT_MSG_HELLO};
	hello.code = TCPCHAT_PROTOCOL_VERSION;
	hello.sender.ptr = cli->name;
	hello.sender.len = cli->name_len;
	hello.body.ptr = cli->credential;
	hello.body.len = cli->credential_len;
	hello.caps = TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS | TCPCHAT_CAP_HISTORY;
	cli__reconnect_hello(cli, &hello);
	return cli__push_msg(cli, &hello);
}

int cli__connect(tcpchat_client *cli, const char *addr, const char *name)
{
	size_t nlen = strlen(name);
	if (tcpchat_name_check(name, nlen) != 0)
		return TCPCHAT_EBADNAME;
	int rc = net__resolve(addr, 0, &cli->addrs);
	if (rc)
		return rc;
	tls__host_of(addr, cli->tls_host, sizeof cli->tls_host);
	memcpy(cli->name, name, nlen + 1);
	cli->name_len = nlen;
	cli->stop_seen = 0;
	cli->reconnecting = 0;
	cli->attempt = 0;
	atomic_store(&cli->stop_req, 0);
	cli__rooms_reset(cli, 0);
	cli__pos_clear(cli);
	rc = cli__dial(cli);
	if (rc && cli->state != C_CONNECTING)
		return rc; /* nothing to connect to */
	atomic_store(&cli->alive, 1);
	if (rc) {
		cli__finish(cli, rc, TCPCHAT_REASON_ERROR,
		            "cannot encode HELLO");
		cli->state = C_IDLE;
		return rc;
	}
	return 0;
}
