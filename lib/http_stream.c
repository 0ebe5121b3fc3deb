/*
 * Streaming replies over evhttp's chunked transfer coding.
 *
 * How libevent 2.1 behaves, which this relies on:
 *  - evhttp_send_reply_chunk_with_cb() appends to the connection's output and remembers one
 *    callback, run each time that output has gone down to the socket in full;
 *  - a client that leaves (EOF, reset, or the server timeout) before the reply has ended makes
 *    evhttp detach the request from its connection (evhttp_request_get_connection() is then
 *    NULL), free the connection and run its close callback; the request itself stays alive
 *    until evhttp_send_reply_end(), which then only frees it.
 * So the close callback is the one signal that the client has gone: it marks the stream and
 * wakes the producer (through a zero-delay timer, never from inside evhttp's own teardown).
 * The close callback is removed before the reply ends, so a kept-alive connection never calls
 * back into a stream that no longer exists.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http.h"
#include "lib/mem.h"

struct http_stream {
	struct http_req *req;
	struct evhttp_connection *evcon; /* NULL once the client has gone */
	struct event *wake;              /* runs the drain callback outside evhttp's callbacks */
	http_stream_cb drain_cb;
	void *drain_arg;
	int status;
	bool gone;
};

static void stream_wake(evutil_socket_t fd, short what, void *arg)
{
	struct http_stream *s = arg;
	http_stream_cb cb = s->drain_cb;
	if (!cb)
		return;
	s->drain_cb = NULL;
	cb(s->req, s->drain_arg); /* may end the stream: s is not touched after this */
}

/* The loop of this process (one per worker), known from the first stream that had a
 * connection: a stream whose client left before it started has none of its own. */
static struct event_base *loop_base;

static void stream_schedule(struct http_stream *s)
{
	static const struct timeval now = {0, 0};
	if (!s->drain_cb)
		return;
	if (!s->wake && loop_base)
		s->wake = evtimer_new(loop_base, stream_wake, s);
	if (s->wake)
		event_add(s->wake, &now);
	else
		stream_wake(-1, 0, s); /* no loop known at all: the producer returns right after */
}

static void stream_closed(struct evhttp_connection *evcon, void *arg)
{
	struct http_stream *s = arg;
	s->gone = true;
	s->evcon = NULL;
	stream_schedule(s);
}

/* evhttp calls this (as the connection's write callback) each time the output has drained. */
static void stream_written(struct evhttp_connection *evcon, void *arg)
{
	struct http_stream *s = arg;
	stream_schedule(s);
}

void http_stream_start(struct http_req *req, int status, const char *content_type, const char *filename)
{
	struct http_stream *s = xcalloc(1, sizeof *s);
	s->req = req;
	s->status = status;
	req->stream = s;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req->ev);
	struct event_base *base = evcon ? evhttp_connection_get_base(evcon) : NULL;
	if (!evcon || !base) {
		s->gone = true; /* left while the reply was being prepared */
		return;
	}
	loop_base = base;
	s->wake = evtimer_new(base, stream_wake, s);
	s->evcon = evcon;
	evhttp_connection_set_closecb(evcon, stream_closed, s);

	struct evkeyvalq *h = evhttp_request_get_output_headers(req->ev);
	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "X-Request-Id", req->id);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (filename) {
		char disp[300];
		/* filenames are ours ([A-Za-z0-9._-]); nothing to quote */
		snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", filename);
		evhttp_add_header(h, "Content-Disposition", disp);
	}
	evhttp_send_reply_start(req->ev, status, NULL);
}

void http_stream_write(struct http_req *req, const void *data, size_t len)
{
	struct http_stream *s = req->stream;
	if (!s || s->gone || len == 0)
		return;
	struct evbuffer *buf = evbuffer_new();
	evbuffer_add(buf, data, len);
	evhttp_send_reply_chunk_with_cb(req->ev, buf, stream_written, s);
	evbuffer_free(buf);
}

size_t http_stream_queued(const struct http_req *req)
{
	const struct http_stream *s = req->stream;
	if (!s || s->gone || !s->evcon)
		return 0;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
	return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

void http_stream_on_drain(struct http_req *req, http_stream_cb cb, void *arg)
{
	struct http_stream *s = req->stream;
	s->drain_cb = cb;
	s->drain_arg = arg;
	/* Nothing left to wait for: call back at once (but from the loop, not from here). */
	if (s->gone || http_stream_queued(req) == 0)
		stream_schedule(s);
}

bool http_stream_gone(const struct http_req *req)
{
	const struct http_stream *s = req->stream;
	return !s || s->gone;
}

static void stream_free(struct http_req *req, int status)
{
	struct http_stream *s = req->stream;
	if (s->evcon)
		evhttp_connection_set_closecb(s->evcon, NULL, NULL);
	if (s->wake)
		event_free(s->wake);
	req->stream = NULL;
	free(s);
	http_req_done(req, status);
}

void http_stream_end(struct http_req *req)
{
	struct http_stream *s = req->stream;
	int status = s->gone ? 499 : s->status;
	if (s->evcon)
		evhttp_connection_set_closecb(s->evcon, NULL, NULL);
	s->evcon = NULL;
	/* With the client gone this only frees the evhttp request. */
	evhttp_send_reply_end(req->ev);
	stream_free(req, status);
}

void http_stream_abort(struct http_req *req)
{
	struct http_stream *s = req->stream;
	if (s->gone || !s->evcon) {
		evhttp_send_reply_end(req->ev);
		stream_free(req, 499);
		return;
	}
	/* Without its last chunk the client sees a truncated body, never a complete-looking one.
	 * Freeing the connection frees the request with it. */
	struct evhttp_connection *evcon = s->evcon;
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	s->evcon = NULL;
	evhttp_connection_free(evcon);
	stream_free(req, 500);
}
