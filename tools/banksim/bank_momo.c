/* MoMo's side: the create/query/refund APIs, the pay page behind payUrl, and
 * the IPN and redirect it sends. */
#include "tools/banksim/banksim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "adapters/jsonfield.h"
#include "adapters/momo.h"

#define MOMO_DEFAULT_EXPIRY_MIN 100

static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Signs obj as kind, honouring the bad_signature knob, and answers it. */
static void answer(sim *s, struct evhttp_request *req, int status, json_t *obj, momo_msg kind, char **keep)
{
	const adapter_config *cfg = &s->cfg[SIM_MOMO];
	char sig[MOMO_SIG_HEX_SIZE];
	bool signed_ok = obj && momo_sign(cfg->secret, cfg->access_key, kind, obj, sig);
	sim_reply_signed(s, req, status, SIM_MOMO, obj, signed_ok, "signature", sig, keep);
}

/* An error answer in the shape of kind's success answer. */
static void fail(sim *s, struct evhttp_request *req, const json_t *request, int code, const char *message,
		 momo_msg kind)
{
	const char *order = json_string_value(json_object_get(request, "orderId"));
	const char *rid = json_string_value(json_object_get(request, "requestId"));
	json_t *amount = json_object_get(request, "amount");
	json_t *obj = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:i}", "partnerCode",
				s->cfg[SIM_MOMO].merchant_id, "orderId", order ? order : "", "requestId",
				rid ? rid : "", "amount", (json_int_t)(json_is_integer(amount) ? json_integer_value(amount) : 0),
				"responseTime", (json_int_t)now_ms(), "message", message, "resultCode", code);
	if (obj && kind == MOMO_MSG_CREATE_RESPONSE)
		json_object_set_new(obj, "payUrl", json_string(""));
	if (obj && (kind == MOMO_MSG_QUERY_RESPONSE || kind == MOMO_MSG_REFUND_RESPONSE))
		json_object_set_new(obj, "transId", json_integer(0));
	answer(s, req, code == 0 ? 200 : 400, obj, kind, NULL);
}

/* Checks partner and signature of an API request; answers and returns NULL when they fail. */
static json_t *api_request(sim *s, struct evhttp_request *req, momo_msg kind, momo_msg answer_kind)
{
	const adapter_config *cfg = &s->cfg[SIM_MOMO];
	json_t *obj = sim_body_json(req);
	if (!obj) {
		json_t *empty = json_object();
		fail(s, req, empty, 20, "Bad format request.", answer_kind);
		json_decref(empty);
		return NULL;
	}
	const char *partner = json_string_value(json_object_get(obj, "partnerCode"));
	if (!partner || strcmp(partner, cfg->merchant_id) != 0 ||
	    momo_verify(cfg->secret, cfg->access_key, kind, obj) != ADAPTER_OK) {
		fail(s, req, obj, 13, "Merchant authentication failed.", answer_kind);
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static bool create_payment(sim *s, const json_t *obj, sim_payment **out, int *code, const char **message)
{
	const char *order = json_string_value(json_object_get(obj, "orderId"));
	const char *rid = json_string_value(json_object_get(obj, "requestId"));
	const char *type = json_string_value(json_object_get(obj, "requestType"));
	const char *ipn = json_string_value(json_object_get(obj, "ipnUrl"));
	const char *redirect = json_string_value(json_object_get(obj, "redirectUrl"));
	const char *info = json_string_value(json_object_get(obj, "orderInfo"));
	const char *extra = json_string_value(json_object_get(obj, "extraData"));
	json_t *amount = json_object_get(obj, "amount");
	json_t *expiry = json_object_get(obj, "orderExpireTime");
	*code = 20;
	*message = "Bad format request.";
	if (!order || !*order || strlen(order) > 200 || !rid || !*rid || !type || !redirect || !ipn || !info)
		return false;
	if (strcmp(type, "captureWallet") != 0) {
		*code = 21;
		*message = "Unsupported requestType.";
		return false;
	}
	if (!json_is_integer(amount) || json_integer_value(amount) < 1) {
		*code = 22;
		*message = "Invalid amount.";
		return false;
	}
	sim_payment *p = sim_store_find(&s->store, SIM_MOMO, order);
	if (p) {
		/* A retried create gets the first answer; any other reuse is a duplicate. */
		if (p->status == SIM_PENDING && p->request_id && strcmp(p->request_id, rid) == 0 &&
		    p->amount == json_integer_value(amount)) {
			*out = p;
			return true;
		}
		*code = 41;
		*message = "Duplicate orderId.";
		return false;
	}
	char token[33];
	sim_random_hex(token, 32);
	struct strbuf url;
	strbuf_init(&url);
	strbuf_printf(&url, "%s/momo/pay?orderId=", s->public_url);
	params_urlencode(&url, order, strlen(order));
	strbuf_printf(&url, "&t=%s", token);
	p = sim_store_add(&s->store, SIM_MOMO, order);
	bool ok = p && sim_strset(&p->request_id, rid) && sim_strset(&p->order_info, info) &&
		  sim_strset(&p->return_url, redirect) && sim_strset(&p->ipn_url, ipn) &&
		  sim_strset(&p->extra_data, extra ? extra : "") && sim_strset(&p->token, token) &&
		  sim_strset(&p->pay_url, url.data);
	strbuf_free(&url);
	if (!ok) {
		*code = 99;
		*message = "Unknown error.";
		return false;
	}
	time_t now = time(NULL);
	int64_t minutes = json_is_integer(expiry) && json_integer_value(expiry) > 0 ? json_integer_value(expiry)
										   : MOMO_DEFAULT_EXPIRY_MIN;
	p->amount = json_integer_value(amount);
	p->status = SIM_PENDING;
	p->created_at = now;
	p->expires_at = now + minutes * 60;
	*out = p;
	sim_log("info", "momo_create", "payment %s for %" PRId64 " VND", order, p->amount);
	return true;
}

static void do_create(sim *s, struct evhttp_request *req)
{
	json_t *obj = api_request(s, req, MOMO_MSG_CREATE, MOMO_MSG_CREATE_RESPONSE);
	if (!obj)
		return;
	sim_payment *p = NULL;
	int code;
	const char *message;
	if (!create_payment(s, obj, &p, &code, &message)) {
		fail(s, req, obj, code, message, MOMO_MSG_CREATE_RESPONSE);
		json_decref(obj);
		return;
	}
	json_t *a = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:i, s:s, s:s, s:s}", "partnerCode",
			      s->cfg[SIM_MOMO].merchant_id, "requestId", p->request_id, "orderId", p->ref,
			      "amount", (json_int_t)p->amount, "responseTime", (json_int_t)now_ms(), "message",
			      "Th\xC3\xA0nh c\xC3\xB4ng.", "resultCode", 0, "payUrl", p->pay_url, "deeplink",
			      p->pay_url, "qrCodeUrl", p->pay_url);
	answer(s, req, 200, a, MOMO_MSG_CREATE_RESPONSE, NULL);
	json_decref(obj);
}

void momo_bank_create(sim *s, struct evhttp_request *req)
{
	sim_api(s, SIM_MOMO, req, do_create);
}

static int result_of(const sim_payment *p)
{
	switch (p->status) {
	case SIM_SUCCEEDED: return 0;
	case SIM_PENDING: return 1000;
	case SIM_EXPIRED: return 1005;
	case SIM_FAILED: break;
	}
	int64_t code;
	return p->result_code && util_parse_int64(p->result_code, &code) ? (int)code : 1006;
}

static const char *message_of(int code)
{
	switch (code) {
	case 0: return "Th\xC3\xA0nh c\xC3\xB4ng.";
	case 1000: return "Giao d\xE1\xBB\x8B" "ch \xC4\x91\xC3\xA3 \xC4\x91\xC6\xB0\xE1\xBB\xA3" "c kh\xE1\xBB\x9F" "i t\xE1\xBA\xA1o, ch\xE1\xBB\x9D ng\xC6\xB0\xE1\xBB\x9D" "i d\xC3\xB9ng x\xC3\xA1" "c nh\xE1\xBA\xAD" "n thanh to\xC3\xA1n.";
	case 1005: return "Giao d\xE1\xBB\x8B" "ch th\xE1\xBA\xA5t b\xE1\xBA\xA1i do URL ho\xE1\xBA\xB7" "c QR code \xC4\x91\xC3\xA3 h\xE1\xBA\xBFt h\xE1\xBA\xA1n.";
	case 1006: return "Giao d\xE1\xBB\x8B" "ch th\xE1\xBA\xA5t b\xE1\xBA\xA1i do ng\xC6\xB0\xE1\xBB\x9D" "i d\xC3\xB9ng \xC4\x91\xC3\xA3 t\xE1\xBB\xAB" " ch\xE1\xBB\x91i x\xC3\xA1" "c nh\xE1\xBA\xAD" "n thanh to\xC3\xA1n.";
	default: return "Giao d\xE1\xBB\x8B" "ch th\xE1\xBA\xA5t b\xE1\xBA\xA1i.";
	}
}

/* The fields of an IPN, a redirect and a query answer for p. */
static json_t *result_fields(sim *s, const sim_payment *p, const sim_faults *f, int code)
{
	int64_t trans = 0;
	if (p->txn_id && !util_parse_int64(p->txn_id, &trans))
		trans = 0;
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:i, s:s, s:s, s:I, s:s}",
			 "partnerCode", s->cfg[SIM_MOMO].merchant_id, "orderId", p->ref,
			 "requestId", p->request_id ? p->request_id : p->ref,
			 "amount", (json_int_t)(p->amount + (f && f->wrong_amount ? 1000 : 0)),
			 "orderInfo", p->order_info ? p->order_info : "", "orderType", "momo_wallet",
			 "transId", (json_int_t)trans, "resultCode", code, "message", message_of(code),
			 "payType", "qr", "responseTime", (json_int_t)now_ms(),
			 "extraData", p->extra_data ? p->extra_data : "");
}

static void do_query(sim *s, struct evhttp_request *req)
{
	json_t *obj = api_request(s, req, MOMO_MSG_QUERY, MOMO_MSG_QUERY_RESPONSE);
	if (!obj)
		return;
	const char *order = json_string_value(json_object_get(obj, "orderId"));
	sim_payment *p = order ? sim_store_find(&s->store, SIM_MOMO, order) : NULL;
	if (!p) {
		fail(s, req, obj, 42, "Invalid orderId or orderId is not found.", MOMO_MSG_QUERY_RESPONSE);
		json_decref(obj);
		return;
	}
	sim_expire_if_due(p, time(NULL));
	json_t *a = result_fields(s, p, NULL, result_of(p));
	json_t *refunds = json_array();
	for (size_t i = 0; a && refunds && i < p->n_refunds; i++) {
		int64_t t = 0;
		if (!util_parse_int64(p->refunds[i]->txn_id, &t))
			t = 0;
		json_array_append_new(refunds, json_pack("{s:s, s:I, s:I, s:i}", "orderId", p->refunds[i]->ref,
							 "amount", (json_int_t)p->refunds[i]->amount,
							 "transId", (json_int_t)t, "resultCode", 0));
	}
	if (a)
		json_object_set_new(a, "refundTrans", refunds ? refunds : json_array());
	else
		json_decref(refunds);
	answer(s, req, 200, a, MOMO_MSG_QUERY_RESPONSE, NULL);
	json_decref(obj);
}

void momo_bank_query(sim *s, struct evhttp_request *req)
{
	sim_api(s, SIM_MOMO, req, do_query);
}

static void do_refund(sim *s, struct evhttp_request *req)
{
	json_t *obj = api_request(s, req, MOMO_MSG_REFUND, MOMO_MSG_REFUND_RESPONSE);
	if (!obj)
		return;
	const char *order = json_string_value(json_object_get(obj, "orderId"));
	json_t *amount = json_object_get(obj, "amount");
	char trans[32] = "";
	if (!order || !*order || !json_is_integer(amount) ||
	    !jsonfield_copy(obj, "transId", trans, sizeof(trans))) {
		fail(s, req, obj, 20, "Bad format request.", MOMO_MSG_REFUND_RESPONSE);
		goto done;
	}
	sim_refund *seen = sim_store_find_refund(&s->store, SIM_MOMO, order);
	if (seen) {
		if (seen->answer && seen->amount == json_integer_value(amount) && seen->payment->txn_id &&
		    strcmp(seen->payment->txn_id, trans) == 0) {
			sim_reply_text(req, 200, "application/json; charset=utf-8", seen->answer, strlen(seen->answer));
			goto done;
		}
		fail(s, req, obj, 41, "Duplicate orderId.", MOMO_MSG_REFUND_RESPONSE);
		goto done;
	}
	sim_payment *p = sim_store_find_txn(&s->store, SIM_MOMO, trans);
	if (!p) {
		fail(s, req, obj, 42, "Invalid orderId or orderId is not found.", MOMO_MSG_REFUND_RESPONSE);
		goto done;
	}
	int64_t want = json_integer_value(amount);
	if (p->status != SIM_SUCCEEDED) {
		fail(s, req, obj, 1080, "Refund attempt failed: the payment did not succeed.", MOMO_MSG_REFUND_RESPONSE);
		goto done;
	}
	if (want < 1 || want > p->amount - p->refunded) {
		fail(s, req, obj, 1081, "Refund rejected: more than the refundable amount.", MOMO_MSG_REFUND_RESPONSE);
		goto done;
	}
	char refund_txn[32];
	int64_t refund_number = sim_store_next_txn(&s->store);
	snprintf(refund_txn, sizeof(refund_txn), "%" PRId64, refund_number);
	sim_refund *r = sim_store_add_refund(&s->store, p, order, refund_txn, want, time(NULL));
	if (!r) {
		fail(s, req, obj, 99, "Unknown error.", MOMO_MSG_REFUND_RESPONSE);
		goto done;
	}
	const char *rid = json_string_value(json_object_get(obj, "requestId"));
	json_t *a = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:s, s:I}", "partnerCode",
			      s->cfg[SIM_MOMO].merchant_id, "orderId", order, "requestId", rid ? rid : order,
			      "amount", (json_int_t)want, "transId", (json_int_t)refund_number,
			      "resultCode", 0, "message", "Th\xC3\xA0nh c\xC3\xB4ng.", "responseTime",
			      (json_int_t)now_ms());
	sim_log("info", "momo_refund", "%s refunded %" PRId64 " VND (%" PRId64 " of %" PRId64 ")", p->ref, want,
		p->refunded, p->amount);
	answer(s, req, 200, a, MOMO_MSG_REFUND_RESPONSE, &r->answer);
done:
	json_decref(obj);
}

void momo_bank_refund(sim *s, struct evhttp_request *req)
{
	sim_api(s, SIM_MOMO, req, do_refund);
}

static sim_payment *page_payment(sim *s, const params *q)
{
	sim_payment *p = sim_store_find(&s->store, SIM_MOMO, params_get(q, "orderId"));
	const char *token = params_get(q, "t");
	if (!p || !p->token || !token || strcmp(p->token, token) != 0)
		return NULL;
	return p;
}

static void error_page(struct evhttp_request *req, int status, const char *message)
{
	struct strbuf page;
	strbuf_init(&page);
	sim_page_begin(&page, "MoMo");
	strbuf_puts(&page, "<p class=\"warn\" id=\"error\">");
	sim_html_escape(&page, message);
	strbuf_puts(&page, "</p>");
	sim_page_end(&page);
	sim_reply_page(req, status, &page);
}

void momo_bank_pay_page(sim *s, struct evhttp_request *req)
{
	params q;
	params_init(&q);
	sim_payment *p = sim_request_params(req, &q) ? page_payment(s, &q) : NULL;
	if (!p) {
		error_page(req, 404, "Giao d\xE1\xBB\x8B" "ch kh\xC3\xB4ng t\xE1\xBB\x93n t\xE1\xBA\xA1i (unknown payment)");
		goto done;
	}
	char amount[48];
	sim_format_vnd(p->amount, amount, sizeof(amount));
	struct strbuf page;
	strbuf_init(&page);
	sim_page_begin(&page, "MoMo - Thanh to\xC3\xA1n");
	strbuf_puts(&page, "<dl><dt>\xC4\x90\xE1\xBB\x91i t\xC3\xA1" "c (partnerCode)</dt><dd>");
	sim_html_escape(&page, s->cfg[SIM_MOMO].merchant_id);
	strbuf_puts(&page, "</dd><dt>M\xC3\xA3 \xC4\x91\xC6\xA1n h\xC3\xA0ng (orderId)</dt><dd id=\"ref\">");
	sim_html_escape(&page, p->ref);
	strbuf_puts(&page, "</dd><dt>N\xE1\xBB\x99i dung</dt><dd>");
	sim_html_escape(&page, p->order_info);
	strbuf_printf(&page, "</dd><dt>S\xE1\xBB\x91 ti\xE1\xBB\x81n</dt><dd class=\"amount\" id=\"amount\" "
			   "data-amount=\"%" PRId64 "\">", p->amount);
	sim_html_escape(&page, amount);
	strbuf_puts(&page, "</dd></dl>");
	if (sim_page_payable(&page, p, "payment", "1005")) {
		strbuf_puts(&page, "<form id=\"pay-form\" method=\"post\" action=\"/momo/confirm\">"
				 "<input type=\"hidden\" name=\"orderId\" value=\"");
		sim_html_escape(&page, p->ref);
		strbuf_puts(&page, "\"><input type=\"hidden\" name=\"t\" value=\"");
		sim_html_escape(&page, p->token);
		sim_page_decide(&page, "X\xC3\xA1" "c nh\xE1\xBA\xAD" "n");
	}
	sim_page_end(&page);
	sim_reply_page(req, 200, &page);
done:
	params_free(&q);
}

void momo_bank_confirm(sim *s, struct evhttp_request *req)
{
	params form;
	params_init(&form);
	struct strbuf ret;
	strbuf_init(&ret);
	char *body = NULL, err[160];
	json_t *fields = NULL;
	sim_faults f = s->faults[SIM_MOMO];
	if (!sim_request_params(req, &form)) {
		error_page(req, 400, "bad form");
		goto done;
	}
	if (!sim_faults_apply_params(&f, &form, err, sizeof(err))) {
		error_page(req, 400, err);
		goto done;
	}
	sim_payment *p = page_payment(s, &form);
	const char *action = params_get(&form, "action");
	if (!p) {
		error_page(req, 404, "unknown payment");
		goto done;
	}
	if (!action || (strcmp(action, "approve") != 0 && strcmp(action, "decline") != 0)) {
		error_page(req, 400, "action must be approve or decline");
		goto done;
	}
	if (p->status == SIM_SUCCEEDED || p->status == SIM_FAILED) {
		error_page(req, 409, "This payment has already been processed");
		goto done;
	}
	time_t now = time(NULL);
	int code;
	if (strcmp(action, "decline") == 0) {
		p->status = SIM_FAILED;
		code = 1006;
	} else if (now > p->expires_at && !f.allow_expired) {
		p->status = SIM_EXPIRED;
		code = 1005;
	} else {
		p->status = SIM_SUCCEEDED;
		p->paid_at = now;
		code = 0;
	}
	char txn[32], code_text[16];
	snprintf(txn, sizeof(txn), "%" PRId64, sim_store_next_txn(&s->store));
	snprintf(code_text, sizeof(code_text), "%d", code);
	if (!sim_store_set_txn(&s->store, p, txn) || !sim_strset(&p->result_code, code_text)) {
		error_page(req, 500, "out of memory");
		goto done;
	}
	fields = result_fields(s, p, &f, code);
	char sig[MOMO_SIG_HEX_SIZE];
	if (!fields || !momo_sign(s->cfg[SIM_MOMO].secret, s->cfg[SIM_MOMO].access_key, MOMO_MSG_IPN, fields, sig)) {
		error_page(req, 500, "out of memory");
		goto done;
	}
	if (f.bad_signature)
		sim_corrupt_hex(sig);
	json_object_set_new(fields, "signature", json_string(sig));
	size_t body_len = 0;
	body = json_dumps(fields, JSON_COMPACT);
	body_len = body ? strlen(body) : 0;
	/* The redirect carries the same fields as query parameters. */
	strbuf_printf(&ret, "%s%c", p->return_url, strchr(p->return_url, '?') ? '&' : '?');
	const char *key;
	json_t *v;
	bool first = true;
	json_object_foreach(fields, key, v) {
		struct strbuf value;
		strbuf_init(&value);
		if (!jsonfield_text(fields, key, &value)) {
			strbuf_free(&value);
			continue;
		}
		strbuf_printf(&ret, "%s%s=", first ? "" : "&", key);
		params_urlencode(&ret, value.data ? value.data : "", value.len);
		strbuf_free(&value);
		first = false;
	}
	if (!body) {
		error_page(req, 500, "out of memory");
		goto done;
	}
	sim_outgoing out = { .method = "POST", .url = p->ipn_url, .body = body, .body_len = body_len,
			     .content_type = "application/json; charset=UTF-8" };
	sim_confirm_notify(s, req, SIM_MOMO, p, &out, &f, params_get(&form, "wait"), ret.data, "momo_confirm", action);
done:
	json_decref(fields);
	free(body);
	strbuf_free(&ret);
	params_free(&form);
}
