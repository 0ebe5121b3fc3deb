/* The test-facing API: fault knobs, reset, and what banksim has seen and sent. */
#include "tools/banksim/banksim.h"

#include <string.h>

static json_t *all_faults(sim *s)
{
	json_t *obj = json_object();
	for (int i = 0; obj && i < SIM_SERVICE_COUNT; i++)
		json_object_set_new(obj, sim_service_name((sim_service)i), sim_faults_json(&s->faults[i]));
	return obj;
}

void admin_faults(sim *s, struct evhttp_request *req)
{
	if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
		sim_reply_json(req, 200, all_faults(s));
		return;
	}
	json_t *obj = sim_body_json(req);
	char err[160];
	if (!obj) {
		sim_reply_error(req, 400, "body must be a JSON object of knobs, with an optional \"bank\"");
		return;
	}
	const char *bank = json_string_value(json_object_get(obj, "bank"));
	sim_service only;
	if (json_object_get(obj, "bank") && (!bank || (strcmp(bank, "all") != 0 &&
						       !sim_service_from_name(bank, &only)))) {
		json_decref(obj);
		sim_reply_error(req, 400, "bank must be vnpay, momo, vietqr, portal or all");
		return;
	}
	static const char *const skip[] = { "bank", NULL };
	sim_faults next[SIM_SERVICE_COUNT];
	memcpy(next, s->faults, sizeof(next));
	for (int i = 0; i < SIM_SERVICE_COUNT; i++) {
		if (bank && strcmp(bank, "all") != 0 && (sim_service)i != only)
			continue;
		if (!sim_faults_apply_json(&next[i], obj, skip, err, sizeof(err))) {
			json_decref(obj);
			sim_reply_error(req, 400, err);
			return;
		}
	}
	memcpy(s->faults, next, sizeof(next));
	json_decref(obj);
	sim_log("info", "faults", "knobs changed");
	sim_reply_json(req, 200, all_faults(s));
}

void admin_reset(sim *s, struct evhttp_request *req)
{
	params q;
	params_init(&q);
	bool faults_only = sim_request_params(req, &q) && params_get(&q, "only") &&
			   strcmp(params_get(&q, "only"), "faults") == 0;
	params_free(&q);
	for (int i = 0; i < SIM_SERVICE_COUNT; i++)
		sim_faults_default(&s->faults[i]);
	if (!faults_only) {
		s->generation++;
		sim_notify_cancel_all(s);
		sim_api_release_all(s);
		sim_store_clear(&s->store);
		json_array_clear(s->webhooks);
		json_array_clear(s->notifications);
		json_array_clear(s->payouts);
		if (!sim_strset(&s->feegate_url, s->feegate_url_initial))
			sim_log("error", "reset", "out of memory");
	}
	sim_log("info", "reset", "%s", faults_only ? "faults" : "everything");
	sim_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static bool matches(const json_t *entry, const params *q, const char *key)
{
	const char *want = params_get(q, key);
	const char *have = json_string_value(json_object_get(entry, key));
	return !want || (have && strcmp(want, have) == 0);
}

/* The request's query into q; false (q freed, answered 400) when it is not one. */
static bool admin_query(struct evhttp_request *req, params *q)
{
	params_init(q);
	if (sim_request_params(req, q))
		return true;
	params_free(q);
	sim_reply_error(req, 400, "bad query");
	return false;
}

void admin_notifications(sim *s, struct evhttp_request *req)
{
	params q;
	if (!admin_query(req, &q))
		return;
	json_t *data = json_array();
	size_t i;
	json_t *entry;
	json_array_foreach(s->notifications, i, entry) {
		if (matches(entry, &q, "bank") && matches(entry, &q, "ref"))
			json_array_append(data, entry);
	}
	params_free(&q);
	sim_reply_json(req, 200, json_pack("{s:o}", "data", data));
}

void admin_payments(sim *s, struct evhttp_request *req)
{
	params q;
	if (!admin_query(req, &q))
		return;
	json_t *data = json_array();
	for (size_t i = 0; data && i < s->store.n_all; i++) {
		json_t *p = sim_payment_json(s->store.all[i]);
		if (p && matches(p, &q, "bank") && matches(p, &q, "ref") && matches(p, &q, "status"))
			json_array_append_new(data, p);
		else
			json_decref(p);
	}
	params_free(&q);
	sim_reply_json(req, 200, json_pack("{s:o}", "data", data));
}

void admin_resend(sim *s, struct evhttp_request *req)
{
	json_t *obj = sim_body_json(req);
	sim_service bank;
	const char *ref = obj ? json_string_value(json_object_get(obj, "ref")) : NULL;
	if (!obj || !sim_service_from_name(json_string_value(json_object_get(obj, "bank")), &bank) || !ref) {
		json_decref(obj);
		sim_reply_error(req, 400, "body must be {\"bank\": ..., \"ref\": ...}");
		return;
	}
	sim_payment *p = sim_store_find(&s->store, bank, ref);
	bool sent = p && sim_notify_again(s, p);
	json_decref(obj);
	if (!sent) {
		sim_reply_error(req, 404, "no notification was sent for that payment");
		return;
	}
	sim_reply_json(req, 202, json_pack("{s:s}", "status", "sent"));
}

void admin_config(sim *s, struct evhttp_request *req)
{
	if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
		json_t *obj = sim_body_json(req);
		const char *url = obj ? json_string_value(json_object_get(obj, "feegate_url")) : NULL;
		size_t n = url ? strlen(url) : 0;
		if (!url || strncmp(url, "http://", 7) != 0 || n < 8) {
			json_decref(obj);
			sim_reply_error(req, 400, "body must be {\"feegate_url\": \"http://...\"}");
			return;
		}
		while (n > 0 && url[n - 1] == '/')
			n--;
		char *copy = strndup(url, n);
		json_decref(obj);
		if (!copy) {
			sim_reply_error(req, 500, "out of memory");
			return;
		}
		free(s->feegate_url);
		s->feegate_url = copy;
		sim_log("info", "config", "notifications now go to %s", s->feegate_url);
	}
	sim_reply_json(req, 200, json_pack("{s:s, s:s}", "feegate_url", s->feegate_url, "public_url", s->public_url));
}

/* Settlement-file knobs on one payment: {"bank", "ref", "action": "drop" | "repeat" |
 * "next_day" | "amount" | "clear", "amount": VND (for "amount")}. */
void admin_settlement(sim *s, struct evhttp_request *req)
{
	json_t *obj = sim_body_json(req);
	sim_service bank;
	const char *ref = obj ? json_string_value(json_object_get(obj, "ref")) : NULL;
	const char *action = obj ? json_string_value(json_object_get(obj, "action")) : NULL;
	if (!obj || !sim_service_from_name(json_string_value(json_object_get(obj, "bank")), &bank) || !ref ||
	    !action) {
		json_decref(obj);
		sim_reply_error(req, 400, "body must be {\"bank\", \"ref\", \"action\": drop|repeat|next_day|amount|clear}");
		return;
	}
	sim_payment *p = sim_store_find(&s->store, bank, ref);
	if (!p) {
		json_decref(obj);
		sim_reply_error(req, 404, "no such payment");
		return;
	}
	json_int_t amount = json_integer_value(json_object_get(obj, "amount"));
	bool ok = true;
	if (strcmp(action, "drop") == 0)
		p->settle_drop = true;
	else if (strcmp(action, "repeat") == 0)
		p->settle_repeat = true;
	else if (strcmp(action, "next_day") == 0)
		p->settle_next_day = true;
	else if (strcmp(action, "amount") == 0 && amount > 0)
		p->settle_amount = amount;
	else if (strcmp(action, "clear") == 0) {
		p->settle_drop = p->settle_repeat = p->settle_next_day = false;
		p->settle_amount = 0;
	} else
		ok = false;
	json_decref(obj);
	if (!ok) {
		sim_reply_error(req, 400, "action must be drop, repeat, next_day, amount (with amount > 0) or clear");
		return;
	}
	sim_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}
