/*
 * Streaming replies (chunked transfer coding) on the connections of lib/http.c. The reply's
 * head goes out at start; each write is one chunk; end sends the last chunk and finishes the
 * request like any reply. An HTTP/1.0 client gets the body delimited by closing instead.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <string.h>

#include "lib/http.h"
#include "lib/http_conn.h"

static bool alive(const struct http_req *req)
{
	return req->conn && req->conn->state != CONN_DEAD && req->conn->bev;
}

void http_stream_start(struct http_req *req, int status, const char *content_type, const char *filename)
{
	struct http_conn *c = req->conn;
	if (filename) {
		char cd[300];
		/* Quotes and backslashes would end the quoted name early; they never belong in it. */
		char clean[240];
		size_t o = 0;
		for (const char *p = filename; *p && o + 1 < sizeof clean; p++)
			clean[o++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) ? '_' : *p;
		clean[o] = '\0';
		snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", clean);
		http_add_header(req, "Content-Disposition", cd);
	}
	http_add_header(req, "X-Request-Id", req->id);
	http_add_header(req, "Cache-Control", "no-store");
	http_add_header(req, "X-Content-Type-Options", "nosniff");
	c->reply_streaming = true;
	c->reply_status = status;
	http_conn_write_head(req, status, content_type, -1, true);
}

void http_stream_write(struct http_req *req, const void *data, size_t len)
{
	if (!alive(req) || len == 0 || req->method == EVHTTP_REQ_HEAD)
		return;
	struct evbuffer *out = bufferevent_get_output(req->conn->bev);
	if (req->conn->reply_chunked) {
		evbuffer_add_printf(out, "%zx\r\n", len);
		evbuffer_add(out, data, len);
		evbuffer_add(out, "\r\n", 2);
	} else {
		evbuffer_add(out, data, len);
	}
}

size_t http_stream_queued(const struct http_req *req)
{
	if (!alive(req))
		return 0;
	return evbuffer_get_length(bufferevent_get_output(req->conn->bev));
}

struct deferred {
	struct http_req *req;
	http_stream_cb cb;
	void *arg;
};

static void run_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct deferred d = *(struct deferred *)arg;
	free(arg);
	d.cb(d.req, d.arg);
}

void http_stream_on_drain(struct http_req *req, http_stream_cb cb, void *arg)
{
	struct http_conn *c = req->conn;
	if (!alive(req) || http_stream_queued(req) == 0) {
		/* Nothing to wait for: call back from the loop, never from inside the caller. */
		struct deferred *d = malloc(sizeof *d);
		if (!d)
			return;
		*d = (struct deferred){req, cb, arg};
		struct timeval zero = {0, 0};
		if (event_base_once(c->base, -1, EV_TIMEOUT, run_deferred, d, &zero) != 0)
			free(d);
		return;
	}
	c->drain_cb = cb;
	c->drain_arg = arg;
	http_conn_enable_drain_cb(c);
}

bool http_stream_gone(const struct http_req *req)
{
	return !alive(req);
}

void http_stream_end(struct http_req *req)
{
	if (alive(req) && req->conn->reply_chunked && req->method != EVHTTP_REQ_HEAD)
		evbuffer_add(bufferevent_get_output(req->conn->bev), "0\r\n\r\n", 5);
	bool close_delimited = alive(req) && !req->conn->reply_chunked;
	req->conn->drain_cb = NULL;
	http_conn_request_done(req, req->conn->reply_status, close_delimited);
}

void http_stream_abort(struct http_req *req)
{
	req->conn->drain_cb = NULL;
	req->conn->keep_alive = false;
	http_conn_request_done(req, req->conn->reply_status, true);
}
