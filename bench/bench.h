/* tcpchat-bench: what the files of the program share (tcpchat-bench.c:
 * options, connections, the three protocols and the fan-out modes;
 * durable.c: durable posting with acknowledgments; util.c: helpers).
 * SPDX-License-Identifier: MIT
 */
#ifndef TCPCHAT_BENCH_H
#define TCPCHAT_BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PROG "tcpchat-bench"

#define HDR_LEN 33         /* payload header, see above */
#define MIN_SIZE 40        /* smallest --size */
#define MAX_SIZE (1 << 20) /* largest --size */
#define READ_CHUNK (256 * 1024)
#define READ_ROUNDS 4        /* reads per readiness, for fairness */
#define MAX_LINE 8192        /* longest control line (NATS, RESP) */
#define MAX_CONNECTING 256   /* connections in connect/login at once */
#define OUT_LIMIT (4u << 20) /* a sender stops generating above this */
#define MAX_EVENTS 1024
#define MAX_PAIRS (16L * 1024 * 1024)
#define MAX_WARN 5 /* warnings of one kind printed */
#define NS 1000000000LL
#define MS 1000000LL
#define TIMER_TAG UINT64_MAX
#define MAX_PORTS 64 /* --ports */
#define MAX_PIDS 64  /* --server-pid */

#define HIST_SUBBITS 4
#define HIST_SUB (1u << HIST_SUBBITS)
#define HIST_BUCKETS (64u * HIST_SUB)

enum proto { P_TCPCHAT, P_REDIS, P_NATS };
enum mode { M_THROUGHPUT, M_RATE, M_IDLE, M_STORM, M_ROOMS, M_DURABLE };
enum role { R_RECV, R_SEND, R_IDLE };
enum cstate { C_NEW, C_CONNECTING, C_HANDSHAKE, C_LOGIN, C_READY, C_DEAD };
enum phase { PH_SETUP, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_DONE };

/* tcpchat binary codec */
enum {
	TC_HELLO = 1,
	TC_WELCOME = 2,
	TC_TEXT = 3,
	TC_JOIN = 4,
	TC_LEAVE = 5,
	TC_ERROR = 6,
	TC_PING = 7,
	TC_PONG = 8,
	TC_ACK = 13
};
#define TC_HDR 24 /* version..code */
#define TC_FIELD 5
#define TC_TAG_SENDER 1
#define TC_TAG_BODY 2
#define TC_TAG_ROOM 3
#define TC_TAG_REF 5
#define TC_TAG_CAPS 16
#define TC_CAPS_V2 0x3 /* TCPCHAT_CAP_BASE | TCPCHAT_CAP_ROOMS */
#define TC_WIRE_VERSION 12
#define ROOM_NAME_MAX 24

extern const char *const proto_names[];
extern const char *const mode_names[];

struct conn {
	int fd;
	uint8_t role, state, epout, got_info;
	uint32_t idx;          /* receiver, sender or idle index */
	uint32_t room;         /* room index (with rooms), else 0 */
	uint8_t joining;       /* tcpchat: JOIN sent, confirmation not yet in */
	uint8_t hello_version; /* tcpchat: the version of our HELLO */
	uint8_t tls_rwant;     /* TLS: a read waits for the socket to be
	                        * writable */
	uint8_t tls_later;     /* TLS: in G.later (decrypted input left) */
	void *ssl;             /* TLS: the OpenSSL SSL, else NULL */
	char *in;              /* partial frame carried between reads */
	size_t inlen, incap;
	char *out; /* bytes not yet written */
	size_t outoff, outlen, outcap;
};

struct sample {
	int64_t t;
	double bench_cpu;
	uint64_t srv_ticks;           /* sum over the --server-pid pids */
	uint64_t pid_ticks[MAX_PIDS]; /* each of them */
	uint64_t bus_ticks;           /* --bus-pid */
	int srv_ok, bus_ok;
};

struct hist {
	uint64_t hist[HIST_BUCKETS];
	uint64_t hist_n, hist_max;
};

struct kv {
	char buf[4096];
	size_t len;
};

/* The whole state of a run: one process, one loop. */
struct bench {
	/* options */
	int proto, mode;
	const char *host;
	int port;             /* the first of ports */
	int ports[MAX_PORTS]; /* --ports: receiver i on ports[i % nports] */
	int nports;
	long receivers, senders, size, window, connections;
	double rate, duration, warmup, drain, timeout, settle;
	long server_pid;            /* the first of server_pids, or 0 */
	long server_pids[MAX_PIDS]; /* --server-pid PID1,PID2,... */
	int npids;
	long bus_pid;    /* --bus-pid: the engine of a cluster, or 0 */
	int64_t tick_ns; /* rate mode: shortest time between wake-ups */
	int tick_set;
	long rooms;    /* 0: no rooms (one channel, the default room) */
	long members;  /* rooms mode: per room; else idle members of the
	               * rooms other than room 0 */
	long parallel; /* connections in connect/login at once */
	int tc_version, tc_version_fixed; /* tcpchat HELLO version */
	int tls;                          /* --tls: every connection over TLS */
	const char *tls_ca; /* --tls-ca: verify the server against it */

	/* layout */
	int mesh;        /* rooms mode: every member sends to its room */
	int self_echo;   /* a publisher gets its own messages (Redis) */
	long extra;      /* idle members of rooms 1.. (throughput, rate) */
	long pub_expect; /* Redis: subscribers a PUBLISH should reach */
	int room_width;

	/* setup */
	struct sockaddr_storage addr[MAX_PORTS]; /* one per port */
	socklen_t addrlen[MAX_PORTS];
	int ep, tfd;
	struct conn *conns;
	long nconns, next_open, connecting, nready;
	char *rbuf;
	size_t rbuf_cap, max_frame, max_partial;
	char *frame; /* encoded messages, one per room that gets traffic;
	              * payload header overwritten */
	size_t frame_len, payload_off;
	int64_t setup_ns;
	long *later; /* TLS: connections with decrypted input not yet read,
	              * which no epoll_wait reports */
	long nlater;

	/* traffic */
	int phase;
	int64_t t0, t_start, t_end, drain_deadline, last_rx_ns;
	long probe, alive_recv, alive_send;
	uint64_t *next_seq, *sent_win, *win_first, *stall_base, *last_base;
	int64_t *last_progress;
	double *next_due, period_ns;
	uint64_t *expect; /* [receiver * senders + sender] */
	uint32_t *got;    /* in-window arrivals, same index */
	struct sample s0, s1;

	/* counters */
	uint64_t sent_total, sent_win_total, rx_win, rx_sendwin, rx_total;
	uint64_t reordered, bad_payload, other_rx, notices, server_errors;
	uint64_t closed, window_resets, rate_missed, pings, pub_replies;
	uint64_t pub_short, bytes_in, unknown_msgs;
	uint64_t batches_win; /* gen_msgs calls with in-window messages */
	unsigned warned_close, warned_error, warned_payload;

	/* latency, ns */
	struct hist lat;
};

extern struct bench G;

/* ---- util.c --------------------------------------------------------------- */

void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));
void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));
/* Prints a warning; with count, only the first MAX_WARN of its kind. */
void warn(unsigned *count, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
int64_t mono_ns(void);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t each);
void put_u16(unsigned char *p, uint32_t v);
void put_u32(unsigned char *p, uint32_t v);
void put_u64(unsigned char *p, uint64_t v);
uint32_t get_u32(const unsigned char *p);
uint64_t get_u64(const unsigned char *p);
/* n lowercase hex digits of v at p (no terminator). */
void put_hex(char *p, uint64_t v, int n);
int get_hex(const char *p, int n, uint64_t *out);
/* An unsigned decimal number of 1..18 digits; -1 if not one. */
int get_dec(const char *p, size_t n, uint64_t *out);
void hist_add(struct hist *h, int64_t v);
/* The value at quantile q (0..1] in ns, -1 without samples. */
double hist_quantile(const struct hist *h, double q);
int proc_cpu_ticks(long pid, uint64_t *ticks);
int proc_mem(long pid, long *rss_kb, long *hwm_kb);
double self_cpu_s(void);
void kv_add(struct kv *kv, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* A number, or "-" when v < 0 (unknown or not applicable). */
void kv_num(struct kv *kv, const char *key, double v, int decimals);

/* ---- tcpchat-bench.c ---------------------------------------------------- */

void take_sample(struct sample *s);
/* The summed rss and peak rss (kB) of the --server-pid pids; -1 when one
 * is unreadable. */
void servers_mem(long *rss_kb, long *hwm_kb);
/* "pid N" or "pids N1,N2,..." of --server-pid, in buf. */
const char *pids_note(char *buf, size_t n);
const char *conn_name(const struct conn *c, char *buf, size_t n);
char *out_reserve(struct conn *c, size_t n);
void out_append(struct conn *c, const void *data, size_t n);
void out_str(struct conn *c, const char *s);
size_t out_pending(const struct conn *c);
void conn_flush(struct conn *c);
void conn_ready(struct conn *c);
size_t room_name(long k, char *buf, size_t n);
int sending(void);
/* The payload of G.size bytes at p: 'a'..'z' (fill), then its header
 * (stamp): send time, sender and sequence number; see tcpchat-bench.c. */
void fill_payload(char *p);
void stamp_payload(char *p, int64_t now, long s, uint64_t seq);
uint64_t batch_cap(uint64_t count);
/* "" without --tls, else " over TLS (version, cipher)". */
const char *tls_note(void);

/* ---- tls.c --------------------------------------------------------------- */

/* 1 when built with OpenSSL (BENCH_TLS), else 0. */
extern const int tls_built;
/* Makes the client context: with ca_file the server's certificate must
 * chain to it and name host (an IP address or a DNS name); without, it
 * is not checked.  Exits with status 2 when built without TLS, 1 on
 * error. */
void tls_setup(const char *ca_file, const char *host);
/* Starts TLS on the connected socket of c (c->ssl). */
void tls_start(struct conn *c);
/* One more step of the handshake: 1 done, 0 not yet (wait for input, and
 * for the socket to be writable when *want_write), -1 failed (*why). */
int tls_handshake(struct conn *c, int *want_write, const char **why);
/* The version and cipher of c, in buf. */
const char *tls_describe(const struct conn *c, char *buf, size_t n);
/* As recv and send: bytes, 0 at the end of the stream (recv), or -1 with
 * errno EAGAIN (wait for the socket; c->tls_rwant: a read that waits
 * for it to be writable) or another errno (tls_error() says why). */
ssize_t tls_recv(struct conn *c, char *buf, size_t n);
ssize_t tls_send(struct conn *c, const char *buf, size_t n);
/* Whether decrypted bytes wait in c's SSL (epoll_wait does not see
 * them). */
int tls_pending(const struct conn *c);
const char *tls_error(void);
void tls_free(struct conn *c);

/* ---- durable.c ------------------------------------------------------------ */

/* The tcpchat caps of a HELLO in durable mode. */
uint64_t durable_caps(void);
/* More of the login of c (after CONNECT for NATS: the inbox, and on the
 * first connection the creation of the stream). */
void durable_login(struct conn *c);
/* Whether the NATS PONG of the login makes c ready (not while the stream
 * is being created). */
int durable_pong_ready(const struct conn *c);
/* Allocates the windows and builds one message frame per publisher. */
void durable_setup(void);
/* Sends while the windows allow. */
void durable_refill(int64_t now);
int durable_drain_done(void);
/* A tcpchat ACK (type 13) or ERROR with its ref field. */
void durable_tc_ack(struct conn *c, const char *ref, size_t rlen, int ok,
                    int64_t now);
/* Redis: a reply to the oldest XADD in flight on c (ok: a stream id). */
void durable_fifo_reply(struct conn *c, int ok, int64_t now);
/* NATS: a MSG on subject subj (our inbox); returns -1 if not ours. */
int durable_nats_msg(struct conn *c, const char *subj, size_t slen,
                     const char *data, size_t n, int64_t now);
/* Prints the report and the RESULT line; returns the exit status. */
int durable_report(void);

#endif
