/* The collection bank's side of VietQR: a citizen's transfer arrives, and the
 * bank sends the signed credit notification. */
#include "tools/banksim/banksim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/vietqr.h"

#define STALE_SECONDS 600

/* The transfer asked for: JSON {account_no, amount, content} or {payload}, or
 * the same as form fields from the /vietqr page. */
typedef struct transfer {
	char account[ADAPTER_ACCOUNT_CAP];
	int64_t amount;
	char content[ADAPTER_CONTENT_CAP];
	bool wait;
	bool from_form;
	sim_faults faults;
} transfer;

static bool transfer_fill(transfer *t, const char *payload, const char *account, int64_t amount,
			  const char *content, char *err, size_t err_cap)
{
	if (payload && *payload) {
		vietqr_info info;
		adapter_rc rc = vietqr_parse_payload(payload, &info);
		if (rc != ADAPTER_OK) {
			snprintf(err, err_cap, "payload rejected: %s", adapter_rc_name(rc));
			return false;
		}
		adapter_set(t->account, sizeof(t->account), info.account);
		t->amount = info.amount;
		adapter_set(t->content, sizeof(t->content), info.ref);
	}
	if (account && *account && !adapter_copy(t->account, sizeof(t->account), account)) {
		snprintf(err, err_cap, "account_no too long");
		return false;
	}
	if (amount)
		t->amount = amount;
	if (content)
		adapter_set(t->content, sizeof(t->content), content);
	if (!t->account[0] || t->amount < 1 || t->amount > ADAPTER_AMOUNT_MAX) {
		snprintf(err, err_cap, "need account_no and an amount of 1 to %" PRId64 " VND (or a payload)",
			 (int64_t)ADAPTER_AMOUNT_MAX);
		return false;
	}
	return true;
}

static bool transfer_parse(sim *s, struct evhttp_request *req, transfer *t, char *err, size_t err_cap)
{
	memset(t, 0, sizeof(*t));
	t->faults = s->faults[SIM_VIETQR];
	t->wait = true;
	const char *type = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	if (type && strncmp(type, "application/x-www-form-urlencoded", 33) == 0) {
		params form;
		params_init(&form);
		bool ok = sim_request_params(req, &form);
		int64_t amount = 0;
		const char *amount_text = ok ? params_get(&form, "amount") : NULL;
		if (ok && amount_text && *amount_text && !util_parse_int64(amount_text, &amount)) {
			snprintf(err, err_cap, "amount must be a whole number of VND");
			ok = false;
		}
		const char *content = ok ? params_get(&form, "content") : NULL;
		ok = ok && sim_faults_apply_params(&t->faults, &form, err, err_cap) &&
		     transfer_fill(t, params_get(&form, "payload"), params_get(&form, "account_no"), amount,
				   content && *content ? content : NULL, err, err_cap);
		t->from_form = true;
		params_free(&form);
		return ok;
	}
	json_t *obj = sim_body_json(req);
	if (!obj) {
		snprintf(err, err_cap, "body must be a JSON object");
		return false;
	}
	static const char *const fields[] = { "account_no", "amount", "content", "payload", "wait", NULL };
	json_t *faults = json_object_get(obj, "faults");
	json_t *amount = json_object_get(obj, "amount");
	json_t *wait = json_object_get(obj, "wait");
	bool ok = true;
	if (faults && !sim_faults_apply_json(&t->faults, faults, fields, err, err_cap))
		ok = false;
	else if (amount && !json_is_integer(amount)) {
		snprintf(err, err_cap, "amount must be an integer");
		ok = false;
	} else {
		ok = transfer_fill(t, json_string_value(json_object_get(obj, "payload")),
				   json_string_value(json_object_get(obj, "account_no")),
				   amount ? json_integer_value(amount) : 0,
				   json_string_value(json_object_get(obj, "content")), err, err_cap);
	}
	if (json_is_false(wait))
		t->wait = false;
	json_decref(obj);
	return ok;
}

void vietqr_bank_transfer(sim *s, struct evhttp_request *req)
{
	transfer t;
	char err[200], txn[40], ts[24], when[32], sig[VIETQR_SIG_HEX_SIZE];
	char *body = NULL;
	struct strbuf url;
	strbuf_init(&url);
	if (!transfer_parse(s, req, &t, err, sizeof(err))) {
		sim_reply_error(req, 400, err);
		goto done;
	}
	time_t now = time(NULL);
	snprintf(txn, sizeof(txn), "FT%" PRId64, sim_store_next_txn(&s->store));
	snprintf(ts, sizeof(ts), "%lld", (long long)(now - (t.faults.stale_timestamp ? STALE_SECONDS : 0)));
	vietqr_format_time(now, when);
	int64_t amount = t.amount + (t.faults.wrong_amount ? 1000 : 0);
	json_t *n = json_pack("{s:s, s:s, s:I, s:s, s:s}", "transaction_id", txn, "account_no", t.account,
			      "amount", (json_int_t)amount, "content", t.content, "transaction_time", when);
	body = n ? json_dumps(n, JSON_COMPACT) : NULL;
	json_decref(n);
	sim_payment *p = body ? sim_store_add(&s->store, SIM_VIETQR, txn) : NULL;
	if (!p || !sim_store_set_txn(&s->store, p, txn) || !sim_strset(&p->account_no, t.account) ||
	    !sim_strset(&p->content, t.content) ||
	    !vietqr_webhook_sign(s->cfg[SIM_VIETQR].secret, ts, body, strlen(body), sig)) {
		sim_reply_error(req, 500, "out of memory");
		goto done;
	}
	p->amount = amount;
	p->status = SIM_SUCCEEDED;
	p->created_at = p->paid_at = now;
	if (t.faults.bad_signature)
		sim_corrupt_hex(sig);
	strbuf_printf(&url, "%s/ipn/vietqr", s->feegate_url);
	sim_outgoing out = {
		.method = "POST", .url = url.data, .body = body, .body_len = strlen(body),
		.content_type = "application/json",
		.header_names = { "X-Timestamp", "X-Signature" },
		.header_values = { ts, sig },
	};
	if (!sim_notice_save(&p->last_notice, &out))
		sim_log("warn", "vietqr_transfer", "could not keep the notification of %s", txn);
	sim_log("info", "vietqr_transfer", "%s: %" PRId64 " VND to %s, content \"%s\"", txn, amount, t.account,
		t.content);
	json_t *reply = json_pack("{s:s, s:s, s:I, s:s, s:s}", "transaction_id", txn, "account_no", t.account,
				  "amount", (json_int_t)amount, "content", t.content, "transaction_time", when);
	if (t.from_form) {
		sim_notify(s, SIM_VIETQR, txn, &out, &t.faults, NULL, NULL);
		struct strbuf page;
		strbuf_init(&page);
		sim_page_begin(&page, "VietQR - Chuy\xE1\xBB\x83n kho\xE1\xBA\xA3n th\xC3\xA0nh c\xC3\xB4ng");
		strbuf_puts(&page, "<dl><dt>transaction_id</dt><dd id=\"transaction_id\">");
		sim_html_escape(&page, txn);
		strbuf_puts(&page, "</dd><dt>account_no</dt><dd>");
		sim_html_escape(&page, t.account);
		strbuf_printf(&page, "</dd><dt>amount</dt><dd>%" PRId64 "</dd><dt>content</dt><dd>", amount);
		sim_html_escape(&page, t.content);
		strbuf_puts(&page, "</dd></dl><p>The credit notification has been sent to the gateway.</p>"
				 "<p><a href=\"/vietqr\">Another transfer</a></p>");
		sim_page_end(&page);
		sim_reply_page(req, 200, &page);
		json_decref(reply);
		goto done;
	}
	sim_waiter *w = t.wait && reply ? sim_waiter_new(req, NULL, reply) : NULL;
	if (w) {
		sim_notify(s, SIM_VIETQR, txn, &out, &t.faults, sim_waiter_done, w);
	} else {
		sim_notify(s, SIM_VIETQR, txn, &out, &t.faults, NULL, NULL);
		sim_reply_json(req, 200, reply);
	}
done:
	free(body);
	strbuf_free(&url);
}

void vietqr_bank_page(sim *s, struct evhttp_request *req)
{
	struct strbuf page;
	strbuf_init(&page);
	sim_page_begin(&page, "VietQR - M\xC3\xB4 ph\xE1\xBB\x8Fng chuy\xE1\xBB\x83n kho\xE1\xBA\xA3n");
	strbuf_puts(&page, "<p>Paste the EMVCo payload shown under the QR code (or give the account, amount "
			 "and content yourself) to simulate a citizen's transfer.</p>"
			 "<form method=\"post\" action=\"/vietqr/transfer\">"
			 "<p><label>Payload<br><textarea name=\"payload\" rows=\"4\" cols=\"50\"></textarea></label></p>"
			 "<p><label>account_no <input name=\"account_no\"></label></p>"
			 "<p><label>amount (VND) <input name=\"amount\"></label></p>"
			 "<p><label>content <input name=\"content\"></label></p>"
			 "<p><button type=\"submit\">Chuy\xE1\xBB\x83n ti\xE1\xBB\x81n (Transfer)</button></p></form>");
	sim_page_end(&page);
	sim_reply_page(req, 200, &page);
}
