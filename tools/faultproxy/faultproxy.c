/*
 * faultproxy: a TCP proxy for the fault tests. It forwards 127.0.0.1:LISTEN to TARGET and, on
 * command, misbehaves the way networks do, so the gateway's timeouts and reconnects can be
 * proved against the real PostgreSQL and banksim behind it.
 *
 * Modes, switched at run time by a line on the control socket (a unix socket):
 *   pass            forward both ways
 *   latency MS      every chunk waits MS milliseconds before it is forwarded
 *   reset           every open connection is reset (RST) now; new ones are reset on accept
 *   blackhole       nothing is forwarded and nothing is answered: bytes sent vanish, no FIN,
 *                   no RST; new connections are not accepted (the kernel's backlog fills)
 *   halfopen        the far side vanished without a word: the upstream connection is dropped,
 *                   the client's stays open, unread and unanswered; new ones likewise
 *   status          (no change) prints the mode
 * Each command is answered with one line: "ok mode=M latency_ms=N open=N accepted=N".
 * SIGUSR1 switches to pass (a way out without the control socket), SIGTERM/SIGINT end it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "lib/util.h"

typedef enum { FP_PASS, FP_LATENCY, FP_RESET, FP_BLACKHOLE, FP_HALFOPEN } fp_mode;

static const char *const fp_mode_names[] = { "pass", "latency", "reset", "blackhole", "halfopen" };

typedef struct fp_conn fp_conn;

/* One direction of a proxied connection: bytes read from `from` go to `to`. */
typedef struct {
	fp_conn *conn;
	struct bufferevent *from;
	struct bufferevent *to;
	struct event *delay; /* latency mode: the chunk held back */
	struct evbuffer *held;
} fp_pipe;

struct fp_conn {
	fp_conn *prev, *next;
	struct bufferevent *client;
	struct bufferevent *upstream; /* NULL once dropped (halfopen) or before connect */
	fp_pipe up, down;             /* client -> upstream, upstream -> client */
};

static struct {
	struct event_base *base;
	struct evconnlistener *listener;
	struct sockaddr_storage target;
	int target_len;
	fp_mode mode;
	int latency_ms;
	fp_conn *conns;
	long open, accepted;
} fp;

static void fp_conn_free(fp_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		fp.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	fp_pipe *pipes[] = { &c->up, &c->down };
	for (int i = 0; i < 2; i++) {
		if (pipes[i]->delay)
			event_free(pipes[i]->delay);
		if (pipes[i]->held)
			evbuffer_free(pipes[i]->held);
	}
	if (c->client)
		bufferevent_free(c->client);
	if (c->upstream)
		bufferevent_free(c->upstream);
	fp.open--;
	free(c);
}

/* Closes the client's socket with an RST rather than a FIN (SO_LINGER 0). */
static void fp_conn_reset(fp_conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	evutil_socket_t fd = c->client ? bufferevent_getfd(c->client) : -1;
	if (fd >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	fp_conn_free(c);
}

/* The far side is gone without a word: drop upstream, keep the client open and ignored. */
static void fp_conn_halfopen(fp_conn *c)
{
	if (c->upstream) {
		bufferevent_free(c->upstream);
		c->upstream = NULL;
	}
	c->up.to = c->down.from = NULL;
	if (c->client)
		bufferevent_disable(c->client, EV_READ | EV_WRITE);
}

static void fp_forward(fp_pipe *p, struct evbuffer *src)
{
	if (p->to)
		bufferevent_write_buffer(p->to, src);
	else
		evbuffer_drain(src, evbuffer_get_length(src));
}

static void fp_delay_done(evutil_socket_t fd, short what, void *arg)
{
	fp_pipe *p = arg;
	fp_forward(p, p->held);
	if (p->from)
		bufferevent_enable(p->from, EV_READ);
}

static void fp_on_read(struct bufferevent *bev, void *arg)
{
	fp_pipe *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	switch (fp.mode) {
	case FP_PASS:
		fp_forward(p, in);
		break;
	case FP_LATENCY: {
		/* Hold this chunk and stop reading until it has gone: order is kept. */
		evbuffer_add_buffer(p->held, in);
		bufferevent_disable(bev, EV_READ);
		struct timeval tv = { fp.latency_ms / 1000, (fp.latency_ms % 1000) * 1000 };
		evtimer_add(p->delay, &tv);
		break;
	}
	case FP_BLACKHOLE:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	case FP_RESET:
		fp_conn_reset(p->conn);
		break;
	case FP_HALFOPEN:
		fp_conn_halfopen(p->conn);
		break;
	}
}

/* The last bytes for a side whose partner has ended are written: now it ends too. */
static void fp_on_drained(struct bufferevent *bev, void *arg)
{
	fp_conn_free(((fp_pipe *)arg)->conn);
}

static void fp_on_event(struct bufferevent *bev, short what, void *arg)
{
	fp_pipe *p = arg;
	fp_conn *c = p->conn;
	if (what & BEV_EVENT_CONNECTED) {
		bufferevent_enable(c->upstream, EV_READ | EV_WRITE);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (fp.mode == FP_BLACKHOLE || fp.mode == FP_HALFOPEN) {
		/* The client must not learn of the upstream's end: that is the fault being shown. */
		if (bev == c->upstream) {
			fp_conn_halfopen(c);
			return;
		}
	}
	/* Pass the end on once what is buffered for the other side has been written. */
	struct bufferevent *other = bev == c->client ? c->upstream : c->client;
	if (other)
		fp_forward(p, bufferevent_get_input(bev));
	bufferevent_free(bev);
	if (bev == c->client) {
		c->client = NULL;
		c->up.from = c->down.to = NULL;
	} else {
		c->upstream = NULL;
		c->up.to = c->down.from = NULL;
	}
	if (!other || evbuffer_get_length(bufferevent_get_output(other)) == 0) {
		fp_conn_free(c);
		return;
	}
	bufferevent_disable(other, EV_READ);
	bufferevent_setcb(other, NULL, fp_on_drained, fp_on_event, other == c->client ? (void *)&c->up : (void *)&c->down);
}

static bool fp_pipe_init(fp_pipe *p, fp_conn *c, struct bufferevent *from, struct bufferevent *to) WARN_UNUSED;
static bool fp_pipe_init(fp_pipe *p, fp_conn *c, struct bufferevent *from, struct bufferevent *to)
{
	p->conn = c;
	p->from = from;
	p->to = to;
	p->held = evbuffer_new();
	p->delay = evtimer_new(fp.base, fp_delay_done, p);
	return p->held && p->delay;
}

static void fp_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	fp_conn *c = calloc(1, sizeof *c);
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->next = fp.conns;
	if (fp.conns)
		fp.conns->prev = c;
	fp.conns = c;
	fp.open++;
	fp.accepted++;
	c->client = bufferevent_socket_new(fp.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->client) {
		evutil_closesocket(fd);
		goto failed;
	}
	if (fp.mode == FP_RESET) {
		fp_conn_reset(c);
		return;
	}
	c->upstream = bufferevent_socket_new(fp.base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->upstream || !fp_pipe_init(&c->up, c, c->client, c->upstream) ||
	    !fp_pipe_init(&c->down, c, c->upstream, c->client))
		goto failed;
	bufferevent_setcb(c->client, fp_on_read, NULL, fp_on_event, &c->up);
	bufferevent_setcb(c->upstream, fp_on_read, NULL, fp_on_event, &c->down);
	if (fp.mode == FP_HALFOPEN) {
		fp_conn_halfopen(c);
		return;
	}
	bufferevent_enable(c->client, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->upstream, (struct sockaddr *)&fp.target, fp.target_len) != 0)
		goto failed;
	return;
failed:
	fp_conn_free(c);
}

static void fp_set_mode(fp_mode m, int latency_ms)
{
	fp.mode = m;
	fp.latency_ms = latency_ms;
	if (m == FP_BLACKHOLE)
		evconnlistener_disable(fp.listener);
	else
		evconnlistener_enable(fp.listener);
	fp_conn *next;
	for (fp_conn *c = fp.conns; c; c = next) {
		next = c->next;
		if (m == FP_RESET)
			fp_conn_reset(c);
		else if (m == FP_HALFOPEN)
			fp_conn_halfopen(c);
	}
	fprintf(stderr, "faultproxy: mode %s%s\n", fp_mode_names[m], m == FP_LATENCY ? " (latency set)" : "");
}

/* One command line from the control socket; the answer goes back on the same connection. */
static void fp_on_control(struct bufferevent *bev, void *arg)
{
	char *line;
	while ((line = evbuffer_readln(bufferevent_get_input(bev), NULL, EVBUFFER_EOL_CRLF)) != NULL) {
		char word[32] = "";
		int ms = 0;
		int n = sscanf(line, "%31s %d", word, &ms);
		bool ok = true;
		if (n >= 1 && strcmp(word, "pass") == 0)
			fp_set_mode(FP_PASS, 0);
		else if (n == 2 && strcmp(word, "latency") == 0 && ms >= 0 && ms <= 600000)
			fp_set_mode(FP_LATENCY, ms);
		else if (n >= 1 && strcmp(word, "reset") == 0)
			fp_set_mode(FP_RESET, 0);
		else if (n >= 1 && strcmp(word, "blackhole") == 0)
			fp_set_mode(FP_BLACKHOLE, 0);
		else if (n >= 1 && strcmp(word, "halfopen") == 0)
			fp_set_mode(FP_HALFOPEN, 0);
		else if (!(n >= 1 && strcmp(word, "status") == 0))
			ok = false;
		if (ok)
			evbuffer_add_printf(bufferevent_get_output(bev), "ok mode=%s latency_ms=%d open=%ld accepted=%ld\n",
					    fp_mode_names[fp.mode], fp.latency_ms, fp.open, fp.accepted);
		else
			evbuffer_add_printf(bufferevent_get_output(bev),
					    "error: pass | latency MS | reset | blackhole | halfopen | status\n");
		free(line);
	}
}

static void fp_on_control_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void fp_on_control_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
				 void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(fp.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	bufferevent_setcb(bev, fp_on_control, NULL, fp_on_control_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void fp_on_signal(evutil_socket_t sig, short what, void *arg)
{
	if (sig == SIGUSR1)
		fp_set_mode(FP_PASS, 0);
	else
		event_base_loopexit(fp.base, NULL);
}

static const char usage[] = "usage: faultproxy LISTEN_PORT TARGET_HOST:PORT CONTROL_SOCKET_PATH\n"
			    "  listens on 127.0.0.1:LISTEN_PORT (0: a free port, printed as \"port N\")\n"
			    "  control lines: pass | latency MS | reset | blackhole | halfopen | status\n";

int main(int argc, char **argv)
{
	int rc = 1;
	struct evconnlistener *control = NULL;
	struct event *signals[3] = { NULL, NULL, NULL };
	if (argc != 4) {
		fputs(usage, stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	fp.target_len = sizeof fp.target;
	if (evutil_parse_sockaddr_port(argv[2], (struct sockaddr *)&fp.target, &fp.target_len) != 0) {
		fprintf(stderr, "faultproxy: bad target %s (want a numeric HOST:PORT)\n", argv[2]);
		return 2;
	}
	char *end;
	long port = strtol(argv[1], &end, 10);
	if (*end || port < 0 || port > 65535) {
		fprintf(stderr, "faultproxy: bad port %s\n", argv[1]);
		return 2;
	}
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	if (strlen(argv[3]) >= sizeof un.sun_path) {
		fprintf(stderr, "faultproxy: control socket path too long\n");
		return 2;
	}
	strcpy(un.sun_path, argv[3]);
	unlink(argv[3]);

	fp.base = event_base_new();
	if (!fp.base)
		goto done;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	fp.listener = evconnlistener_new_bind(fp.base, fp_on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
					      64, (struct sockaddr *)&sin, sizeof sin);
	if (!fp.listener) {
		fprintf(stderr, "faultproxy: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
		goto done;
	}
	control = evconnlistener_new_bind(fp.base, fp_on_control_accept, NULL, LEV_OPT_CLOSE_ON_FREE, 8,
					  (struct sockaddr *)&un, sizeof un);
	if (!control) {
		fprintf(stderr, "faultproxy: cannot listen on %s: %s\n", argv[3], strerror(errno));
		goto done;
	}
	int sigs[3] = { SIGTERM, SIGINT, SIGUSR1 };
	for (int i = 0; i < 3; i++) {
		signals[i] = evsignal_new(fp.base, sigs[i], fp_on_signal, NULL);
		if (!signals[i] || event_add(signals[i], NULL) != 0)
			goto done;
	}
	struct sockaddr_in bound;
	socklen_t blen = sizeof bound;
	if (getsockname(evconnlistener_get_fd(fp.listener), (struct sockaddr *)&bound, &blen) != 0)
		goto done;
	printf("port %d\n", ntohs(bound.sin_port));
	fflush(stdout);
	rc = event_base_dispatch(fp.base) == 0 ? 0 : 1;
done:
	while (fp.conns)
		fp_conn_free(fp.conns);
	for (int i = 0; i < 3; i++)
		if (signals[i])
			event_free(signals[i]);
	if (control) {
		evconnlistener_free(control);
		unlink(argv[3]);
	}
	if (fp.listener)
		evconnlistener_free(fp.listener);
	if (fp.base)
		event_base_free(fp.base);
	return rc;
}
