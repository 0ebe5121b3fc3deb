/* A stand-in for the portal's webhook endpoint: it keeps what it receives so
 * tests can look at it. */
#include "tools/banksim/banksim.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#define WEBHOOKS_CAP 10000

static void do_receive(sim *s, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *data = (const char *)evbuffer_pullup(in, -1);
	json_t *headers = json_object();
	struct evkeyval *h;
	for (h = evhttp_request_get_input_headers(req)->tqh_first; h; h = h->next.tqe_next)
		json_object_set_new(headers, h->key, json_string(h->value));
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : "";
	sim_log("info", "portal_webhook", "received %zu bytes on %s", len, path ? path : "");
	json_t *jpath = json_string(path ? path : ""); /* NULL when the path is not UTF-8 */
	json_t *entry = json_pack("{s:I, s:I, s:o, s:o}", "id", (json_int_t)++s->next_webhook_id,
				  "received_at", (json_int_t)time(NULL), "path", jpath ? jpath : json_null(),
				  "headers", headers ? headers : json_object());
	if (!entry) {
		sim_reply_error(req, 500, "out of memory");
		return;
	}
	json_t *body = json_stringn(data ? data : "", len);
	json_object_set_new(entry, "body", body ? body : json_null());
	json_error_t err;
	json_t *parsed = json_loadb(data ? data : "", len, 0, &err);
	json_object_set_new(entry, "json", parsed ? parsed : json_null());
	json_array_append_new(s->webhooks, entry);
	if (json_array_size(s->webhooks) > WEBHOOKS_CAP)
		json_array_remove(s->webhooks, 0);
	sim_reply_json(req, 200, json_pack("{s:b, s:I}", "received", 1, "id", (json_int_t)s->next_webhook_id));
}

void portal_sink_receive(sim *s, struct evhttp_request *req)
{
	sim_api(s, SIM_PORTAL, req, do_receive);
}

void portal_sink_list(sim *s, struct evhttp_request *req)
{
	params q;
	params_init(&q);
	int64_t since = 0;
	if (!sim_request_params(req, &q) ||
	    (params_get(&q, "since") && !util_parse_int64(params_get(&q, "since"), &since))) {
		params_free(&q);
		sim_reply_error(req, 400, "since must be an integer");
		return;
	}
	params_free(&q);
	json_t *data = json_array();
	size_t i;
	json_t *entry;
	json_array_foreach(s->webhooks, i, entry) {
		if (json_integer_value(json_object_get(entry, "id")) > since)
			json_array_append(data, entry);
	}
	sim_reply_json(req, 200, json_pack("{s:o}", "data", data));
}

void portal_sink_clear(sim *s, struct evhttp_request *req)
{
	json_array_clear(s->webhooks);
	sim_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}
