/* lib/http and lib/http_stream: the server side on a real loopback socket, one event loop in
 * this process and a blocking client in a thread. Streaming replies (chunked, flow-controlled
 * by on_drain), streamed request bodies with pause/resume, strict framing, raw-path routing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/http.h"

#define CHUNKS 200
#define CHUNK_LEN 10000

static struct event_base *base;
static int port;
static volatile int client_done;
static char *client_out;
static size_t client_len;

/* ---- handlers ---- */

struct producer {
	int sent;
	int drains;
};

static void produce(struct http_req *req, void *arg)
{
	struct producer *p = arg;
	if (http_stream_gone(req)) {
		http_stream_abort(req);
		return;
	}
	char buf[CHUNK_LEN];
	while (p->sent < CHUNKS && http_stream_queued(req) < 64 * 1024) {
		memset(buf, 'a' + p->sent % 26, sizeof buf);
		http_stream_write(req, buf, sizeof buf);
		p->sent++;
	}
	if (p->sent == CHUNKS) {
		http_stream_end(req);
		return;
	}
	p->drains++;
	http_stream_on_drain(req, produce, p);
}

static struct producer producer;

static void stream_handler(struct http_req *req)
{
	memset(&producer, 0, sizeof producer);
	http_stream_start(req, 200, "text/csv; charset=utf-8", "report \"x\".csv");
	produce(req, &producer);
}

struct sink {
	size_t bytes;
	int pauses;
	struct event *resume;
	struct http_req *req;
};
static struct sink sink;

static void sink_resume(evutil_socket_t fd, short what, void *arg)
{
	http_body_resume(sink.req);
}

static void sink_chunk(struct http_req *req, const char *data, size_t len, void *arg)
{
	for (size_t i = 0; i < len; i++)
		assert_int_equal(data[i], (char)('0' + (sink.bytes + i) % 10));
	sink.bytes += len;
	/* pause after each chunk for a moment, as a slow consumer does */
	sink.pauses++;
	http_body_pause(req);
	struct timeval tv = {0, 1000};
	evtimer_add(sink.resume, &tv);
}

static void sink_end(struct http_req *req, enum http_body_end end, void *arg)
{
	if (end != HTTP_BODY_DONE) {
		http_reply_body_error(req, end);
		return;
	}
	char text[64];
	int n = snprintf(text, sizeof text, "%zu", sink.bytes);
	http_reply_raw(req, 200, "text/plain", text, (size_t)n);
}

static void sink_handler(struct http_req *req)
{
	sink.req = req;
	http_body_stream(req, sink_chunk, sink_end, NULL);
}

static void echo_param(struct http_req *req)
{
	http_reply_raw(req, 200, "text/plain", req->params[0], strlen(req->params[0]));
}

static const struct http_route routes[] = {
	{EVHTTP_REQ_GET, "/stream", stream_handler, "stream", 0},
	{EVHTTP_REQ_POST, "/sink", sink_handler, "sink", HTTP_ROUTE_STREAM_BODY},
	{EVHTTP_REQ_GET, "/item/{}", echo_param, "item", 0},
};

static void dispatch(struct http_req *req)
{
	if (req->route < 0 || req->route >= (int)ARRAY_LEN(routes)) {
		http_reply_error(req, req->wrong_method ? ERR_METHOD_NOT_ALLOWED : ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	routes[req->route].handler(req);
}

/* ---- the client thread ---- */

struct exchange {
	const char *request;
	size_t request_len;
	const char *tail; /* sent in pieces after the request */
	size_t tail_len;
};

static void *client(void *arg)
{
	struct exchange *x = arg;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		(void)!write(fd, x->request, x->request_len);
		for (size_t off = 0; off < x->tail_len;) {
			size_t n = x->tail_len - off < 30000 ? x->tail_len - off : 30000;
			ssize_t w = write(fd, x->tail + off, n);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		size_t cap = 1 << 20;
		client_out = malloc(cap);
		client_len = 0;
		for (;;) {
			if (client_len + 65536 > cap)
				client_out = realloc(client_out, cap *= 2);
			ssize_t n = read(fd, client_out + client_len, 65536);
			if (n <= 0)
				break;
			client_len += (size_t)n;
		}
		client_out[client_len] = '\0';
	}
	close(fd);
	__atomic_store_n(&client_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void watch(evutil_socket_t fd, short what, void *arg)
{
	if (__atomic_load_n(&client_done, __ATOMIC_ACQUIRE))
		event_base_loopexit(base, NULL);
}

/* Runs one exchange against a fresh server; the reply is in client_out. */
static void run(const char *request, const char *tail, size_t tail_len, size_t max_body)
{
	base = event_base_new();
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 16), 0);
	socklen_t sl = sizeof sa;
	getsockname(lfd, (struct sockaddr *)&sa, &sl);
	port = ntohs(sa.sin_port);
	struct http_server_config cfg = {
		.routes = routes,
		.nroutes = (int)ARRAY_LEN(routes),
		.unmatched_route = (int)ARRAY_LEN(routes),
		.dispatch = dispatch,
		.public_origin = "http://127.0.0.1",
		.head_timeout_ms = 5000,
		.body_min_rate = 1,
		.idle_timeout_ms = 200, /* the client reads until close: an idle keep-alive ends it */
		.max_conns = 10,
		.max_head_bytes = 8192,
		.max_body_bytes = 1024,
		.max_stream_bytes = max_body,
	};
	struct http_server *s = http_server_new(base, &cfg);
	assert_true(http_server_listen(s, lfd, NULL));
	sink.resume = evtimer_new(base, sink_resume, NULL);
	struct event *w = event_new(base, -1, EV_PERSIST, watch, NULL);
	struct timeval tv = {0, 5000};
	event_add(w, &tv);
	client_done = 0;
	free(client_out);
	client_out = NULL;
	struct exchange x = {request, strlen(request), tail, tail_len};
	pthread_t t;
	pthread_create(&t, NULL, client, &x);
	event_base_dispatch(base);
	pthread_join(t, NULL);
	event_free(w);
	event_free(sink.resume);
	http_server_free(s);
	event_base_free(base);
	assert_non_null(client_out);
}

/* Decodes a chunked body; returns its length, or -1 when the framing is wrong. */
static long dechunk(const char *p, char *out)
{
	long total = 0;
	for (;;) {
		char *end;
		long n = strtol(p, &end, 16);
		if (end == p || strncmp(end, "\r\n", 2) != 0)
			return -1;
		p = end + 2;
		if (n == 0)
			return strncmp(p, "\r\n", 2) == 0 ? total : -1;
		memcpy(out + total, p, (size_t)n);
		total += n;
		p += n;
		if (strncmp(p, "\r\n", 2) != 0)
			return -1;
		p += 2;
	}
}

static void test_streamed_reply_is_chunked_and_flow_controlled(void **state)
{
	run("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", NULL, 0, 0);
	assert_non_null(strstr(client_out, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(client_out, "Transfer-Encoding: chunked\r\n"));
	assert_non_null(strstr(client_out, "Content-Disposition: attachment; filename=\"report _x_.csv\"\r\n"));
	assert_null(strstr(client_out, "Content-Length"));
	const char *body = strstr(client_out, "\r\n\r\n") + 4;
	char *out = malloc((size_t)CHUNKS * CHUNK_LEN);
	long n = dechunk(body, out);
	assert_int_equal(n, (long)CHUNKS * CHUNK_LEN);
	for (int c = 0; c < CHUNKS; c++)
		assert_int_equal(out[(size_t)c * CHUNK_LEN + CHUNK_LEN - 1], 'a' + c % 26);
	free(out);
	assert_true(producer.drains > 0); /* 2 MB never sat in the output buffer at once */
}

static void test_http10_streamed_reply_is_close_delimited(void **state)
{
	run("GET /stream HTTP/1.0\r\n\r\n", NULL, 0, 0);
	assert_non_null(strstr(client_out, "HTTP/1.0 200 OK\r\n"));
	assert_null(strstr(client_out, "Transfer-Encoding"));
	const char *body = strstr(client_out, "\r\n\r\n") + 4;
	assert_int_equal(client_len - (size_t)(body - client_out), (size_t)CHUNKS * CHUNK_LEN);
}

static char *digits(size_t n)
{
	char *b = malloc(n);
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('0' + i % 10);
	return b;
}

static void test_streamed_body_arrives_whole_with_pauses(void **state)
{
	size_t n = 3 * 1024 * 1024;
	char *b = digits(n);
	char head[128];
	snprintf(head, sizeof head, "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
	memset(&sink, 0, sizeof sink);
	run(head, b, n, 8 * 1024 * 1024);
	free(b);
	char want[32];
	snprintf(want, sizeof want, "\r\n\r\n%zu", n);
	assert_non_null(strstr(client_out, "HTTP/1.1 200 OK"));
	assert_non_null(strstr(client_out, want));
	assert_true(sink.pauses > 1);
}

static void test_streamed_chunked_body_over_its_cap_is_413(void **state)
{
	size_t n = 300000;
	char *b = malloc(n + 64);
	size_t o = 0;
	for (int i = 0; i < 30; i++) {
		o += (size_t)sprintf(b + o, "2710\r\n");
		for (int k = 0; k < 10000; k++)
			b[o++] = (char)('0' + (i * 10000 + k) % 10);
		o += (size_t)sprintf(b + o, "\r\n");
		if (o > n - 10100)
			break;
	}
	memset(&sink, 0, sizeof sink);
	run("POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b, o, 100000);
	free(b);
	assert_non_null(strstr(client_out, "HTTP/1.1 413 "));
	assert_non_null(strstr(client_out, "\"payload_too_large\""));
	assert_non_null(strstr(client_out, "X-Request-Id: "));
}

static void test_two_content_lengths_are_one_400_and_close(void **state)
{
	run("POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 34\r\n\r\n"
	    "GET /item/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
	    NULL, 0, 1000);
	assert_non_null(strstr(client_out, "HTTP/1.1 400 "));
	assert_non_null(strstr(client_out, "Connection: close"));
	assert_null(strstr(client_out, "smuggled"));
	assert_null(strstr(strstr(client_out, "HTTP/1.1 400 ") + 4, "HTTP/1.1"));
}

static void test_routing_is_on_the_raw_path(void **state)
{
	run("GET /item/a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, 0);
	assert_non_null(strstr(client_out, "\r\n\r\na%2Fb"));
	run("GET /item/a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", NULL, 0, 0);
	assert_non_null(strstr(client_out, "\r\n\r\na%00b"));
	run("POST /item/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", NULL, 0, 0);
	assert_non_null(strstr(client_out, "HTTP/1.1 405 "));
}

static void test_pipelined_requests_are_answered_in_order(void **state)
{
	run("GET /item/one HTTP/1.1\r\nHost: x\r\n\r\nGET /item/two HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /item/three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	    NULL, 0, 0);
	const char *a = strstr(client_out, "\r\n\r\none");
	const char *b = strstr(client_out, "\r\n\r\ntwo");
	const char *c = strstr(client_out, "\r\n\r\nthree");
	assert_true(a && b && c && a < b && b < c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_streamed_reply_is_chunked_and_flow_controlled),
		cmocka_unit_test(test_http10_streamed_reply_is_close_delimited),
		cmocka_unit_test(test_streamed_body_arrives_whole_with_pauses),
		cmocka_unit_test(test_streamed_chunked_body_over_its_cap_is_413),
		cmocka_unit_test(test_two_content_lengths_are_one_400_and_close),
		cmocka_unit_test(test_routing_is_on_the_raw_path),
		cmocka_unit_test(test_pipelined_requests_are_answered_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
