#ifndef FEEGATE_HTTP_CONN_H
#define FEEGATE_HTTP_CONN_H
/*
 * Inside lib/http.c and lib/http_stream.c only: one client connection. Handlers see struct
 * http_req and the functions of lib/http.h, never this.
 */
#include <event2/bufferevent.h>
#include <http_parser.h>

#include "lib/http.h"

enum conn_state {
	CONN_IDLE,    /* between requests: the idle timeout runs */
	CONN_HEAD,    /* a request head is arriving: its deadline runs from the first byte */
	CONN_BODY,    /* a buffered body is arriving at the minimum rate */
	CONN_STREAM,  /* a streamed body: its handler holds the request */
	CONN_HANDLER, /* the request is whole; its handler holds it */
	CONN_CLOSING, /* the last reply is leaving; close once the output is empty */
	CONN_LINGER,  /* reply sent and write side shut: discard what still arrives, briefly */
	CONN_DEAD,    /* socket closed; freed once no request refers to it */
};

struct http_conn {
	struct http_server *srv;
	struct event_base *base;
	struct bufferevent *bev; /* NULL once closed */
	enum conn_state state;
	http_parser parser;
	struct event *timer;     /* the one deadline of the current state */
	struct http_req *req;    /* the request being read or handled */
	struct evbuffer *body;   /* buffered body of req */
	struct evbuffer *url;
	struct evbuffer *hfield, *hvalue;
	bool in_value;           /* the parser is inside a header value */
	size_t head_bytes;
	int nheaders;
	bool keep_alive;         /* this request allows another after it */
	bool message_done;       /* the parser has seen the whole request */
	bool want_dispatch;      /* set by the parser callbacks, acted on after they return */
	bool expect_continue;
	bool tls;
	char peer[48];           /* the client's address, as text */
	bool linger;             /* after the last answer, shut the write side and drain a moment */
	bool dispatched;         /* req has been handed to its handler (counts as in flight) */
	int hosts;               /* Host headers seen */
	bool has_end;            /* want_end is to be reported to the streaming handler */
	enum http_body_end want_end;
	int error_status;        /* a framing error found in a parser callback */
	const char *error_message;
	int busy;                /* depth of callbacks on the stack: free only at zero */
	/* streamed body */
	http_body_chunk_cb on_chunk;
	http_body_end_cb on_end;
	void *stream_arg;
	bool stream_started, stream_paused;
	uint64_t body_received;
	uint64_t window_bytes;   /* body bytes in the current rate window */
	/* streamed reply */
	bool reply_streaming, reply_chunked;
	int reply_status;
	http_stream_cb drain_cb;
	void *drain_arg;
	struct http_conn *next, *prev; /* the server's list */
};

/* Shared with lib/http_stream.c. */
void http_conn_write_head(struct http_req *req, int status, const char *content_type, int64_t content_length,
			  bool chunked);
void http_conn_request_done(struct http_req *req, int status, bool force_close);
void http_conn_enable_drain_cb(struct http_conn *c);

#endif
