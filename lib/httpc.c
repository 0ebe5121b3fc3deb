#include "lib/httpc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/util.h"

static struct event_base *base;
static struct evdns_base *dns;
static SSL_CTX *ssl_ctx;
static int pending;

/*
 * Kept-alive connections, for callers that may send a request twice (httpc_send_reusing):
 * after a complete answer without "Connection: close" the connection waits here, keyed by
 * scheme, host and port, for the next request to the same place. One the server closes, or
 * that has waited POOL_IDLE_S, is dropped.
 */
#define POOL_MAX 128
#define POOL_IDLE_S 30

struct pooled {
	struct evhttp_connection *conn;
	char key[300];
	time_t since;
	struct pooled *next;
};
static struct pooled *pool;
static int pool_len;

struct call {
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	struct event *deadline;
	httpc_done_fn done;
	void *arg;
	bool finished;
	bool reuse;     /* the connection may go back to the pool after a complete answer */
	bool keep;      /* ... and this answer allows it */
	char key[300];
	char err[96];
};

bool httpc_init(struct event_base *b)
{
	base = b;
	dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (!dns)
		dns = evdns_base_new(base, 0); /* no resolv.conf: numeric hosts still work */
	ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!ssl_ctx)
		return false;
	SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_default_verify_paths(ssl_ctx);
	return true;
}

static void free_conn_later(evutil_socket_t fd, short what, void *arg);

static void pool_remove(struct pooled **link)
{
	struct pooled *p = *link;
	*link = p->next;
	pool_len--;
	evhttp_connection_set_closecb(p->conn, NULL, NULL);
	event_base_once(base, -1, EV_TIMEOUT, free_conn_later, p->conn, NULL);
	free(p);
}

/* A pooled connection was closed by the server (or failed): it is of no more use. */
static void pooled_closed(struct evhttp_connection *conn, void *arg)
{
	for (struct pooled **l = &pool; *l; l = &(*l)->next) {
		if ((*l)->conn == conn) {
			pool_remove(l);
			return;
		}
	}
}

/* Takes an idle connection to key out of the pool (NULL: none); drops stale ones on the way. */
static struct evhttp_connection *pool_take(const char *key)
{
	time_t now = time(NULL);
	for (struct pooled **l = &pool; *l;) {
		struct pooled *p = *l;
		if (now - p->since > POOL_IDLE_S) {
			pool_remove(l);
			continue;
		}
		if (strcmp(p->key, key) == 0) {
			struct evhttp_connection *conn = p->conn;
			*l = p->next;
			pool_len--;
			evhttp_connection_set_closecb(conn, NULL, NULL);
			free(p);
			return conn;
		}
		l = &p->next;
	}
	return NULL;
}

static bool pool_put(struct evhttp_connection *conn, const char *key)
{
	if (pool_len >= POOL_MAX)
		return false;
	struct pooled *p = xcalloc(1, sizeof *p);
	p->conn = conn;
	snprintf(p->key, sizeof p->key, "%s", key);
	p->since = time(NULL);
	p->next = pool;
	pool = p;
	pool_len++;
	evhttp_connection_set_closecb(conn, pooled_closed, NULL);
	return true;
}

void httpc_shutdown(void)
{
	while (pool) {
		struct pooled *p = pool;
		pool = p->next;
		evhttp_connection_free(p->conn);
		free(p);
	}
	pool_len = 0;
	if (dns)
		evdns_base_free(dns, 0);
	dns = NULL;
	if (ssl_ctx)
		SSL_CTX_free(ssl_ctx);
	ssl_ctx = NULL;
}

int httpc_pending(void)
{
	return pending;
}

static void free_conn_later(evutil_socket_t fd, short what, void *arg)
{
	evhttp_connection_free(arg);
}

/* Ends a call once: answers the caller, and frees the connection outside evhttp's callbacks. */
static void finish(struct call *c, int status, const char *body, size_t len)
{
	if (c->finished)
		return;
	c->finished = true;
	pending--;
	event_free(c->deadline);
	c->done(c->arg, status, body, len, status ? NULL : (c->err[0] ? c->err : "no answer"));
	/* evhttp has already closed a connection the answer said to close (fd -1) */
	bool open = bufferevent_getfd(evhttp_connection_get_bufferevent(c->conn)) >= 0;
	if (!(status && c->reuse && c->keep && open && pool_put(c->conn, c->key)))
		event_base_once(base, -1, EV_TIMEOUT, free_conn_later, c->conn, NULL);
	free(c);
}

static void on_response(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;
	if (c->finished)
		return;
	if (!req || evhttp_request_get_response_code(req) == 0) {
		if (!c->err[0])
			snprintf(c->err, sizeof c->err, "connection failed");
		finish(c, 0, NULL, 0);
		return;
	}
	const char *conn_hdr = evhttp_find_header(evhttp_request_get_input_headers(req), "Connection");
	c->keep = !(conn_hdr && strcasecmp(conn_hdr, "close") == 0) && evhttp_request_get_response_code(req) != 0;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char *body = xmalloc(len + 1);
	evbuffer_remove(in, body, len);
	body[len] = '\0';
	finish(c, evhttp_request_get_response_code(req), body, len);
	free(body);
}

static void on_error(enum evhttp_request_error e, void *arg)
{
	struct call *c = arg;
	static const char *const names[] = {"timeout", "connection closed", "invalid header", "buffer error",
					    "cancelled", "data too long"};
	snprintf(c->err, sizeof c->err, "%s", (int)e >= 0 && (int)e < 6 ? names[e] : "error");
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	snprintf(c->err, sizeof c->err, "timeout");
	/* evhttp will not call on_response for a cancelled request */
	evhttp_cancel_request(c->req);
	finish(c, 0, NULL, 0);
}

struct fail_now {
	httpc_done_fn done;
	void *arg;
	char err[96];
};

static void fail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fail_now *f = arg;
	f->done(f->arg, 0, NULL, 0, f->err);
	free(f);
}

static void fail_soon(httpc_done_fn done, void *arg, const char *err)
{
	struct fail_now *f = xcalloc(1, sizeof *f);
	f->done = done;
	f->arg = arg;
	snprintf(f->err, sizeof f->err, "%s", err);
	event_base_once(base, -1, EV_TIMEOUT, fail_cb, f, NULL);
}

static void send_call(const char *method, const char *url, const struct httpc_header *headers, size_t nheaders,
		      const char *body, size_t body_len, int timeout_ms, bool reuse, httpc_done_fn done, void *arg)
{
	struct evhttp_uri *uri = evhttp_uri_parse(url);
	const char *scheme = uri ? evhttp_uri_get_scheme(uri) : NULL;
	const char *host = uri ? evhttp_uri_get_host(uri) : NULL;
	if (!uri || !scheme || !host || (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))) {
		if (uri)
			evhttp_uri_free(uri);
		fail_soon(done, arg, "bad URL");
		return;
	}
	bool tls = strcasecmp(scheme, "https") == 0;
	int port = evhttp_uri_get_port(uri);
	if (port < 0)
		port = tls ? 443 : 80;
	char key[300];
	snprintf(key, sizeof key, "%s://%s:%d", tls ? "https" : "http", host, port);
	struct evhttp_connection *conn = reuse ? pool_take(key) : NULL;
	struct bufferevent *bev = NULL;
	if (conn) {
		/* a kept-alive connection: nothing to set up */
	} else if (tls) {
		SSL *ssl = SSL_new(ssl_ctx);
		SSL_set_tlsext_host_name(ssl, host);
		SSL_set1_host(ssl, host); /* the certificate must name this host */
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
						     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	} else {
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	}
	struct call *c = xcalloc(1, sizeof *c);
	c->done = done;
	c->arg = arg;
	c->reuse = reuse;
	snprintf(c->key, sizeof c->key, "%s", key);
	c->conn = conn ? conn : evhttp_connection_base_bufferevent_new(base, dns, bev, host, (unsigned short)port);
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	evhttp_connection_set_timeout_tv(c->conn, &tv);
	evhttp_connection_set_retries(c->conn, 0);
	c->req = evhttp_request_new(on_response, c);
	evhttp_request_set_error_cb(c->req, on_error);
	struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
	char hostport[300];
	if ((tls && port == 443) || (!tls && port == 80))
		snprintf(hostport, sizeof hostport, "%s", host);
	else
		snprintf(hostport, sizeof hostport, "%s:%d", host, port);
	evhttp_add_header(h, "Host", hostport);
	if (!reuse)
		evhttp_add_header(h, "Connection", "close");
	evhttp_add_header(h, "User-Agent", "feegate");
	for (size_t i = 0; i < nheaders; i++)
		evhttp_add_header(h, headers[i].name, headers[i].value);
	if (body && body_len)
		evbuffer_add(evhttp_request_get_output_buffer(c->req), body, body_len);
	const char *path = evhttp_uri_get_path(uri);
	const char *query = evhttp_uri_get_query(uri);
	char *target = xasprintf("%s%s%s", path && *path ? path : "/", query ? "?" : "", query ? query : "");
	enum evhttp_cmd_type cmd = strcasecmp(method, "GET") == 0 ? EVHTTP_REQ_GET : EVHTTP_REQ_POST;
	c->deadline = evtimer_new(base, on_deadline, c);
	pending++;
	evtimer_add(c->deadline, &tv);
	if (evhttp_make_request(c->conn, c->req, cmd, target) != 0) {
		/* evhttp freed the request */
		snprintf(c->err, sizeof c->err, "cannot send");
		c->req = NULL;
		pending--;
		event_free(c->deadline);
		evhttp_connection_free(c->conn);
		free(c);
		fail_soon(done, arg, "cannot send");
	}
	free(target);
	evhttp_uri_free(uri);
}

void httpc_send(const char *method, const char *url, const struct httpc_header *headers, size_t nheaders,
		const char *body, size_t body_len, int timeout_ms, httpc_done_fn done, void *arg)
{
	send_call(method, url, headers, nheaders, body, body_len, timeout_ms, false, done, arg);
}

void httpc_send_reusing(const char *method, const char *url, const struct httpc_header *headers, size_t nheaders,
			const char *body, size_t body_len, int timeout_ms, httpc_done_fn done, void *arg)
{
	send_call(method, url, headers, nheaders, body, body_len, timeout_ms, true, done, arg);
}
