#ifndef FEEGATE_HTTP_H
#define FEEGATE_HTTP_H
/*
 * The server side of HTTP/1.1: connections (lib/http.c, on bufferevents and a strict request
 * parser), one request context per request, the route table matcher and the reply functions.
 *
 * A request context lives from dispatch until its reply is sent; the reply frees it, so
 * nothing may touch a request after replying. A client that goes away while its request is
 * being handled leaves the context alive until the handler replies, so a late reply is safe.
 *
 * Every connection is bounded: the request head must arrive whole within a deadline of its
 * own, a body at a minimum rate, an idle keep-alive connection is closed after the idle
 * timeout, and a worker holds at most max_conns connections (past it, 503 and close). Errors
 * found before a handler runs (malformed framing, oversized head or body, a slow client) are
 * answered in the API's JSON error shape with X-Request-Id, then the connection is closed.
 * Routing is on the raw path: percent escapes are never decoded into another meaning.
 */
#include <event2/event.h>
#include <sys/queue.h> /* before keyvalq_struct.h: its TAILQ */
#include <event2/http.h> /* EVHTTP_REQ_* method bits; evkeyvalq functions */
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errors.h"
#include "lib/util.h"

#define HTTP_MAX_PARAMS 4

/* Route flags kept by this library, above the bits the caller uses for itself. */
#define HTTP_ROUTE_OWN_MASK 0xffff
#define HTTP_ROUTE_STREAM_BODY (1 << 16) /* body streamed to the handler (http_body_stream), own cap */
#define HTTP_ROUTE_HTML_FORM (1 << 17)   /* a browser form target: a foreign Origin is refused 403 */

struct http_req;
struct http_conn;
typedef void (*http_handler)(struct http_req *req);

struct http_route {
	int methods; /* EVHTTP_REQ_* mask */
	const char *pattern; /* "/v1/orders/{}/cancel": {} matches one non-empty raw segment */
	http_handler handler;
	const char *name; /* metrics label, and the route's name in log lines */
	int flags;        /* low 16 bits the caller's own (the gateway's auth rule); HTTP_ROUTE_* above */
};

struct http_req {
	struct http_conn *conn; /* its connection, kept until the reply even when the client has gone */
	char id[24];   /* request id: in the X-Request-Id header and every log line */
	int64_t start_us;
	int method;    /* one EVHTTP_REQ_* bit */
	int route;     /* index in the route table, or the server's unmatched index */
	bool wrong_method; /* no route matched, but one would with another method */
	char *params[HTTP_MAX_PARAMS]; /* raw path segments, never percent-decoded */
	int nparams;
	char *path;   /* raw path, as sent */
	char *query;  /* raw query string or NULL */
	const char *body; /* request body, contiguous; not NUL-terminated (empty on streamed routes) */
	size_t body_len;
	void *principal; /* set by the gateway's auth step, released with principal_free */
	void (*principal_free)(void *principal);
	void *state;     /* the handler's own, freed with state_free at reply time */
	void (*state_free)(void *state);
	struct evkeyvalq in_headers;
	struct evkeyvalq out_headers;
};

/* What the server needs from its owner. Sizes in bytes, times in milliseconds. */
struct http_server_config {
	const struct http_route *routes;
	int nroutes;
	int unmatched_route;             /* route index used for metrics when nothing matched */
	void (*dispatch)(struct http_req *req); /* req->route < 0 when nothing matched */
	const char *public_origin;       /* "https://host[:port]", for HTTP_ROUTE_HTML_FORM */
	int head_timeout_ms;             /* whole request head, from its first byte */
	int body_min_rate;               /* bytes per second, averaged over each head_timeout_ms */
	int idle_timeout_ms;             /* between requests on a keep-alive connection */
	int max_conns;                   /* per worker */
	size_t max_head_bytes;
	size_t max_body_bytes;           /* buffered routes */
	size_t max_stream_bytes;         /* HTTP_ROUTE_STREAM_BODY routes */
};

struct http_server;
struct ssl_ctx_st;
struct http_server *http_server_new(struct event_base *base, const struct http_server_config *cfg);
/* Serves the listening socket fd; with tls, every connection on it speaks TLS first. */
bool http_server_listen(struct http_server *s, int fd, struct ssl_ctx_st *tls) WARN_UNUSED;
/* Replaces the TLS context for new connections (certificate reload); the old one lives on in
 * the connections that use it. */
void http_server_set_tls(struct http_server *s, struct ssl_ctx_st *tls);
/* Stops accepting and closes idle connections; the rest close after their current reply. */
void http_server_stop_listening(struct http_server *s);
void http_server_free(struct http_server *s);
int http_server_connections(const struct http_server *s);

/* Finds the route for req's method and raw path. Returns its index, or -1; sets
 * req->wrong_method when a route matches the path but not the method. Fills req->params. */
int http_route_match(const struct http_route *routes, int n, struct http_req *req);

const char *http_header(const struct http_req *req, const char *name);
/* The client's address as text ("" when unknown), and whether it came over the TLS listener. */
const char *http_peer_addr(const struct http_req *req);
bool http_req_tls(const struct http_req *req);
/* Adds a header to the reply (values with CR or LF are refused by evhttp_add_header). */
void http_add_header(struct http_req *req, const char *name, const char *value);
/* The value of a query parameter, decoded, or NULL. Caller frees. */
char *http_query_param(const struct http_req *req, const char *name);
/* True when the request has no Origin header or one equal to origin. */
bool http_origin_allowed(const struct http_req *req, const char *origin) WARN_UNUSED;

void http_reply_raw(struct http_req *req, int status, const char *content_type, const char *body, size_t len);
void http_reply_json(struct http_req *req, int status, json_t *body); /* steals body */
void http_reply_error(struct http_req *req, enum err e, const char *field, const char *message);
/* Same, adding extra's keys to the error object (e.g. order_id); steals extra. */
void http_reply_error_extra(struct http_req *req, enum err e, const char *field, const char *message,
			    json_t *extra);
void http_reply_redirect(struct http_req *req, const char *location);

/*
 * Streamed request bodies, for routes flagged HTTP_ROUTE_STREAM_BODY (statement imports).
 * Such a route's handler runs as soon as the head has arrived; nothing of the body is read
 * until it calls http_body_stream (so authentication comes first and an unauthorised client's
 * body is never read). Chunks then arrive as the client sends them; http_body_pause stops
 * reading from the socket (the client is held back by TCP) until http_body_resume. on_end runs
 * once: HTTP_BODY_DONE after the last chunk, otherwise the body is incomplete and the handler
 * answers with http_reply_body_error (413 over the route's cap, 408 too slow, nothing when the
 * client has gone). The handler may also reply at any time; an unread rest closes the
 * connection.
 */
enum http_body_end { HTTP_BODY_DONE, HTTP_BODY_TOO_LARGE, HTTP_BODY_TOO_SLOW, HTTP_BODY_GONE };
typedef void (*http_body_chunk_cb)(struct http_req *req, const char *data, size_t len, void *arg);
typedef void (*http_body_end_cb)(struct http_req *req, enum http_body_end end, void *arg);
void http_body_stream(struct http_req *req, http_body_chunk_cb on_chunk, http_body_end_cb on_end, void *arg);
void http_body_pause(struct http_req *req);
void http_body_resume(struct http_req *req);
/* The body bytes received so far on a streamed route. */
uint64_t http_body_received(const struct http_req *req);
void http_reply_body_error(struct http_req *req, enum http_body_end end);

/*
 * Streaming replies (chunked transfer coding), for exports and large lists whose size is not
 * known in advance and must never sit in memory whole. Start once, write chunks, end once;
 * end (or abort) frees the request like any reply. Flow control: a producer writes while
 * http_stream_queued() is below its watermark, and otherwise asks http_stream_on_drain() to
 * be called back once the output has gone down to the socket; the callback also runs when the
 * client has gone (then http_stream_gone() is true and the producer must stop and abort).
 */
typedef void (*http_stream_cb)(struct http_req *req, void *arg);
/* filename: when not NULL, Content-Disposition: attachment; filename="..." */
void http_stream_start(struct http_req *req, int status, const char *content_type, const char *filename);
void http_stream_write(struct http_req *req, const void *data, size_t len);
size_t http_stream_queued(const struct http_req *req);
void http_stream_on_drain(struct http_req *req, http_stream_cb cb, void *arg);
bool http_stream_gone(const struct http_req *req);
void http_stream_end(struct http_req *req);
void http_stream_abort(struct http_req *req); /* closes the connection without the last chunk */

/* Shutdown support: while draining, replies carry "Connection: close". */
void http_set_draining(bool draining);
int http_inflight(void);

/* Checks JSON nesting depth without parsing; false when deeper than max_depth. */
bool http_json_depth_ok(const char *s, size_t n, int max_depth) WARN_UNUSED;
/* Parses a JSON request body applying the UTF-8 and depth rules; on failure replies 400 and
 * returns NULL. */
json_t *http_parse_json_body(struct http_req *req, int max_depth);

#endif
