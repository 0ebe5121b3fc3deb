/* VNPAY's side: the payment page behind the signed redirect, the IPN and
 * return it sends, and the merchant API (querydr, refund). */
#include "tools/banksim/banksim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/vnpay.h"

static void error_page(struct evhttp_request *req, int status, const char *code, const char *message)
{
	struct strbuf page;
	strbuf_init(&page);
	sim_page_begin(&page, "VNPAY - Giao d\xE1\xBB\x8B" "ch l\xE1\xBB\x97i");
	strbuf_puts(&page, "<p class=\"warn\" id=\"error\" data-code=\"");
	sim_html_escape(&page, code);
	strbuf_puts(&page, "\">");
	sim_html_escape(&page, message);
	strbuf_printf(&page, " (code %s)</p>", code);
	sim_page_end(&page);
	sim_reply_page(req, status, &page);
}

void sim_expire_if_due(sim_payment *p, time_t now)
{
	if (p->status == SIM_PENDING && p->expires_at && now > p->expires_at)
		p->status = SIM_EXPIRED;
}

static bool payment_from_redirect(sim *s, const params *q, sim_payment **out, const char **code,
				  const char **message)
{
	const adapter_config *cfg = &s->cfg[SIM_VNPAY];
	*code = "03";
	*message = "Invalid data format";
	adapter_rc rc = vnpay_verify_params(cfg->secret, q);
	if (rc != ADAPTER_OK) {
		*code = rc == ADAPTER_BAD_SIGNATURE ? "70" : "03";
		*message = rc == ADAPTER_BAD_SIGNATURE ? "Invalid signature" : "Invalid data format";
		return false;
	}
	const char *tmn = params_get(q, "vnp_TmnCode");
	if (!tmn || strcmp(tmn, cfg->merchant_id) != 0) {
		*code = "02";
		*message = "Merchant not found";
		return false;
	}
	const char *version = params_get(q, "vnp_Version"), *command = params_get(q, "vnp_Command");
	const char *curr = params_get(q, "vnp_CurrCode"), *ref = params_get(q, "vnp_TxnRef");
	const char *ret = params_get(q, "vnp_ReturnUrl"), *info = params_get(q, "vnp_OrderInfo");
	const char *created = params_get(q, "vnp_CreateDate"), *expires = params_get(q, "vnp_ExpireDate");
	int64_t amount100;
	time_t created_at, expires_at;
	if (!version || strcmp(version, VNPAY_VERSION) != 0 || !command || strcmp(command, "pay") != 0 ||
	    !curr || strcmp(curr, "VND") != 0 || !ref || !*ref || strlen(ref) > 100 || !ret || !*ret ||
	    !info || !*info || !util_parse_int64(params_get(q, "vnp_Amount"), &amount100) ||
	    amount100 <= 0 || amount100 % 100 != 0 || !created || !adapter_parse_vn_compact(created, &created_at) ||
	    !expires || !adapter_parse_vn_compact(expires, &expires_at))
		return false;
	sim_payment *p = sim_store_find(&s->store, SIM_VNPAY, ref);
	if (p) {
		if (p->amount != amount100 / 100) {
			*message = "TxnRef already used for another amount";
			return false;
		}
		*out = p;
		return true;
	}
	p = sim_store_add(&s->store, SIM_VNPAY, ref);
	if (!p || !sim_strset(&p->order_info, info) || !sim_strset(&p->return_url, ret) ||
	    !sim_strset(&p->create_date, created) ||
	    !sim_strset(&p->client_ip, params_get(q, "vnp_IpAddr"))) {
		*code = "99";
		*message = "Out of memory";
		return false;
	}
	p->amount = amount100 / 100;
	p->status = SIM_PENDING;
	p->created_at = created_at;
	p->expires_at = expires_at;
	*out = p;
	sim_log("info", "vnpay_pay", "payment %s for %" PRId64 " VND", ref, p->amount);
	return true;
}

void vnpay_bank_pay_page(sim *s, struct evhttp_request *req)
{
	params q;
	params_init(&q);
	const char *code, *message;
	sim_payment *p = NULL;
	if (!sim_request_params(req, &q)) {
		error_page(req, 400, "03", "Invalid data format");
		goto done;
	}
	if (!payment_from_redirect(s, &q, &p, &code, &message)) {
		error_page(req, 400, code, message);
		goto done;
	}
	char amount[48], expires[32];
	sim_format_vnd(p->amount, amount, sizeof(amount));
	adapter_format_vn_time(p->expires_at, "%d/%m/%Y %H:%M:%S", expires, sizeof(expires));
	struct strbuf page;
	strbuf_init(&page);
	sim_page_begin(&page, "VNPAY - C\xE1\xBB\x95ng thanh to\xC3\xA1n");
	strbuf_puts(&page, "<dl><dt>Merchant</dt><dd>");
	sim_html_escape(&page, s->cfg[SIM_VNPAY].merchant_id);
	strbuf_puts(&page, "</dd><dt>M\xC3\xA3 giao d\xE1\xBB\x8B" "ch (vnp_TxnRef)</dt><dd id=\"ref\">");
	sim_html_escape(&page, p->ref);
	strbuf_puts(&page, "</dd><dt>N\xE1\xBB\x99i dung</dt><dd>");
	sim_html_escape(&page, p->order_info);
	strbuf_puts(&page, "</dd><dt>S\xE1\xBB\x91 ti\xE1\xBB\x81n</dt><dd class=\"amount\" id=\"amount\" data-amount=\"");
	strbuf_printf(&page, "%" PRId64 "\">", p->amount);
	sim_html_escape(&page, amount);
	strbuf_puts(&page, "</dd><dt>H\xE1\xBA\xBFt h\xE1\xBA\xA1n</dt><dd>");
	sim_html_escape(&page, expires);
	strbuf_puts(&page, " (GMT+7)</dd></dl>");
	if (sim_page_payable(&page, p, "transaction", "code 11")) {
		strbuf_puts(&page, "<form id=\"pay-form\" method=\"post\" action=\"/paymentv2/confirm\">"
				 "<input type=\"hidden\" name=\"ref\" value=\"");
		sim_html_escape(&page, p->ref);
		sim_page_decide(&page, "Thanh to\xC3\xA1n");
	}
	sim_page_end(&page);
	sim_reply_page(req, 200, &page);
done:
	params_free(&q);
}

/* The signed query string of an IPN or return for p. */
static char *result_query(sim *s, const sim_payment *p, const sim_faults *f, const char *response,
			  const char *status, time_t now)
{
	params q;
	params_init(&q);
	char amount[32], pay_date[15], bank_tran[48];
	snprintf(amount, sizeof(amount), "%" PRId64, (p->amount + (f->wrong_amount ? 1000 : 0)) * 100);
	vnpay_format_date(now, pay_date);
	snprintf(bank_tran, sizeof(bank_tran), "VNP%s", p->txn_id);
	char *out = NULL;
	if (!params_add(&q, "vnp_Amount", amount) || !params_add(&q, "vnp_BankCode", "NCB") ||
	    !params_add(&q, "vnp_BankTranNo", bank_tran) || !params_add(&q, "vnp_CardType", "ATM") ||
	    !params_add(&q, "vnp_OrderInfo", p->order_info) || !params_add(&q, "vnp_PayDate", pay_date) ||
	    !params_add(&q, "vnp_ResponseCode", response) ||
	    !params_add(&q, "vnp_TmnCode", s->cfg[SIM_VNPAY].merchant_id) ||
	    !params_add(&q, "vnp_TransactionNo", p->txn_id) ||
	    !params_add(&q, "vnp_TransactionStatus", status) || !params_add(&q, "vnp_TxnRef", p->ref))
		goto done;
	out = vnpay_signed_query(s->cfg[SIM_VNPAY].secret, &q);
	if (out && f->bad_signature)
		sim_corrupt_hex(out);
done:
	params_free(&q);
	return out;
}

void vnpay_bank_confirm(sim *s, struct evhttp_request *req)
{
	params form;
	params_init(&form);
	struct strbuf ipn, ret;
	strbuf_init(&ipn);
	strbuf_init(&ret);
	char *query = NULL, err[160];
	sim_faults f = s->faults[SIM_VNPAY];
	if (!sim_request_params(req, &form)) {
		error_page(req, 400, "03", "Invalid data format");
		goto done;
	}
	if (!sim_faults_apply_params(&f, &form, err, sizeof(err))) {
		error_page(req, 400, "03", err);
		goto done;
	}
	const char *ref = params_get(&form, "ref");
	const char *action = params_get(&form, "action");
	sim_payment *p = sim_store_find(&s->store, SIM_VNPAY, ref ? ref : params_get(&form, "vnp_TxnRef"));
	if (!p) {
		error_page(req, 404, "91", "Transaction not found");
		goto done;
	}
	if (!action || (strcmp(action, "approve") != 0 && strcmp(action, "decline") != 0)) {
		error_page(req, 400, "03", "action must be approve or decline");
		goto done;
	}
	if (p->status == SIM_SUCCEEDED || p->status == SIM_FAILED) {
		error_page(req, 409, "02", "This transaction has already been processed");
		goto done;
	}
	time_t now = time(NULL);
	const char *response, *status;
	if (strcmp(action, "decline") == 0) {
		p->status = SIM_FAILED;
		response = "24";
		status = "02";
	} else if (now > p->expires_at && !f.allow_expired) {
		p->status = SIM_EXPIRED;
		response = "11";
		status = "02";
	} else {
		p->status = SIM_SUCCEEDED;
		p->paid_at = now;
		response = "00";
		status = "00";
	}
	char txn[32];
	snprintf(txn, sizeof(txn), "%" PRId64, sim_store_next_txn(&s->store));
	if (!sim_store_set_txn(&s->store, p, txn) || !sim_strset(&p->result_code, response) ||
	    !(query = result_query(s, p, &f, response, status, now))) {
		error_page(req, 500, "99", "Out of memory");
		goto done;
	}
	strbuf_printf(&ipn, "%s/ipn/vnpay?%s", s->feegate_url, query);
	strbuf_printf(&ret, "%s%c%s", p->return_url, strchr(p->return_url, '?') ? '&' : '?', query);
	sim_outgoing out = { .method = "GET", .url = ipn.data };
	sim_confirm_notify(s, req, SIM_VNPAY, p, &out, &f, params_get(&form, "wait"), ret.data, "vnpay_confirm", action);
done:
	free(query);
	strbuf_free(&ipn);
	strbuf_free(&ret);
	params_free(&form);
}

/* A signed merchant API answer. p and r may be NULL; the request's fields fill
 * in what they do not. */
static void api_answer(sim *s, struct evhttp_request *req, const json_t *request, const char *command,
		       const char *code, const char *message, const sim_payment *p, const sim_refund *r,
		       char **keep)
{
	char response_id[33], amount[32] = "", pay_date[15] = "";
	sim_random_hex(response_id, 32);
	const char *ref = json_string_value(json_object_get(request, "vnp_TxnRef"));
	const char *type = "", *txn = "", *status = "", *info = "";
	bool is_query = strcmp(command, "querydr") == 0;
	if (p && is_query) {
		snprintf(amount, sizeof(amount), "%" PRId64, p->amount * 100);
		if (p->paid_at)
			vnpay_format_date(p->paid_at, pay_date);
		txn = p->txn_id ? p->txn_id : "";
		type = "01";
		status = p->status == SIM_SUCCEEDED ? "00" : p->status == SIM_PENDING ? "01" : "02";
		info = p->order_info ? p->order_info : "";
	} else if (r) {
		snprintf(amount, sizeof(amount), "%" PRId64, r->amount * 100);
		vnpay_format_date(r->at, pay_date);
		txn = r->txn_id;
		type = json_string_value(json_object_get(request, "vnp_TransactionType"));
		status = "00";
		info = json_string_value(json_object_get(request, "vnp_OrderInfo"));
	}
	json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
			      "vnp_ResponseId", response_id, "vnp_Command", command,
			      "vnp_ResponseCode", code, "vnp_Message", message,
			      "vnp_TmnCode", s->cfg[SIM_VNPAY].merchant_id, "vnp_TxnRef", ref ? ref : "",
			      "vnp_Amount", amount, "vnp_BankCode", (p || r) ? "NCB" : "",
			      "vnp_PayDate", pay_date, "vnp_TransactionNo", txn,
			      "vnp_TransactionType", type ? type : "", "vnp_TransactionStatus", status,
			      "vnp_OrderInfo", info ? info : "");
	char hash[VNPAY_HASH_HEX_SIZE];
	if (a && is_query) {
		json_object_set_new(a, "vnp_PromotionCode", json_string(""));
		json_object_set_new(a, "vnp_PromotionAmount", json_string(""));
	}
	bool signed_ok = a && vnpay_api_sign(s->cfg[SIM_VNPAY].secret,
					     is_query ? VNPAY_MSG_QUERYDR_RESPONSE : VNPAY_MSG_REFUND_RESPONSE, a, hash);
	sim_reply_signed(s, req, 200, SIM_VNPAY, a, signed_ok, "vnp_SecureHash", hash, keep);
}

static void api_querydr(sim *s, struct evhttp_request *req, const json_t *obj)
{
	const char *ref = json_string_value(json_object_get(obj, "vnp_TxnRef"));
	sim_payment *p = ref ? sim_store_find(&s->store, SIM_VNPAY, ref) : NULL;
	if (!p) {
		api_answer(s, req, obj, "querydr", "91", "Transaction not found", NULL, NULL, NULL);
		return;
	}
	sim_expire_if_due(p, time(NULL));
	api_answer(s, req, obj, "querydr", "00", "Success", p, NULL, NULL);
}

static void api_refund(sim *s, struct evhttp_request *req, const json_t *obj)
{
	const char *request_id = json_string_value(json_object_get(obj, "vnp_RequestId"));
	const char *ref = json_string_value(json_object_get(obj, "vnp_TxnRef"));
	const char *type = json_string_value(json_object_get(obj, "vnp_TransactionType"));
	const char *txn = json_string_value(json_object_get(obj, "vnp_TransactionNo"));
	int64_t amount100 = 0;
	if (!request_id || !*request_id || !ref || !type) {
		api_answer(s, req, obj, "refund", "03", "Invalid data format", NULL, NULL, NULL);
		return;
	}
	sim_refund *seen = sim_store_find_refund(&s->store, SIM_VNPAY, request_id);
	if (seen) {
		if (seen->answer && strcmp(seen->payment->ref, ref) == 0) {
			sim_reply_text(req, 200, "application/json; charset=utf-8", seen->answer, strlen(seen->answer));
			return;
		}
		api_answer(s, req, obj, "refund", "94", "Duplicate request", NULL, NULL, NULL);
		return;
	}
	sim_payment *p = sim_store_find(&s->store, SIM_VNPAY, ref);
	if (!p || (txn && *txn && (!p->txn_id || strcmp(txn, p->txn_id) != 0))) {
		api_answer(s, req, obj, "refund", "91", "Transaction not found", NULL, NULL, NULL);
		return;
	}
	if (p->status != SIM_SUCCEEDED) {
		api_answer(s, req, obj, "refund", "95", "Transaction was not successful", NULL, NULL, NULL);
		return;
	}
	if (!util_parse_int64(json_string_value(json_object_get(obj, "vnp_Amount")), &amount100) ||
	    amount100 <= 0 || amount100 % 100 != 0 || (strcmp(type, "02") != 0 && strcmp(type, "03") != 0)) {
		api_answer(s, req, obj, "refund", "03", "Invalid data format", NULL, NULL, NULL);
		return;
	}
	int64_t amount = amount100 / 100;
	if (strcmp(type, "02") == 0 && p->refunded > 0) {
		api_answer(s, req, obj, "refund", "04", "Full refund not allowed after a partial refund", NULL,
			   NULL, NULL);
		return;
	}
	if (amount > p->amount - p->refunded || (strcmp(type, "02") == 0 && amount != p->amount)) {
		api_answer(s, req, obj, "refund", "93", "Invalid refund amount", NULL, NULL, NULL);
		return;
	}
	char refund_txn[32];
	snprintf(refund_txn, sizeof(refund_txn), "%" PRId64, sim_store_next_txn(&s->store));
	sim_refund *r = sim_store_add_refund(&s->store, p, request_id, refund_txn, amount, time(NULL));
	if (!r) {
		api_answer(s, req, obj, "refund", "99", "Other error", NULL, NULL, NULL);
		return;
	}
	sim_log("info", "vnpay_refund", "%s refunded %" PRId64 " VND (%" PRId64 " of %" PRId64 ")", ref, amount,
		p->refunded, p->amount);
	api_answer(s, req, obj, "refund", "00", "Success", p, r, &r->answer);
}

void vnpay_bank_api(sim *s, struct evhttp_request *req)
{
	json_t *obj = sim_body_json(req);
	if (!obj) {
		sim_reply_json(req, 400, json_pack("{s:s, s:s}", "vnp_ResponseCode", "03", "vnp_Message",
						   "Invalid data format"));
		return;
	}
	const adapter_config *cfg = &s->cfg[SIM_VNPAY];
	const char *command = json_string_value(json_object_get(obj, "vnp_Command"));
	const char *tmn = json_string_value(json_object_get(obj, "vnp_TmnCode"));
	vnpay_msg kind;
	if (command && strcmp(command, "querydr") == 0) {
		kind = VNPAY_MSG_QUERYDR;
	} else if (command && strcmp(command, "refund") == 0) {
		kind = VNPAY_MSG_REFUND;
	} else {
		sim_reply_json(req, 400, json_pack("{s:s, s:s}", "vnp_ResponseCode", "03", "vnp_Message",
						   "Unknown vnp_Command"));
		goto done;
	}
	if (vnpay_api_verify(cfg->secret, kind, obj) != ADAPTER_OK) {
		api_answer(s, req, obj, command, "97", "Invalid checksum", NULL, NULL, NULL);
		goto done;
	}
	if (!tmn || strcmp(tmn, cfg->merchant_id) != 0) {
		api_answer(s, req, obj, command, "02", "Invalid TmnCode", NULL, NULL, NULL);
		goto done;
	}
	if (kind == VNPAY_MSG_QUERYDR)
		api_querydr(s, req, obj);
	else
		api_refund(s, req, obj);
done:
	json_decref(obj);
}
