/*
 * HTTP/1.1 server side on bufferevents and Debian's http-parser (strict framing: two
 * Content-Length headers, Content-Length with chunked, bad chunk sizes and obsolete folding
 * are errors, answered 400 and closed). One struct http_conn per connection; its state moves
 * only through conn_set_state, which also arms the one deadline of that state.
 *
 * Re-entrancy: parser callbacks only record what happened (want_dispatch, want_end, an error);
 * conn_feed acts on it after http_parser_execute returns. Nothing is freed while a callback of
 * the connection is on the stack (busy > 0): conn_settle does it once the stack unwinds.
 */
#include "lib/http.h"

#include <arpa/inet.h>
#include <time.h>

#include <sys/queue.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/http_conn.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"

#define MAX_LISTENERS 4
#define MAX_HEADERS 100
#define FEED_CHUNK (64 * 1024)        /* bytes handed to the parser at a time */
#define READ_HIGH_WATER (256 * 1024)  /* unparsed input held per connection at most */
#define LINGER_MS 1000                /* reading and discarding after an early final answer */

struct listener {
	struct http_server *srv;
	struct evconnlistener *lev;
	SSL_CTX *tls; /* NULL: plain HTTP */
};

struct http_server {
	struct event_base *base;
	struct http_server_config cfg;
	struct listener listeners[MAX_LISTENERS];
	int nlisteners;
	struct http_conn *conns;
	int nconns;
	struct event *accept_retry; /* listeners paused after EMFILE */
	http_parser_settings settings;
};

static bool draining;
static int inflight;
static uint64_t req_seq;

void http_set_draining(bool d)
{
	draining = d;
}

int http_inflight(void)
{
	return inflight;
}

/* ---- requests ---- */

static void set_request_id(struct http_req *req, const char *given)
{
	/* A request id from the caller is kept when it is short and plain; otherwise our own. */
	bool ok = given && strlen(given) >= 8 && strlen(given) < sizeof req->id;
	for (const char *p = given; ok && *p; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-' ||
		      *p == '_'))
			ok = false;
	}
	if (ok) {
		snprintf(req->id, sizeof req->id, "%s", given);
	} else {
		unsigned char rnd[6];
		util_random(rnd, sizeof rnd);
		char hex[13];
		util_hex(rnd, sizeof rnd, hex);
		snprintf(req->id, sizeof req->id, "%s%04x", hex, (unsigned)(++req_seq & 0xffff));
	}
}

static struct http_req *req_new(struct http_conn *c)
{
	struct http_req *req = xcalloc(1, sizeof *req);
	req->conn = c;
	req->start_us = util_monotonic_us();
	req->route = c->srv->cfg.unmatched_route;
	req->body = "";
	TAILQ_INIT(&req->in_headers);
	TAILQ_INIT(&req->out_headers);
	return req;
}

static void req_free(struct http_req *req)
{
	if (req->state_free && req->state)
		req->state_free(req->state);
	if (req->principal_free && req->principal)
		req->principal_free(req->principal);
	for (int i = 0; i < req->nparams; i++)
		free(req->params[i]);
	evhttp_clear_headers(&req->in_headers);
	evhttp_clear_headers(&req->out_headers);
	free(req->path);
	free(req->query);
	free(req);
}

int http_route_match(const struct http_route *routes, int n, struct http_req *req)
{
	req->wrong_method = false;
	for (int r = 0; r < n; r++) {
		const char *pat = routes[r].pattern;
		const char *p = req->path;
		char *params[HTTP_MAX_PARAMS];
		int np = 0;
		bool match = true;
		while (*pat && match) {
			if (pat[0] == '{' && pat[1] == '}') {
				size_t len = strcspn(p, "/");
				if (len == 0 || np == HTTP_MAX_PARAMS) {
					match = false;
					break;
				}
				params[np++] = xstrndup(p, len);
				p += len;
				pat += 2;
			} else if (*pat == *p) {
				pat++;
				p++;
			} else {
				match = false;
			}
		}
		if (match && *p != '\0')
			match = false;
		if (!match || !(routes[r].methods & req->method)) {
			if (match)
				req->wrong_method = true;
			for (int i = 0; i < np; i++)
				free(params[i]);
			continue;
		}
		for (int i = 0; i < np; i++)
			req->params[i] = params[i];
		req->nparams = np;
		req->route = r;
		return r;
	}
	return -1;
}

const char *http_header(const struct http_req *req, const char *name)
{
	return evhttp_find_header(&req->in_headers, name);
}

void http_add_header(struct http_req *req, const char *name, const char *value)
{
	if (evhttp_add_header(&req->out_headers, name, value) != 0)
		log_warn(req->id, "reply header %s refused (bad characters)", name);
}

char *http_query_param(const struct http_req *req, const char *name)
{
	if (!req->query)
		return NULL;
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(req->query, &q) != 0) {
		evhttp_clear_headers(&q);
		return NULL;
	}
	const char *v = evhttp_find_header(&q, name);
	char *out = v ? xstrdup(v) : NULL;
	evhttp_clear_headers(&q);
	return out;
}

bool http_origin_allowed(const struct http_req *req, const char *origin)
{
	const char *o = http_header(req, "Origin");
	return !o || (origin && strcasecmp(o, origin) == 0);
}

/* ---- connections ---- */

static void conn_feed(struct http_conn *c);
static void conn_settle(struct http_conn *c);

/* http-parser aborts when a parser in an error state is paused or resumed: such a parser is
 * never fed again anyway. */
static void parser_pause(http_parser *p, int paused)
{
	enum http_errno e = HTTP_PARSER_ERRNO(p);
	if (e == HPE_OK || e == HPE_PAUSED)
		http_parser_pause(p, paused);
}

static int64_t body_cap(const struct http_conn *c)
{
	const struct http_server_config *cfg = &c->srv->cfg;
	const struct http_req *req = c->req;
	bool stream = req && req->route >= 0 && req->route < cfg->nroutes &&
		      (cfg->routes[req->route].flags & HTTP_ROUTE_STREAM_BODY);
	return (int64_t)(stream ? cfg->max_stream_bytes : cfg->max_body_bytes);
}

static bool route_streams(const struct http_conn *c)
{
	const struct http_server_config *cfg = &c->srv->cfg;
	int r = c->req ? c->req->route : -1;
	return r >= 0 && r < cfg->nroutes && (cfg->routes[r].flags & HTTP_ROUTE_STREAM_BODY);
}

static void arm(struct http_conn *c, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(c->timer, &tv);
}

/* The one place a connection changes state; it also sets that state's deadline. */
static void conn_set_state(struct http_conn *c, enum conn_state st)
{
	const struct http_server_config *cfg = &c->srv->cfg;
	c->state = st;
	evtimer_del(c->timer);
	switch (st) {
	case CONN_IDLE:
		arm(c, cfg->idle_timeout_ms);
		break;
	case CONN_HEAD:
		arm(c, cfg->head_timeout_ms);
		break;
	case CONN_BODY:
	case CONN_STREAM:
		c->window_bytes = 0;
		arm(c, cfg->head_timeout_ms);
		break;
	case CONN_CLOSING:
		arm(c, cfg->idle_timeout_ms); /* a client that never reads its answer */
		break;
	case CONN_LINGER:
		arm(c, LINGER_MS);
		break;
	case CONN_HANDLER:
	case CONN_DEAD:
		break;
	}
}

static void conn_close(struct http_conn *c)
{
	if (c->state == CONN_DEAD)
		return;
	conn_set_state(c, CONN_DEAD);
	parser_pause(&c->parser, 1);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	conn_settle(c);
}

static void conn_free(struct http_conn *c)
{
	struct http_server *s = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	event_free(c->timer);
	evbuffer_free(c->body);
	evbuffer_free(c->url);
	evbuffer_free(c->hfield);
	evbuffer_free(c->hvalue);
	free(c);
}

/* Frees what the unwound stack no longer needs, and resumes parsing after a reply. */
static void conn_settle(struct http_conn *c)
{
	if (c->busy > 0)
		return;
	if (c->state == CONN_DEAD) {
		if (c->bev) {
			bufferevent_free(c->bev);
			c->bev = NULL;
		}
		if (!c->req)
			conn_free(c);
		return;
	}
	if (c->state == CONN_CLOSING && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_close(c);
		return;
	}
	if (c->state == CONN_IDLE && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		conn_feed(c);
}

static void reset_message(struct http_conn *c)
{
	evbuffer_drain(c->body, evbuffer_get_length(c->body));
	evbuffer_drain(c->url, evbuffer_get_length(c->url));
	evbuffer_drain(c->hfield, evbuffer_get_length(c->hfield));
	evbuffer_drain(c->hvalue, evbuffer_get_length(c->hvalue));
	c->in_value = false;
	c->head_bytes = 0;
	c->nheaders = 0;
	c->message_done = false;
	c->want_dispatch = false;
	c->want_end = HTTP_BODY_DONE;
	c->has_end = false;
	c->expect_continue = false;
	c->error_status = 0;
	c->error_message = NULL;
	c->on_chunk = NULL;
	c->on_end = NULL;
	c->stream_arg = NULL;
	c->stream_started = c->stream_paused = false;
	c->body_received = 0;
	c->reply_streaming = c->reply_chunked = false;
	c->drain_cb = NULL;
	c->dispatched = false;
	c->hosts = 0;
}

static const char *method_name(int m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "OTHER";
	}
}

static int method_bit(unsigned m)
{
	switch (m) {
	case HTTP_GET: return EVHTTP_REQ_GET;
	case HTTP_POST: return EVHTTP_REQ_POST;
	case HTTP_HEAD: return EVHTTP_REQ_HEAD;
	case HTTP_PUT: return EVHTTP_REQ_PUT;
	case HTTP_DELETE: return EVHTTP_REQ_DELETE;
	case HTTP_OPTIONS: return EVHTTP_REQ_OPTIONS;
	case HTTP_PATCH: return EVHTTP_REQ_PATCH;
	default: return 0;
	}
}

/* Writes the status line and headers of req's reply. content_length < 0: none (a streamed or
 * a close-delimited body). */
void http_conn_write_head(struct http_req *req, int status, const char *content_type, int64_t content_length,
			  bool chunked)
{
	struct http_conn *c = req->conn;
	if (!c || !c->bev || c->state == CONN_DEAD)
		return;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	bool http10 = c->parser.http_major == 1 && c->parser.http_minor == 0;
	if (draining || !c->message_done || c->error_status || (http10 && chunked))
		c->keep_alive = false;
	evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", http10 ? 0 : 1, status, http_status_str((enum http_status)status));
	if (content_type)
		evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
	struct evkeyval *h;
	TAILQ_FOREACH(h, &req->out_headers, next)
	evbuffer_add_printf(out, "%s: %s\r\n", h->key, h->value);
	if (chunked && !http10)
		evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
	else if (content_length >= 0 && status != 204 && status != 304)
		evbuffer_add_printf(out, "Content-Length: %lld\r\n", (long long)content_length);
	if (!c->keep_alive)
		evbuffer_add_printf(out, "Connection: close\r\n");
	else if (http10)
		evbuffer_add_printf(out, "Connection: keep-alive\r\n");
	evbuffer_add(out, "\r\n", 2);
	c->reply_chunked = chunked && !http10;
}

/* The reply has been written: free the request, then keep the connection for the next
 * request, or close it once the answer has left. */
void http_conn_request_done(struct http_req *req, int status, bool force_close)
{
	struct http_conn *c = req->conn;
	int64_t us = util_monotonic_us() - req->start_us;
	metrics_request(req->route, status, us);
	if (c->dispatched)
		inflight--;
	bool unread = !c->message_done;
	c->req = NULL;
	req_free(req);
	if (c->state == CONN_DEAD) {
		conn_settle(c);
		return;
	}
	c->busy++;
	if (force_close || !c->keep_alive || draining) {
		/* Bytes of this request still unread would reset the connection under the answer:
		 * read and drop them for a moment after the answer has gone (a lingering close). */
		c->linger = unread || c->error_status;
		conn_set_state(c, CONN_CLOSING);
	} else {
		reset_message(c);
		parser_pause(&c->parser, 0);
		conn_set_state(c, CONN_IDLE);
	}
	c->busy--;
	conn_settle(c);
}

void http_conn_enable_drain_cb(struct http_conn *c)
{
	if (c->bev)
		bufferevent_enable(c->bev, EV_WRITE);
}

static bool is_html(const char *content_type)
{
	return content_type && strncasecmp(content_type, "text/html", 9) == 0;
}

/* Headers every answer carries; the citizen's HTML pages also get the browser protections. */
static void add_common_headers(struct http_req *req, int status, const char *content_type)
{
	char date[40];
	time_t now = time(NULL);
	struct tm tm;
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
	http_add_header(req, "Date", date); /* RFC 9110: a server with a clock sends it */
	http_add_header(req, "X-Request-Id", req->id);
	http_add_header(req, "Cache-Control", "no-store");
	http_add_header(req, "X-Content-Type-Options", "nosniff");
	if ((status == 503 || status == 429) && !evhttp_find_header(&req->out_headers, "Retry-After"))
		http_add_header(req, "Retry-After", "1"); /* unless the handler said how long */
	if (is_html(content_type)) {
		/* The pages take their style and script from us only (never inline), images from us
		 * or data: (the QR), polls to us, forms posting to us and redirecting on to a bank,
		 * and are never shown inside a frame. */
		/* A page with a policy of its own (the console's) keeps it: two would intersect. */
		if (!evhttp_find_header(&req->out_headers, "Content-Security-Policy"))
			http_add_header(req, "Content-Security-Policy",
					"default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
					"connect-src 'self'; form-action 'self' https: http:; frame-ancestors 'none'; "
					"base-uri 'none'");
		http_add_header(req, "X-Frame-Options", "DENY");
		/* same-origin, not no-referrer: under no-referrer a browser's form POST carries
		 * "Origin: null", which the form Origin check must refuse; banks and other sites still
		 * learn nothing of our URLs (which hold checkout tokens). */
		http_add_header(req, "Referrer-Policy", "same-origin");
	}
}

static const char *route_name(const struct http_req *req)
{
	const struct http_server_config *cfg = req->conn ? &req->conn->srv->cfg : NULL;
	if (cfg && req->route >= 0 && req->route < cfg->nroutes)
		return cfg->routes[req->route].name;
	return "unmatched";
}

void http_reply_raw(struct http_req *req, int status, const char *content_type, const char *body, size_t len)
{
	struct http_conn *c = req->conn;
	add_common_headers(req, status, content_type);
	if (c->state != CONN_DEAD) {
		http_conn_write_head(req, status, content_type, (int64_t)len, false);
		if (req->method != EVHTTP_REQ_HEAD && status != 204 && status != 304 && len)
			evbuffer_add(bufferevent_get_output(c->bev), body, len);
	}
	if (status >= 500) {
		/* The route's name, never the path: a path may carry a checkout token. */
		log_warn(req->id, "%s %s -> %d in %.1f ms", method_name(req->method), route_name(req), status,
			 (double)(util_monotonic_us() - req->start_us) / 1000.0);
	}
	http_conn_request_done(req, status, false);
}

void http_reply_json(struct http_req *req, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(body);
	if (!text) {
		static const char fallback[] = "{\"error\":{\"code\":\"internal_error\",\"message\":\"internal error\"}}";
		http_reply_raw(req, 500, "application/json", fallback, sizeof fallback - 1);
		return;
	}
	http_reply_raw(req, status, "application/json; charset=utf-8", text, strlen(text));
	free(text);
}

void http_reply_error_extra(struct http_req *req, enum err e, const char *field, const char *message,
			    json_t *extra)
{
	const struct err_info *info = err_lookup(e);
	json_t *err = json_object();
	json_object_set_new(err, "code", json_string(info->code));
	json_object_set_new(err, "message", json_string(message ? message : info->message));
	if (field)
		json_object_set_new(err, "field", json_string(field));
	json_object_set_new(err, "request_id", json_string(req->id));
	if (extra) {
		json_object_update(err, extra);
		json_decref(extra);
	}
	json_t *body = json_object();
	json_object_set_new(body, "error", err);
	http_reply_json(req, info->status, body);
}

void http_reply_error(struct http_req *req, enum err e, const char *field, const char *message)
{
	http_reply_error_extra(req, e, field, message, NULL);
}

void http_reply_redirect(struct http_req *req, const char *location)
{
	http_add_header(req, "Location", location);
	http_reply_raw(req, 303, "text/plain; charset=utf-8", "", 0);
}

/* An error found before any handler ran: the JSON shape, a request id, and close. */
static void conn_fail(struct http_conn *c, enum err e, const char *message)
{
	if (!c->req) {
		c->req = req_new(c);
		set_request_id(c->req, NULL);
	} else if (!c->req->id[0]) {
		set_request_id(c->req, http_header(c->req, "X-Request-Id"));
	}
	c->keep_alive = false;
	if (!c->error_status)
		c->error_status = err_lookup(e)->status;
	log_info(c->req->id, "request refused before routing: %s", message);
	http_reply_error(c->req, e, NULL, message);
}

static void buf_append(struct evbuffer *b, const char *at, size_t len)
{
	evbuffer_add(b, at, len);
}

static char *buf_string(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = xmalloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	return s;
}

/* ---- parser callbacks: record, never act ---- */

static struct http_conn *conn_of(http_parser *p)
{
	return p->data;
}

static int stop(struct http_conn *c, int status, const char *message)
{
	c->error_status = status;
	c->error_message = message;
	parser_pause(&c->parser, 1);
	return 0;
}

static int head_grow(struct http_conn *c, size_t len)
{
	c->head_bytes += len;
	if (c->head_bytes > c->srv->cfg.max_head_bytes)
		return stop(c, 431, "the request head is too large");
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	c->req = req_new(c);
	conn_set_state(c, CONN_HEAD);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	buf_append(c->url, at, len);
	return head_grow(c, len);
}

static int finish_header(struct http_conn *c)
{
	if (evbuffer_get_length(c->hfield) == 0)
		return 0;
	char *k = buf_string(c->hfield);
	char *v = buf_string(c->hvalue);
	int rc = 0;
	if (++c->nheaders > MAX_HEADERS)
		rc = stop(c, 431, "too many request headers");
	else if (strcasecmp(k, "Host") == 0 && ++c->hosts > 1)
		rc = stop(c, 400, "more than one Host header");
	else if (evhttp_add_header(&c->req->in_headers, k, v) != 0)
		rc = stop(c, 400, "a malformed request header");
	free(k);
	free(v);
	c->in_value = false;
	return rc;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	if (c->in_value && finish_header(c) != 0)
		return 0;
	if (c->error_status)
		return 0;
	buf_append(c->hfield, at, len);
	return head_grow(c, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	c->in_value = true;
	buf_append(c->hvalue, at, len);
	return head_grow(c, len);
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	struct http_req *req = c->req;
	finish_header(c);
	set_request_id(req, http_header(req, "X-Request-Id"));
	if (c->error_status)
		return 0;
	size_t ulen = evbuffer_get_length(c->url);
	char *url = buf_string(c->url);
	struct http_parser_url u;
	http_parser_url_init(&u);
	if (http_parser_parse_url(url, ulen, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)) || memchr(url, '\0', ulen)) {
		free(url);
		return stop(c, 400, "a malformed request target");
	}
	req->path = xstrndup(url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
	if (u.field_set & (1 << UF_QUERY))
		req->query = xstrndup(url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
	free(url);
	if (p->http_major == 1 && p->http_minor >= 1 && c->hosts == 0)
		return stop(c, 400, "an HTTP/1.1 request without Host");
	if (p->http_major != 1)
		return stop(c, 505, "only HTTP/1.x is served here");
	req->method = method_bit(p->method);
	c->keep_alive = http_should_keep_alive(p) != 0;
	const struct http_server_config *cfg = &c->srv->cfg;
	if (http_route_match(cfg->routes, cfg->nroutes, req) < 0)
		req->route = cfg->unmatched_route;
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > (uint64_t)body_cap(c))
		return stop(c, 413, "the request body is larger than this route accepts");
	const char *expect = http_header(req, "Expect");
	if (expect) {
		if (strcasecmp(expect, "100-continue") != 0)
			return stop(c, 417, "only Expect: 100-continue is understood");
		c->expect_continue = p->http_minor >= 1;
	}
	if (route_streams(c)) {
		/* The handler runs now and asks for the body when it has authenticated. */
		conn_set_state(c, CONN_STREAM);
		c->want_dispatch = true;
		parser_pause(p, 1);
		return 0;
	}
	if (c->expect_continue)
		evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
	conn_set_state(c, CONN_BODY);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	c->body_received += len;
	c->window_bytes += len;
	if (c->body_received > (uint64_t)body_cap(c)) {
		if (c->state == CONN_STREAM) {
			c->want_end = HTTP_BODY_TOO_LARGE;
			c->has_end = true;
			parser_pause(p, 1);
			return 0;
		}
		return stop(c, 413, "the request body is larger than this route accepts");
	}
	if (c->state == CONN_STREAM) {
		if (c->req && c->on_chunk)
			c->on_chunk(c->req, at, len, c->stream_arg);
		return 0;
	}
	evbuffer_add(c->body, at, len);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	c->message_done = true;
	if (c->state == CONN_STREAM) {
		c->want_end = HTTP_BODY_DONE;
		c->has_end = true;
	} else {
		c->want_dispatch = true;
	}
	/* One request at a time: pipelined ones wait in the input buffer. */
	parser_pause(p, 1);
	return 0;
}

static void dispatch(struct http_conn *c)
{
	struct http_req *req = c->req;
	if (c->state != CONN_STREAM) {
		conn_set_state(c, CONN_HANDLER);
		req->body_len = evbuffer_get_length(c->body);
		req->body = req->body_len ? (const char *)evbuffer_pullup(c->body, -1) : "";
	}
	const struct http_server_config *cfg = &c->srv->cfg;
	c->dispatched = true;
	inflight++;
	if (req->route >= 0 && req->route < cfg->nroutes && (cfg->routes[req->route].flags & HTTP_ROUTE_HTML_FORM) &&
	    !http_origin_allowed(req, cfg->public_origin)) {
		log_info(req->id, "%s: form posted from a foreign origin refused", cfg->routes[req->route].name);
		http_reply_error(req, ERR_FORBIDDEN, NULL, "this form may only be posted from its own page");
		return;
	}
	cfg->dispatch(req);
}

static enum err err_for_status(int status)
{
	switch (status) {
	case 413: return ERR_PAYLOAD_TOO_LARGE;
	case 408: return ERR_REQUEST_TIMEOUT;
	case 431: return ERR_HEAD_TOO_LARGE;
	default: return ERR_VALIDATION;
	}
}

static void stream_end(struct http_conn *c, enum http_body_end end)
{
	http_body_end_cb cb = c->on_end;
	c->on_end = NULL;
	c->on_chunk = NULL;
	if (end == HTTP_BODY_DONE && c->state == CONN_STREAM)
		conn_set_state(c, CONN_HANDLER);
	else
		c->stream_paused = true; /* nothing more is read for this request */
	if (cb && c->req)
		cb(c->req, end, c->stream_arg);
}

/* Hands buffered input to the parser while the connection's state lets it read. */
static void conn_feed(struct http_conn *c)
{
	c->busy++;
	for (;;) {
		if (!c->bev || c->state == CONN_DEAD || c->state == CONN_HANDLER || c->state == CONN_CLOSING)
			break;
		if (c->state == CONN_STREAM && (!c->stream_started || c->stream_paused))
			break;
		struct evbuffer *in = bufferevent_get_input(c->bev);
		if (c->state == CONN_LINGER) {
			evbuffer_drain(in, evbuffer_get_length(in));
			break;
		}
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			break;
		if (draining && c->state == CONN_IDLE) {
			conn_close(c);
			break;
		}
		size_t n = len < FEED_CHUNK ? len : FEED_CHUNK;
		const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
		if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
			parser_pause(&c->parser, 0);
		size_t used = http_parser_execute(&c->parser, &c->srv->settings, data, n);
		enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
		if (c->bev)
			evbuffer_drain(in, used);
		if (c->state == CONN_DEAD)
			break;
		if (c->error_status) {
			conn_fail(c, err_for_status(c->error_status), c->error_message);
			break;
		}
		if (e == HPE_HEADER_OVERFLOW) {
			c->error_status = 431;
			conn_fail(c, ERR_HEAD_TOO_LARGE, "the request head is too large");
			break;
		}
		if (e != HPE_OK && e != HPE_PAUSED) {
			char msg[160];
			snprintf(msg, sizeof msg, "malformed request: %s", http_errno_description(e));
			c->error_status = 400;
			conn_fail(c, ERR_VALIDATION, msg);
			break;
		}
		if (c->parser.upgrade) {
			c->error_status = 400;
			conn_fail(c, ERR_VALIDATION, "protocol upgrades are not served");
			break;
		}
		if (c->want_dispatch) {
			c->want_dispatch = false;
			dispatch(c);
			continue;
		}
		if (c->has_end) {
			c->has_end = false;
			stream_end(c, c->want_end);
			continue;
		}
		if (used == 0 && e == HPE_OK)
			break;
	}
	c->busy--;
	conn_settle(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;
	if (c->state == CONN_LINGER) {
		struct evbuffer *in = bufferevent_get_input(bev);
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	conn_feed(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;
	c->busy++;
	if (c->state == CONN_CLOSING) {
		int fd = (int)bufferevent_getfd(bev);
		if (c->linger && !c->tls && fd >= 0) {
			shutdown(fd, SHUT_WR);
			conn_set_state(c, CONN_LINGER);
		} else {
			conn_close(c);
		}
	} else if (c->drain_cb && c->req) {
		http_stream_cb cb = c->drain_cb;
		c->drain_cb = NULL;
		cb(c->req, c->drain_arg);
	}
	c->busy--;
	conn_settle(c);
}

/* The client has gone (or the socket failed): whoever holds the request learns it. */
static void conn_gone(struct http_conn *c)
{
	c->busy++;
	enum conn_state was = c->state;
	conn_close(c);
	if (c->req && was == CONN_STREAM && c->stream_started && c->on_end) {
		stream_end(c, HTTP_BODY_GONE);
	} else if (c->req && c->drain_cb) {
		http_stream_cb cb = c->drain_cb;
		c->drain_cb = NULL;
		cb(c->req, c->drain_arg);
	} else if (c->req && !c->dispatched) {
		struct http_req *req = c->req;
		c->req = NULL;
		req_free(req);
	}
	c->busy--;
	conn_settle(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct http_conn *c = arg;
	if ((what & BEV_EVENT_EOF) && c->state == CONN_HANDLER && !c->reply_streaming) {
		/* A client that half-closed after its request still gets the answer. */
		c->keep_alive = false;
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_gone(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	const struct http_server_config *cfg = &c->srv->cfg;
	uint64_t need = (uint64_t)cfg->body_min_rate * (uint64_t)cfg->head_timeout_ms / 1000;
	if (need == 0)
		need = 1;
	c->busy++;
	switch (c->state) {
	case CONN_HEAD:
		metrics_count("http_slow_clients");
		c->error_status = 408;
		conn_fail(c, ERR_REQUEST_TIMEOUT, "the request head did not arrive in time");
		break;
	case CONN_BODY:
		if (c->window_bytes < need) {
			metrics_count("http_slow_clients");
			c->error_status = 408;
			conn_fail(c, ERR_REQUEST_TIMEOUT, "the request body arrived too slowly");
		} else {
			conn_set_state(c, CONN_BODY);
		}
		break;
	case CONN_STREAM:
		if (c->stream_started && !c->stream_paused && c->window_bytes < need) {
			metrics_count("http_slow_clients");
			stream_end(c, HTTP_BODY_TOO_SLOW);
		} else {
			conn_set_state(c, CONN_STREAM);
		}
		break;
	case CONN_IDLE:
	case CONN_CLOSING:
	case CONN_LINGER:
		conn_close(c);
		break;
	case CONN_HANDLER:
	case CONN_DEAD:
		break;
	}
	c->busy--;
	conn_settle(c);
}

/* ---- streamed request bodies ---- */

void http_body_stream(struct http_req *req, http_body_chunk_cb on_chunk, http_body_end_cb on_end, void *arg)
{
	struct http_conn *c = req->conn;
	if (c->state == CONN_DEAD) {
		on_end(req, HTTP_BODY_GONE, arg);
		return;
	}
	c->on_chunk = on_chunk;
	c->on_end = on_end;
	c->stream_arg = arg;
	c->stream_started = true;
	if (c->expect_continue && c->bev)
		evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
	c->expect_continue = false;
	conn_set_state(c, CONN_STREAM);
	if (c->busy == 0)
		conn_feed(c);
}

void http_body_pause(struct http_req *req)
{
	struct http_conn *c = req->conn;
	c->stream_paused = true;
	parser_pause(&c->parser, 1);
}

void http_body_resume(struct http_req *req)
{
	struct http_conn *c = req->conn;
	if (!c->stream_paused)
		return;
	c->stream_paused = false;
	if (c->state == CONN_STREAM)
		conn_set_state(c, CONN_STREAM); /* a new rate window: the pause was ours */
	if (c->busy == 0)
		conn_feed(c);
}

uint64_t http_body_received(const struct http_req *req)
{
	return req->conn->body_received;
}

void http_reply_body_error(struct http_req *req, enum http_body_end end)
{
	switch (end) {
	case HTTP_BODY_TOO_LARGE:
		http_reply_error(req, ERR_PAYLOAD_TOO_LARGE, NULL, "the request body is larger than this route accepts");
		break;
	case HTTP_BODY_TOO_SLOW:
		http_reply_error(req, ERR_REQUEST_TIMEOUT, NULL, "the request body arrived too slowly");
		break;
	default:
		http_reply_error(req, ERR_VALIDATION, NULL, "the request body was cut short");
		break;
	}
}

/* ---- accepting ---- */

struct refusal {
	struct event *ev;
};

static void refusal_cb(evutil_socket_t fd, short what, void *arg)
{
	struct refusal *r = arg;
	char sink[4096];
	if (what & EV_READ) {
		ssize_t n = recv(fd, sink, sizeof sink, 0);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
			return;
	}
	event_free(r->ev);
	close(fd);
	free(r);
}

/* Past the cap: a clear answer (503 in the JSON shape), then close, without a connection
 * struct. The client's request is read and dropped for a moment so the answer is not lost to
 * a reset. */
static void refuse(struct http_server *s, evutil_socket_t fd, bool tls)
{
	metrics_count("http_connections_refused");
	if (!tls) {
		char id[24];
		unsigned char rnd[6];
		char hex[13];
		util_random(rnd, sizeof rnd);
		util_hex(rnd, sizeof rnd, hex);
		snprintf(id, sizeof id, "%s%04x", hex, (unsigned)(++req_seq & 0xffff));
		char body[256], msg[600];
		int bl = snprintf(body, sizeof body,
				  "{\"error\":{\"code\":\"unavailable\",\"message\":\"this server holds as many "
				  "connections as it may; try again\",\"request_id\":\"%s\"}}",
				  id);
		int ml = snprintf(msg, sizeof msg,
				  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
				  "X-Request-Id: %s\r\nRetry-After: 1\r\nCache-Control: no-store\r\nConnection: close\r\n"
				  "Content-Length: %d\r\n\r\n%s",
				  id, bl, body);
		if (send(fd, msg, (size_t)ml, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			log_debug(NULL, "refusal not sent: %s", strerror(errno));
		shutdown(fd, SHUT_WR);
	}
	struct refusal *r = xcalloc(1, sizeof *r);
	r->ev = event_new(s->base, fd, EV_READ | EV_PERSIST, refusal_cb, r);
	struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
	event_add(r->ev, &tv);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	struct http_server *s = l->srv;
	evutil_make_socket_nonblocking(fd);
	if (s->nconns >= s->cfg.max_conns) {
		refuse(s, fd, l->tls != NULL);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct bufferevent *bev;
	if (l->tls) {
		SSL *ssl = SSL_new(l->tls);
		if (!ssl) {
			close(fd);
			return;
		}
		bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (bev)
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!bev) {
		close(fd);
		return;
	}
	struct http_conn *c = xcalloc(1, sizeof *c);
	c->srv = s;
	c->base = s->base;
	c->bev = bev;
	c->tls = l->tls != NULL;
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, c->peer, sizeof c->peer);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, c->peer, sizeof c->peer);
	c->timer = evtimer_new(s->base, on_timer, c);
	c->body = evbuffer_new();
	c->url = evbuffer_new();
	c->hfield = evbuffer_new();
	c->hvalue = evbuffer_new();
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	reset_message(c);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	bufferevent_setcb(bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(bev, EV_READ, 0, READ_HIGH_WATER);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	conn_set_state(c, CONN_IDLE);
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *s = arg;
	for (int i = 0; i < s->nlisteners; i++) {
		if (s->listeners[i].lev)
			evconnlistener_enable(s->listeners[i].lev);
	}
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct listener *l = arg;
	int e = EVUTIL_SOCKET_ERROR();
	log_warn(NULL, "accept failed: %s", evutil_socket_error_to_string(e));
	/* Out of descriptors: pause accepting for a moment instead of spinning on it. */
	evconnlistener_disable(lev);
	struct timeval tv = {0, 100000};
	evtimer_add(l->srv->accept_retry, &tv);
}

const char *http_peer_addr(const struct http_req *req)
{
	return req->conn ? req->conn->peer : "";
}

bool http_req_tls(const struct http_req *req)
{
	return req->conn && req->conn->tls;
}

struct http_server *http_server_new(struct event_base *base, const struct http_server_config *cfg)
{
	struct http_server *s = xcalloc(1, sizeof *s);
	(void)metrics_counter("feegate_http_slow_clients_total", NULL,
			      "Connections closed because a request head or body arrived too slowly.");
	(void)metrics_counter("feegate_http_connections_refused_total", NULL,
			      "Connections refused at the per-worker connection cap.");
	s->base = base;
	s->cfg = *cfg;
	s->accept_retry = evtimer_new(base, accept_resume, s);
	http_parser_settings_init(&s->settings);
	s->settings.on_message_begin = on_message_begin;
	s->settings.on_url = on_url;
	s->settings.on_header_field = on_header_field;
	s->settings.on_header_value = on_header_value;
	s->settings.on_headers_complete = on_headers_complete;
	s->settings.on_body = on_body;
	s->settings.on_message_complete = on_message_complete;
	/* The parser's own head limit backs ours up (it counts each header line separately). */
	http_parser_set_max_header_size((uint32_t)cfg->max_head_bytes);
	return s;
}

bool http_server_listen(struct http_server *s, int fd, struct ssl_ctx_st *tls)
{
	if (s->nlisteners == MAX_LISTENERS)
		return false;
	struct listener *l = &s->listeners[s->nlisteners];
	l->srv = s;
	l->tls = tls;
	l->lev = evconnlistener_new(s->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!l->lev)
		return false;
	evconnlistener_set_error_cb(l->lev, on_accept_error);
	s->nlisteners++;
	return true;
}

void http_server_set_tls(struct http_server *s, struct ssl_ctx_st *tls)
{
	for (int i = 0; i < s->nlisteners; i++) {
		if (s->listeners[i].tls)
			s->listeners[i].tls = tls;
	}
}

void http_server_stop_listening(struct http_server *s)
{
	for (int i = 0; i < s->nlisteners; i++) {
		if (s->listeners[i].lev) {
			evconnlistener_free(s->listeners[i].lev);
			s->listeners[i].lev = NULL;
		}
	}
	for (struct http_conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->state == CONN_IDLE)
			conn_close(c);
	}
}

void http_server_free(struct http_server *s)
{
	http_server_stop_listening(s);
	for (struct http_conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->req) {
			struct http_req *req = c->req;
			c->req = NULL;
			req_free(req);
		}
		c->busy = 0;
		if (c->state == CONN_DEAD)
			conn_settle(c);
		else
			conn_close(c);
	}
	event_free(s->accept_retry);
	free(s);
}

int http_server_connections(const struct http_server *s)
{
	return s->nconns;
}

/* ---- JSON bodies ---- */

bool http_json_depth_ok(const char *s, size_t n, int max_depth)
{
	int depth = 0;
	bool in_string = false, escaped = false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (ch == '\\')
				escaped = true;
			else if (ch == '"')
				in_string = false;
			continue;
		}
		if (ch == '"') {
			in_string = true;
		} else if (ch == '{' || ch == '[') {
			if (++depth > max_depth)
				return false;
		} else if (ch == '}' || ch == ']') {
			depth--;
		}
	}
	return true;
}

json_t *http_parse_json_body(struct http_req *req, int max_depth)
{
	if (req->body_len == 0) {
		http_reply_error(req, ERR_INVALID_JSON, NULL, "the request body is empty; a JSON object is expected");
		return NULL;
	}
	if (util_utf8_length(req->body, req->body_len) < 0) {
		http_reply_error(req, ERR_INVALID_JSON, NULL, "the request body is not valid UTF-8");
		return NULL;
	}
	if (!http_json_depth_ok(req->body, req->body_len, max_depth)) {
		char msg[96];
		snprintf(msg, sizeof msg, "JSON nested deeper than %d levels", max_depth);
		http_reply_error(req, ERR_INVALID_JSON, NULL, msg);
		return NULL;
	}
	json_error_t jerr;
	json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		char msg[256];
		snprintf(msg, sizeof msg, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		http_reply_error(req, ERR_INVALID_JSON, NULL, msg);
		return NULL;
	}
	return root;
}
