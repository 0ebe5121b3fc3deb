/* The HTTP server's request reading (lib/http.c): request line, headers, framing, bodies
 * buffered and streamed, pipelining. Each input is sent as one client's bytes over loopback to
 * a server in this process; whatever comes back must be HTTP responses. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/http.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz.h"

#define MAX_INPUT 65536

static struct event_base *base;
static struct http_server *server;
static struct sockaddr_in addr;

static void ok_handler(struct http_req *req)
{
	http_reply_raw(req, 200, "text/plain", req->body, req->body_len);
}

static void sink_chunk(struct http_req *req, const char *data, size_t len, void *arg)
{
}

static void sink_end(struct http_req *req, enum http_body_end end, void *arg)
{
	if (end != HTTP_BODY_DONE)
		http_reply_body_error(req, end);
	else
		http_reply_raw(req, 200, "text/plain", "done", 4);
}

static void sink_handler(struct http_req *req)
{
	http_body_stream(req, sink_chunk, sink_end, NULL);
}

static void stream_handler(struct http_req *req)
{
	http_stream_start(req, 200, "text/csv", "x.csv");
	http_stream_write(req, "a,b\r\n", 5);
	http_stream_end(req);
}

static const struct http_route routes[] = {
	{EVHTTP_REQ_GET | EVHTTP_REQ_POST, "/v1/orders/{}", ok_handler, "item", 0},
	{EVHTTP_REQ_POST, "/checkout/{}", ok_handler, "form", HTTP_ROUTE_HTML_FORM},
	{EVHTTP_REQ_POST, "/v1/statements", sink_handler, "sink", HTTP_ROUTE_STREAM_BODY},
	{EVHTTP_REQ_GET, "/stream", stream_handler, "stream", 0},
};
#define NROUTES ((int)(sizeof routes / sizeof routes[0]))

static void dispatch(struct http_req *req)
{
	if (req->route < 0 || req->route >= NROUTES) {
		http_reply_error(req, req->wrong_method ? ERR_METHOD_NOT_ALLOWED : ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	routes[req->route].handler(req);
}

static void setup(void)
{
	log_set_level(LOG_ERROR);
	base = event_base_new();
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	addr.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
	socklen_t sl = sizeof addr;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 64) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &sl) != 0)
		abort();
	static const struct http_server_config cfg = {
		.routes = routes,
		.nroutes = NROUTES,
		.unmatched_route = NROUTES,
		.dispatch = dispatch,
		.public_origin = "http://127.0.0.1",
		.head_timeout_ms = 100,
		.body_min_rate = 1,
		.idle_timeout_ms = 20,
		.max_conns = 8,
		.max_head_bytes = 8192,
		.max_body_bytes = 4096,
		.max_stream_bytes = 16384,
	};
	server = http_server_new(base, &cfg);
	if (!server || !http_server_listen(server, lfd, NULL))
		abort();
}

struct client {
	int fd;
	char *out;
	size_t len, cap;
	bool eof;
};

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;
	if (what & EV_TIMEOUT)
		abort(); /* every deadline is far shorter: the server kept a finished client open */
	for (;;) {
		if (c->len + 4096 > c->cap) {
			c->cap = c->cap ? c->cap * 2 : 65536;
			c->out = realloc(c->out, c->cap);
			if (!c->out)
				abort();
		}
		ssize_t n = read(fd, c->out + c->len, 4096);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			c->eof = true;
			event_base_loopbreak(base);
		}
		return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!base)
		setup();
	if (size > MAX_INPUT)
		size = MAX_INPUT;
	struct client c = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
	if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&addr, sizeof addr) != 0)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t w = write(c.fd, data + off, size - off);
		if (w <= 0)
			break; /* the server may close early on a bad request */
		off += (size_t)w;
	}
	shutdown(c.fd, SHUT_WR);
	evutil_make_socket_nonblocking(c.fd);
	struct event *ev = event_new(base, c.fd, EV_READ | EV_PERSIST, on_readable, &c);
	struct timeval limit = {2, 0};
	event_add(ev, &limit);
	while (!c.eof)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
	close(c.fd);
	/* let the server see the close and free the connection before the next input */
	for (int i = 0; i < 4 && http_server_connections(server) > 0; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	if (c.len && strncmp(c.out, "HTTP/1.", 7) != 0)
		abort();
	free(c.out);
	return 0;
}
