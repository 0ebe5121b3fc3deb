#include "lib/http.h"

#include <sys/queue.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/metrics.h"

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

struct http_req *http_req_new(struct evhttp_request *ev)
{
	struct http_req *req = xcalloc(1, sizeof *req);
	req->ev = ev;
	req->start_us = util_monotonic_us();
	req->route = -1;
	inflight++;

	/* A request id from the caller is kept when it is short and plain; otherwise our own. */
	const char *given = evhttp_find_header(evhttp_request_get_input_headers(ev), "X-Request-Id");
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

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	req->path = evhttp_uridecode(path && *path ? path : "/", 0, NULL);
	if (!req->path)
		req->path = xstrdup("/");
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	req->query = q ? xstrdup(q) : NULL;

	struct evbuffer *in = evhttp_request_get_input_buffer(ev);
	req->body_len = evbuffer_get_length(in);
	req->body = req->body_len ? (const char *)evbuffer_pullup(in, -1) : "";
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
	free(req->path);
	free(req->query);
	free(req);
	inflight--;
}

int http_route_match(const struct http_route *routes, int n, struct http_req *req, bool *wrong_method)
{
	*wrong_method = false;
	int method = (int)evhttp_request_get_command(req->ev);
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
		if (!match) {
			for (int i = 0; i < np; i++)
				free(params[i]);
			continue;
		}
		if (!(routes[r].methods & method)) {
			*wrong_method = true;
			for (int i = 0; i < np; i++)
				free(params[i]);
			continue;
		}
		for (int i = 0; i < np; i++)
			req->params[i] = params[i];
		req->nparams = np;
		req->route = r;
		req->pattern = routes[r].pattern;
		return r;
	}
	return -1;
}

const char *http_header(const struct http_req *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
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

void http_reply_raw(struct http_req *req, int status, const char *content_type, const char *body, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req->ev);
	evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "X-Request-Id", req->id);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (status == 503 || status == 429)
		evhttp_add_header(h, "Retry-After", "1");
	if (draining)
		evhttp_add_header(h, "Connection", "close");
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, body, len);
	const char *reason = status == 422 ? "Unprocessable Entity" : status == 429 ? "Too Many Requests" : NULL;
	evhttp_send_reply(req->ev, status, reason, out);
	evbuffer_free(out);
	int64_t us = util_monotonic_us() - req->start_us;
	metrics_request(req->route, status, us);
	if (status >= 500)
		log_warn(req->id, "%s %s -> %d in %.1f ms", evhttp_request_get_command(req->ev) == EVHTTP_REQ_GET ? "GET" : "POST",
			 req->pattern ? req->pattern : "(no route)", status, (double)us / 1000.0);
	req_free(req);
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
	evhttp_add_header(evhttp_request_get_output_headers(req->ev), "Location", location);
	http_reply_raw(req, 303, "text/plain; charset=utf-8", "", 0);
}

bool http_json_depth_ok(const char *s, size_t n, int max_depth)
{
	int depth = 0;
	bool in_string = false, escaped = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max_depth)
				return false;
		} else if (c == '}' || c == ']') {
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
