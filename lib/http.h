#ifndef FEEGATE_HTTP_H
#define FEEGATE_HTTP_H
/*
 * The server side of one HTTP request: its context, the route table matcher and the reply
 * functions. A request context lives from dispatch until its reply is sent; the reply frees
 * it, so nothing may touch a request after replying. libevent keeps an unanswered request
 * alive even when its client has gone, so a late reply is always safe.
 */
#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/errors.h"
#include "lib/util.h"

#define HTTP_MAX_PARAMS 4

struct http_req;
typedef void (*http_handler)(struct http_req *req);

struct http_route {
	int methods; /* EVHTTP_REQ_* mask */
	const char *pattern; /* "/v1/orders/{}/cancel": {} matches one non-empty segment */
	http_handler handler;
	const char *name; /* metrics label */
	int flags;        /* caller's own (the gateway keeps its auth rule here) */
};

struct http_req {
	struct evhttp_request *ev;
	char id[24];   /* request id: in the X-Request-Id header and every log line */
	int64_t start_us;
	int route;     /* index in the route table, -1 when none matched */
	char *params[HTTP_MAX_PARAMS];
	int nparams;
	char *path;   /* decoded path */
	const char *pattern; /* the matched route's pattern: logged instead of the path, whose
	                        segments may be credentials (a checkout token) */
	char *query;  /* raw query string or NULL */
	const char *body; /* request body, contiguous; not NUL-terminated */
	size_t body_len;
	void *principal; /* set by the gateway's auth step, released with principal_free */
	void (*principal_free)(void *principal);
	void *state;     /* the handler's own, freed with state_free at reply time */
	void (*state_free)(void *state);
};

/* Builds a context for an incoming request (pulls the body up into one block). */
struct http_req *http_req_new(struct evhttp_request *ev);
/* Finds the route for method and path. Returns its index, or -1; sets *wrong_method when a
 * route matches the path but not the method. Fills req->params. */
int http_route_match(const struct http_route *routes, int n, struct http_req *req, bool *wrong_method);

const char *http_header(const struct http_req *req, const char *name);
/* The value of a query parameter, decoded, or NULL. Caller frees. */
char *http_query_param(const struct http_req *req, const char *name);

void http_reply_raw(struct http_req *req, int status, const char *content_type, const char *body, size_t len);
void http_reply_json(struct http_req *req, int status, json_t *body); /* steals body */
void http_reply_error(struct http_req *req, enum err e, const char *field, const char *message);
/* Same, adding extra's keys to the error object (e.g. order_id); steals extra. */
void http_reply_error_extra(struct http_req *req, enum err e, const char *field, const char *message,
			    json_t *extra);
void http_reply_redirect(struct http_req *req, const char *location);

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
