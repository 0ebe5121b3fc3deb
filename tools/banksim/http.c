#include "tools/banksim/banksim.h"

#include "lib/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

/* banksim logs through the gateway's logger, so both write the same JSON lines. */
void sim_log(const char *level, const char *event, const char *fmt, ...)
{
	enum log_level lv = strcmp(level, "error") == 0 ? LOG_ERROR
			    : strcmp(level, "warn") == 0  ? LOG_WARN
			    : strcmp(level, "debug") == 0 ? LOG_DEBUG
							  : LOG_INFO;
	va_list ap;
	va_start(ap, fmt);
	log_vemit(lv, NULL, event, fmt, ap);
	va_end(ap);
}

static void reply(struct evhttp_request *req, int status, const char *content_type, const char *body,
		  size_t len)
{
	struct evbuffer *buf = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	if (content_type)
		evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (buf && body)
		evbuffer_add(buf, body, len);
	const char *reason = status == 200 ? "OK" : status == 201 ? "Created" : status == 204 ? "No Content"
			   : status == 303 ? "See Other" : status == 400 ? "Bad Request"
			   : status == 401 ? "Unauthorized" : status == 404 ? "Not Found"
			   : status == 405 ? "Method Not Allowed" : status == 409 ? "Conflict"
			   : status >= 500 ? "Server Error" : "Status";
	evhttp_send_reply(req, status, reason, buf);
	if (buf)
		evbuffer_free(buf);
}

void sim_reply_json(struct evhttp_request *req, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text) {
		reply(req, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
	} else {
		reply(req, status, "application/json; charset=utf-8", text, strlen(text));
	}
	free(text);
	json_decref(body);
}

void sim_reply_text(struct evhttp_request *req, int status, const char *content_type, const char *text,
		    size_t len)
{
	reply(req, status, content_type, text, len);
}

void sim_reply_html(struct evhttp_request *req, int status, const char *html)
{
	reply(req, status, "text/html; charset=utf-8", html, strlen(html));
}

void sim_reply_error(struct evhttp_request *req, int status, const char *message)
{
	sim_reply_json(req, status, json_pack("{s:s}", "error", message));
}

void sim_redirect(struct evhttp_request *req, const char *location)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Location", location);
	reply(req, 303, "text/plain; charset=utf-8", "See Other\n", 10);
}

char *sim_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *copy = malloc(n + 1);
	if (!copy)
		return NULL;
	if (n && evbuffer_copyout(in, copy, n) != (ev_ssize_t)n) {
		free(copy);
		return NULL;
	}
	copy[n] = '\0';
	if (strlen(copy) != n) {
		free(copy);
		return NULL;
	}
	if (len)
		*len = n;
	return copy;
}

const char *sim_request_query(struct evhttp_request *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	return uri ? evhttp_uri_get_query(uri) : NULL;
}

bool sim_request_params(struct evhttp_request *req, params *out)
{
	if (!params_parse_query(out, sim_request_query(req)))
		return false;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST)
		return true;
	const char *type = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	if (!type || strncmp(type, "application/x-www-form-urlencoded", 33) != 0)
		return true;
	char *body = sim_body(req, NULL);
	bool ok = body && params_parse_query(out, body);
	free(body);
	return ok;
}

json_t *sim_body_json(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	const char *data = (const char *)evbuffer_pullup(in, -1);
	json_error_t err;
	json_t *root = json_loadb(data ? data : "", n, JSON_REJECT_DUPLICATES, &err);
	if (root && !json_is_object(root)) {
		json_decref(root);
		return NULL;
	}
	return root;
}

void sim_html_escape(struct strbuf *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': strbuf_puts(out, "&lt;"); break;
		case '>': strbuf_puts(out, "&gt;"); break;
		case '&': strbuf_puts(out, "&amp;"); break;
		case '"': strbuf_puts(out, "&quot;"); break;
		case '\'': strbuf_puts(out, "&#39;"); break;
		default: strbuf_putc(out, *s);
		}
	}
}

void sim_format_vnd(int64_t amount, char *out, size_t cap)
{
	char digits[32];
	snprintf(digits, sizeof(digits), "%" PRId64, amount < 0 ? -amount : amount);
	size_t n = strlen(digits), j = 0;
	char grouped[48];
	if (amount < 0)
		grouped[j++] = '-';
	for (size_t i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			grouped[j++] = '.';
		grouped[j++] = digits[i];
	}
	grouped[j] = '\0';
	snprintf(out, cap, "%s \xE2\x82\xAB", grouped);
}

void sim_random_hex(char *out, size_t n_hex)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];
	size_t n = (n_hex + 1) / 2;
	if (n > sizeof(raw))
		n = sizeof(raw);
	if (RAND_bytes(raw, (int)n) != 1)
		memset(raw, 0x5a, n);
	for (size_t i = 0; i < n_hex && i / 2 < n; i++)
		out[i] = hex[(i & 1) ? (raw[i / 2] & 15) : (raw[i / 2] >> 4)];
	out[n_hex] = '\0';
}

/* API requests held by the api_hang and api_delay_ms knobs. */
typedef struct sim_hung {
	struct evhttp_request *req;
	struct sim_hung *next;
} sim_hung;

typedef struct sim_deferred {
	sim *s;
	struct evhttp_request *req;
	sim_handler handler;
	struct event *timer;
	struct sim_deferred *next;
} sim_deferred;

static void deferred_unlink(sim *s, sim_deferred *d)
{
	for (sim_deferred **pp = &s->deferred; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			return;
		}
	}
}

static void deferred_fire(evutil_socket_t fd, short what, void *arg)
{
	sim_deferred *d = arg;
	deferred_unlink(d->s, d);
	d->handler(d->s, d->req);
	event_free(d->timer);
	free(d);
}

void sim_api(sim *s, sim_service svc, struct evhttp_request *req, sim_handler handler)
{
	sim_faults *f = &s->faults[svc];
	if (f->api_hang) {
		sim_hung *h = malloc(sizeof(*h));
		if (!h) {
			sim_reply_error(req, 500, "out of memory");
			return;
		}
		h->req = req;
		h->next = s->hung;
		s->hung = h;
		sim_log("info", "api_hang", "%s: holding %s", sim_service_name(svc), evhttp_request_get_uri(req));
		return;
	}
	if (f->api_status) {
		int status = f->api_status;
		if (f->api_status_times > 0 && --f->api_status_times == 0)
			f->api_status = 0;
		sim_log("info", "api_status", "%s: answering %d to %s", sim_service_name(svc), status,
			evhttp_request_get_uri(req));
		sim_reply_error(req, status, "simulated failure");
		return;
	}
	if (f->api_delay_ms > 0) {
		sim_deferred *d = calloc(1, sizeof(*d));
		if (d)
			d->timer = evtimer_new(s->base, deferred_fire, d);
		if (!d || !d->timer) {
			free(d);
			sim_reply_error(req, 500, "out of memory");
			return;
		}
		d->s = s;
		d->req = req;
		d->handler = handler;
		d->next = s->deferred;
		s->deferred = d;
		struct timeval tv = { f->api_delay_ms / 1000, (f->api_delay_ms % 1000) * 1000 };
		evtimer_add(d->timer, &tv);
		return;
	}
	handler(s, req);
}

void sim_api_release_all(sim *s)
{
	while (s->hung) {
		sim_hung *h = s->hung;
		s->hung = h->next;
		evhttp_send_error(h->req, 503, "Released");
		free(h);
	}
	while (s->deferred) {
		sim_deferred *d = s->deferred;
		s->deferred = d->next;
		event_free(d->timer);
		evhttp_send_error(d->req, 503, "Released");
		free(d);
	}
}

void sim_page_begin(struct strbuf *out, const char *title)
{
	strbuf_puts(out, "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
		       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
	sim_html_escape(out, title);
	strbuf_puts(out, "</title><style>body{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em}"
		       "dt{color:#555}dd{margin:0 0 .6em 0;font-weight:bold}.amount{font-size:1.6em}"
		       "button{font-size:1.1em;padding:.5em 1.2em;margin-right:1em}"
		       ".warn{background:#fff3cd;padding:.5em}.sim{color:#888;font-size:.8em}</style></head><body><h1>");
	sim_html_escape(out, title);
	strbuf_puts(out, "</h1>");
}

void sim_page_end(struct strbuf *out)
{
	strbuf_puts(out, "<p class=\"sim\">banksim: a bank simulator for tests and demos. No money moves.</p>"
		       "</body></html>");
}

void sim_page_decide(struct strbuf *out, const char *approve)
{
	strbuf_printf(out, "\"><button type=\"submit\" name=\"action\" value=\"approve\">%s (Approve)</button>"
			   "<button type=\"submit\" name=\"action\" value=\"decline\">H\xE1\xBB\xA7y (Decline)</button>"
			   "</form>",
		      approve);
}

void sim_corrupt_hex(char *hex)
{
	size_t n = strlen(hex);
	if (n)
		hex[n - 1] = hex[n - 1] == '0' ? '1' : '0';
}

void sim_reply_signed(sim *s, struct evhttp_request *req, int status, sim_service svc, json_t *obj, bool signed_ok,
		      const char *field, char *sig, char **keep)
{
	if (!obj || !signed_ok) {
		json_decref(obj);
		sim_reply_error(req, 500, "out of memory");
		return;
	}
	if (s->faults[svc].bad_signature)
		sim_corrupt_hex(sig);
	json_object_set_new(obj, field, json_string(sig));
	if (keep)
		*keep = json_dumps(obj, JSON_COMPACT);
	sim_reply_json(req, status, obj);
}

bool sim_page_payable(struct strbuf *out, const sim_payment *p, const char *what, const char *late_code)
{
	if (p->status == SIM_SUCCEEDED || p->status == SIM_FAILED) {
		strbuf_printf(out, "<p class=\"warn\" id=\"status\">This %s is already %s.</p>", what,
			      sim_status_name(p->status));
		return false;
	}
	if (time(NULL) > p->expires_at)
		strbuf_printf(out, "<p class=\"warn\">The payment time is over: approving fails (%s) unless the "
				   "allow_expired knob is set.</p>",
			      late_code);
	return true;
}

void sim_reply_page(struct evhttp_request *req, int status, struct strbuf *page)
{
	if (!page->data)
		sim_reply_error(req, 500, "empty page");
	else
		sim_reply_html(req, status, page->data);
	strbuf_free(page);
}
