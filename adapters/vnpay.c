#include "adapters/vnpay.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/csv.h"
#include "adapters/jsonfield.h"
#include "lib/mem.h"
#include "lib/util.h"

static const char *const querydr_fields[] = {
	"vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TxnRef",
	"vnp_TransactionDate", "vnp_CreateDate", "vnp_IpAddr", "vnp_OrderInfo", NULL,
};
static const char *const refund_fields[] = {
	"vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TransactionType",
	"vnp_TxnRef", "vnp_Amount", "vnp_TransactionNo", "vnp_TransactionDate", "vnp_CreateBy",
	"vnp_CreateDate", "vnp_IpAddr", "vnp_OrderInfo", NULL,
};
static const char *const querydr_response_fields[] = {
	"vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode",
	"vnp_TxnRef", "vnp_Amount", "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo",
	"vnp_TransactionType", "vnp_TransactionStatus", "vnp_OrderInfo", "vnp_PromotionCode",
	"vnp_PromotionAmount", NULL,
};
static const char *const refund_response_fields[] = {
	"vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode",
	"vnp_TxnRef", "vnp_Amount", "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo",
	"vnp_TransactionType", "vnp_TransactionStatus", "vnp_OrderInfo", NULL,
};

static bool is_signed_name(const char *name)
{
	return strncmp(name, "vnp_", 4) == 0 && strcmp(name, "vnp_SecureHash") != 0 &&
	       strcmp(name, "vnp_SecureHashType") != 0;
}

void vnpay_hash_data(const params *p, struct strbuf *out)
{
	params sorted;
	params_init(&sorted);
	/* Sort a shallow copy: the caller's list keeps its order. */
	sorted.items = xmalloc((p->len ? p->len : 1) * sizeof(*sorted.items));
	for (size_t i = 0; i < p->len; i++)
		if (is_signed_name(p->items[i].name) && p->items[i].value[0] != '\0')
			sorted.items[sorted.len++] = p->items[i];
	params_sort(&sorted);
	params_encode(out, &sorted);
	free(sorted.items);
}

bool vnpay_sign_params(const char *secret, const params *p, char out[VNPAY_HASH_HEX_SIZE])
{
	struct strbuf data;
	strbuf_init(&data);
	vnpay_hash_data(p, &data);
	bool ok = util_hmac_hex("SHA512", secret, data.data ? data.data : "", data.len, out,
				   VNPAY_HASH_HEX_SIZE);
	strbuf_free(&data);
	return ok;
}

adapter_rc vnpay_verify_params(const char *secret, const params *p)
{
	for (size_t i = 0; i < p->len; i++)
		if (strncmp(p->items[i].name, "vnp_", 4) == 0 && params_count(p, p->items[i].name) > 1)
			return ADAPTER_MALFORMED;
	const char *received = params_get(p, "vnp_SecureHash");
	if (!received || !secret || !*secret)
		return ADAPTER_BAD_SIGNATURE;
	char expected[VNPAY_HASH_HEX_SIZE];
	if (!vnpay_sign_params(secret, p, expected))
		return ADAPTER_BAD_SIGNATURE;
	return util_hex_equal(expected, received) ? ADAPTER_OK : ADAPTER_BAD_SIGNATURE;
}

char *vnpay_signed_query(const char *secret, params *p)
{
	char *out = NULL;
	char hash[VNPAY_HASH_HEX_SIZE];
	struct strbuf q;
	strbuf_init(&q);
	params_remove(p, "vnp_SecureHash");
	params_sort(p);
	if (!vnpay_sign_params(secret, p, hash))
		goto done;
	params_encode(&q, p);
	strbuf_printf(&q, "%svnp_SecureHash=%s", p->len ? "&" : "", hash);
	out = strbuf_take(&q);
done:
	strbuf_free(&q);
	return out;
}

static const char *const *api_fields(vnpay_msg kind)
{
	switch (kind) {
	case VNPAY_MSG_QUERYDR: return querydr_fields;
	case VNPAY_MSG_REFUND: return refund_fields;
	case VNPAY_MSG_QUERYDR_RESPONSE: return querydr_response_fields;
	case VNPAY_MSG_REFUND_RESPONSE: return refund_response_fields;
	}
	return querydr_fields;
}

bool vnpay_api_hash_data(vnpay_msg kind, const json_t *obj, struct strbuf *out)
{
	const char *const *fields = api_fields(kind);
	for (size_t i = 0; fields[i]; i++) {
		if (i)
			strbuf_putc(out, '|');
		if (!jsonfield_text(obj, fields[i], out))
			return false;
	}
	return true;
}

bool vnpay_api_sign(const char *secret, vnpay_msg kind, const json_t *obj,
		    char out[VNPAY_HASH_HEX_SIZE])
{
	struct strbuf data;
	strbuf_init(&data);
	bool ok = vnpay_api_hash_data(kind, obj, &data) &&
		  util_hmac_hex("SHA512", secret, data.data ? data.data : "", data.len, out,
				   VNPAY_HASH_HEX_SIZE);
	strbuf_free(&data);
	return ok;
}

adapter_rc vnpay_api_verify(const char *secret, vnpay_msg kind, const json_t *obj)
{
	const char *received = json_string_value(json_object_get(obj, "vnp_SecureHash"));
	if (!received || !secret || !*secret)
		return ADAPTER_BAD_SIGNATURE;
	char expected[VNPAY_HASH_HEX_SIZE];
	if (!vnpay_api_sign(secret, kind, obj, expected))
		return ADAPTER_MALFORMED;
	return util_hex_equal(expected, received) ? ADAPTER_OK : ADAPTER_BAD_SIGNATURE;
}

void vnpay_format_date(time_t t, char out[15])
{
	adapter_format_vn_time(t, "%Y%m%d%H%M%S", out, 15);
}

void vnpay_order_info(const char *text, char *out, size_t cap)
{
	size_t limit = cap < VNPAY_ORDER_INFO_MAX + 1 ? cap : VNPAY_ORDER_INFO_MAX + 1;
	adapter_ascii_fold(text, out, limit);
}

void vnpay_ipn_reply(adapter_outcome outcome, adapter_reply *out)
{
	const char *code = "99", *message = "Unknown error";
	switch (outcome) {
	case ADAPTER_APPLIED: code = "00"; message = "Confirm Success"; break;
	case ADAPTER_REPLAYED: code = "02"; message = "Order already confirmed"; break;
	case ADAPTER_UNKNOWN_ORDER: code = "01"; message = "Order not found"; break;
	case ADAPTER_WRONG_AMOUNT: code = "04"; message = "Invalid amount"; break;
	case ADAPTER_REJECTED: code = "97"; message = "Invalid signature"; break;
	case ADAPTER_FAILED: break;
	}
	memset(out, 0, sizeof(*out));
	out->status = 200;
	out->content_type = "application/json";
	int n = snprintf(out->body, sizeof(out->body), "{\"RspCode\":\"%s\",\"Message\":\"%s\"}",
			 code, message);
	out->body_len = n > 0 ? (size_t)n : 0;
}

static bool valid_request_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

static bool amount_ok(int64_t amount)
{
	return amount >= 1 && amount <= ADAPTER_AMOUNT_MAX;
}

/* VNPAY amounts are VND x 100 in decimal text. */
static bool parse_vnp_amount(const char *s, int64_t *vnd)
{
	int64_t v;
	if (!util_parse_int64(s, &v) || v <= 0 || v % 100 != 0 || !amount_ok(v / 100))
		return false;
	*vnd = v / 100;
	return true;
}

static adapter_rc vnpay_start(const adapter_config *cfg, const adapter_payment *p,
			      adapter_start *out)
{
	adapter_rc rc = ADAPTER_INVALID_INPUT;
	params q;
	struct strbuf url;
	params_init(&q);
	strbuf_init(&url);
	char amount[32], created[15], expires[15], info[VNPAY_ORDER_INFO_MAX + 1];

	if (!cfg->bank_url || !cfg->merchant_id || !cfg->secret || !*cfg->secret ||
	    !cfg->return_url || !p->bank_order_ref || !*p->bank_order_ref ||
	    strlen(p->bank_order_ref) >= ADAPTER_REF_CAP || !amount_ok(p->amount) ||
	    p->expires_at <= p->created_at) {
		rc = ADAPTER_INVALID_INPUT;
		goto done;
	}
	snprintf(amount, sizeof(amount), "%" PRId64, p->amount * 100);
	vnpay_format_date(p->created_at, created);
	vnpay_format_date(p->expires_at, expires);
	vnpay_order_info(p->description, info, sizeof(info));
	if (!info[0])
		snprintf(info, sizeof(info), "Thanh toan %s", p->bank_order_ref);

	if (!params_add(&q, "vnp_Version", VNPAY_VERSION) ||
	    !params_add(&q, "vnp_Command", "pay") ||
	    !params_add(&q, "vnp_TmnCode", cfg->merchant_id) ||
	    !params_add(&q, "vnp_Amount", amount) ||
	    !params_add(&q, "vnp_CurrCode", "VND") ||
	    !params_add(&q, "vnp_TxnRef", p->bank_order_ref) ||
	    !params_add(&q, "vnp_OrderInfo", info) ||
	    !params_add(&q, "vnp_OrderType", "other") ||
	    !params_add(&q, "vnp_Locale", "vn") ||
	    !params_add(&q, "vnp_ReturnUrl", cfg->return_url) ||
	    !params_add(&q, "vnp_IpAddr", p->client_ip && *p->client_ip ? p->client_ip : "127.0.0.1") ||
	    !params_add(&q, "vnp_CreateDate", created) ||
	    !params_add(&q, "vnp_ExpireDate", expires))
		goto done;
	char *query = vnpay_signed_query(cfg->secret, &q);
	if (!query)
		goto done;
	strbuf_printf(&url, "%s%s?%s", cfg->bank_url, VNPAY_PAY_PATH, query);
	free(query);
	out->kind = ADAPTER_START_REDIRECT;
	out->redirect_url = strbuf_take(&url);
	if (!out->redirect_url)
		goto done;
	rc = ADAPTER_OK;
done:
	params_free(&q);
	strbuf_free(&url);
	return rc;
}

/* An IPN or a return: both are the same signed query string. */
static adapter_rc vnpay_verify_query(const adapter_config *cfg, const adapter_inbound *in,
				     adapter_txn *out)
{
	adapter_rc rc = ADAPTER_MALFORMED;
	params p;
	params_init(&p);
	if (!params_parse_query(&p, in->query)) {
		rc = ADAPTER_MALFORMED;
		goto done;
	}
	rc = vnpay_verify_params(cfg->secret, &p);
	if (rc != ADAPTER_OK)
		goto done;
	rc = ADAPTER_MALFORMED;
	const char *tmn = params_get(&p, "vnp_TmnCode");
	const char *response = params_get(&p, "vnp_ResponseCode");
	const char *status = params_get(&p, "vnp_TransactionStatus");
	const char *pay_date = params_get(&p, "vnp_PayDate");
	if (!tmn || !response)
		goto done;
	if (!cfg->merchant_id || strcmp(tmn, cfg->merchant_id) != 0) {
		rc = ADAPTER_MISMATCH;
		goto done;
	}
	if (!adapter_copy(out->bank_order_ref, sizeof(out->bank_order_ref), params_get(&p, "vnp_TxnRef")) ||
	    !out->bank_order_ref[0] ||
	    !parse_vnp_amount(params_get(&p, "vnp_Amount"), &out->amount) ||
	    !adapter_copy(out->bank_txn_id, sizeof(out->bank_txn_id), params_get(&p, "vnp_TransactionNo")))
		goto done;
	out->success = strcmp(response, "00") == 0 && status && strcmp(status, "00") == 0;
	out->state = out->success ? ADAPTER_TXN_SUCCEEDED : ADAPTER_TXN_FAILED;
	if (out->success && !out->bank_txn_id[0])
		goto done; /* a payment without the bank's transaction id cannot be told from another */
	if (!out->success &&
	    !adapter_copy(out->failure_code, sizeof(out->failure_code),
			  strcmp(response, "00") != 0 ? response : status ? status : "??"))
		goto done;
	if (!pay_date || !adapter_parse_vn_compact(pay_date, &out->bank_time))
		out->bank_time = 0;
	rc = ADAPTER_OK;
done:
	params_free(&p);
	return rc;
}

static bool vnpay_api_request(const adapter_config *cfg, json_t *body, vnpay_msg kind,
			      adapter_request *out)
{
	char hash[VNPAY_HASH_HEX_SIZE];
	struct strbuf url;
	strbuf_init(&url);
	if (!vnpay_api_sign(cfg->secret, kind, body, hash) ||
	    json_object_set_new(body, "vnp_SecureHash", json_string(hash)) != 0)
		return false;
	strbuf_printf(&url, "%s%s", cfg->bank_url, VNPAY_API_PATH);
	out->method = "POST";
	out->url = strbuf_take(&url);
	out->body = jsonfield_dump(body, &out->body_len);
	return out->url && out->body &&
	       adapter_request_add_header(out, "Content-Type", "application/json");
}

static adapter_rc vnpay_build_query(const adapter_config *cfg, const adapter_query *q,
				    adapter_request *out)
{
	adapter_rc rc = ADAPTER_INVALID_INPUT;
	char created[15], txn_date[15], info[VNPAY_ORDER_INFO_MAX + 1];
	json_t *body = NULL;
	if (!cfg->bank_url || !cfg->merchant_id || !cfg->secret || !*cfg->secret ||
	    !valid_request_id(q->request_id) || !q->bank_order_ref || !*q->bank_order_ref) {
		rc = ADAPTER_INVALID_INPUT;
		goto done;
	}
	vnpay_format_date(q->now, created);
	vnpay_format_date(q->attempt_created_at, txn_date);
	snprintf(info, sizeof(info), "Truy van GD %s", q->bank_order_ref);
	body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
			 "vnp_RequestId", q->request_id,
			 "vnp_Version", VNPAY_VERSION,
			 "vnp_Command", "querydr",
			 "vnp_TmnCode", cfg->merchant_id,
			 "vnp_TxnRef", q->bank_order_ref,
			 "vnp_OrderInfo", info,
			 "vnp_TransactionDate", txn_date,
			 "vnp_CreateDate", created,
			 "vnp_IpAddr", q->server_ip && *q->server_ip ? q->server_ip : "127.0.0.1");
	if (!body)
		goto done;
	if (q->bank_txn_id && *q->bank_txn_id &&
	    json_object_set_new(body, "vnp_TransactionNo", json_string(q->bank_txn_id)) != 0)
		goto done;
	if (!vnpay_api_request(cfg, body, VNPAY_MSG_QUERYDR, out))
		goto done;
	rc = ADAPTER_OK;
done:
	json_decref(body);
	return rc;
}

/* Parses and verifies a merchant API answer; *root is the object on ADAPTER_OK. */
static adapter_rc vnpay_api_answer(const adapter_config *cfg, vnpay_msg kind, const char *command,
				   const adapter_response *resp, json_t **root)
{
	*root = NULL;
	if (resp->status != 200)
		return ADAPTER_UNAVAILABLE;
	json_t *obj = jsonfield_parse_object(resp->body, resp->body_len);
	if (!obj)
		return ADAPTER_UNAVAILABLE;
	adapter_rc rc = vnpay_api_verify(cfg->secret, kind, obj);
	if (rc != ADAPTER_OK) {
		json_decref(obj);
		return rc;
	}
	const char *tmn = json_string_value(json_object_get(obj, "vnp_TmnCode"));
	const char *cmd = json_string_value(json_object_get(obj, "vnp_Command"));
	if (!cmd || strcmp(cmd, command) != 0 || !tmn || !cfg->merchant_id ||
	    strcmp(tmn, cfg->merchant_id) != 0) {
		json_decref(obj);
		return ADAPTER_MISMATCH;
	}
	*root = obj;
	return ADAPTER_OK;
}

static adapter_rc vnpay_parse_query_response(const adapter_config *cfg, const adapter_query *q,
					     const adapter_response *resp, adapter_txn *out)
{
	json_t *obj = NULL;
	char code[ADAPTER_CODE_CAP], status[ADAPTER_CODE_CAP], ref[ADAPTER_REF_CAP];
	adapter_rc rc = vnpay_api_answer(cfg, VNPAY_MSG_QUERYDR_RESPONSE, "querydr", resp, &obj);
	if (rc != ADAPTER_OK)
		goto done;
	rc = ADAPTER_MALFORMED;
	if (!jsonfield_copy(obj, "vnp_ResponseCode", code, sizeof(code)))
		goto done;
	if (strcmp(code, "91") == 0) {
		out->state = ADAPTER_TXN_NOT_FOUND;
		adapter_set(out->failure_code, sizeof(out->failure_code), code);
		adapter_set(out->bank_order_ref, sizeof(out->bank_order_ref), q->bank_order_ref);
		rc = ADAPTER_OK;
		goto done;
	}
	if (strcmp(code, "00") != 0) {
		adapter_set(out->failure_code, sizeof(out->failure_code), code);
		rc = ADAPTER_DECLINED;
		goto done;
	}
	if (!jsonfield_copy(obj, "vnp_TxnRef", ref, sizeof(ref)))
		goto done;
	if (strcmp(ref, q->bank_order_ref) != 0) {
		rc = ADAPTER_MISMATCH;
		goto done;
	}
	int64_t amount100;
	if (!jsonfield_copy(obj, "vnp_TransactionStatus", status, sizeof(status)) ||
	    !jsonfield_int64(obj, "vnp_Amount", &amount100) || amount100 < 0 || amount100 % 100 != 0)
		goto done;
	memcpy(out->bank_order_ref, ref, sizeof(ref));
	out->amount = amount100 / 100;
	if (!jsonfield_copy(obj, "vnp_TransactionNo", out->bank_txn_id, sizeof(out->bank_txn_id)))
		out->bank_txn_id[0] = '\0';
	char pay_date[ADAPTER_CODE_CAP];
	if (jsonfield_copy(obj, "vnp_PayDate", pay_date, sizeof(pay_date)) &&
	    !adapter_parse_vn_compact(pay_date, &out->bank_time))
		out->bank_time = 0;
	/* 00 paid; 05, 06 and 09 are refund stages of a paid transaction; 01 not
	 * finished; 07 held for fraud review; the rest (02 error, 04 reversed) failed. */
	if (strcmp(status, "00") == 0 || strcmp(status, "05") == 0 || strcmp(status, "06") == 0 ||
	    strcmp(status, "09") == 0) {
		out->state = ADAPTER_TXN_SUCCEEDED;
		out->success = true;
	} else if (strcmp(status, "01") == 0 || strcmp(status, "07") == 0) {
		out->state = ADAPTER_TXN_PENDING;
	} else {
		out->state = ADAPTER_TXN_FAILED;
		memcpy(out->failure_code, status, sizeof(status));
	}
	rc = ADAPTER_OK;
done:
	json_decref(obj);
	return rc;
}

static adapter_rc vnpay_build_refund(const adapter_config *cfg, const adapter_refund *r,
				     adapter_request *out)
{
	adapter_rc rc = ADAPTER_INVALID_INPUT;
	char created[15], txn_date[15], amount[32], info[VNPAY_ORDER_INFO_MAX + 1], by[65];
	json_t *body = NULL;
	if (!cfg->bank_url || !cfg->merchant_id || !cfg->secret || !*cfg->secret ||
	    !valid_request_id(r->refund_ref) || !r->bank_order_ref || !*r->bank_order_ref ||
	    !amount_ok(r->amount) || r->amount > r->paid_amount) {
		rc = ADAPTER_INVALID_INPUT;
		goto done;
	}
	vnpay_format_date(r->now, created);
	vnpay_format_date(r->attempt_created_at, txn_date);
	snprintf(amount, sizeof(amount), "%" PRId64, r->amount * 100);
	vnpay_order_info(r->reason, info, sizeof(info));
	if (!info[0])
		snprintf(info, sizeof(info), "Hoan tien GD %s", r->bank_order_ref);
	adapter_ascii_fold(r->created_by, by, sizeof(by));
	if (!by[0])
		snprintf(by, sizeof(by), "feegate");
	body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
			 "vnp_RequestId", r->refund_ref,
			 "vnp_Version", VNPAY_VERSION,
			 "vnp_Command", "refund",
			 "vnp_TmnCode", cfg->merchant_id,
			 "vnp_TransactionType", r->amount == r->paid_amount ? "02" : "03",
			 "vnp_TxnRef", r->bank_order_ref,
			 "vnp_Amount", amount,
			 "vnp_OrderInfo", info,
			 "vnp_TransactionNo", r->bank_txn_id ? r->bank_txn_id : "",
			 "vnp_TransactionDate", txn_date,
			 "vnp_CreateBy", by,
			 "vnp_CreateDate", created,
			 "vnp_IpAddr", r->server_ip && *r->server_ip ? r->server_ip : "127.0.0.1");
	if (!body || !vnpay_api_request(cfg, body, VNPAY_MSG_REFUND, out))
		goto done;
	rc = ADAPTER_OK;
done:
	json_decref(body);
	return rc;
}

static adapter_rc vnpay_parse_refund_response(const adapter_config *cfg, const adapter_refund *r,
					      const adapter_response *resp, adapter_txn *out)
{
	json_t *obj = NULL;
	char code[ADAPTER_CODE_CAP], ref[ADAPTER_REF_CAP];
	adapter_rc rc = vnpay_api_answer(cfg, VNPAY_MSG_REFUND_RESPONSE, "refund", resp, &obj);
	if (rc != ADAPTER_OK)
		goto done;
	rc = ADAPTER_MALFORMED;
	if (!jsonfield_copy(obj, "vnp_ResponseCode", code, sizeof(code)))
		goto done;
	if (jsonfield_copy(obj, "vnp_TxnRef", ref, sizeof(ref)) && strcmp(ref, r->bank_order_ref) != 0) {
		rc = ADAPTER_MISMATCH;
		goto done;
	}
	adapter_set(out->bank_order_ref, sizeof(out->bank_order_ref), r->bank_order_ref);
	int64_t amount100;
	out->amount = jsonfield_int64(obj, "vnp_Amount", &amount100) && amount100 % 100 == 0
			      ? amount100 / 100 : r->amount;
	if (strcmp(code, "00") == 0) {
		out->state = ADAPTER_TXN_SUCCEEDED;
		out->success = true;
		if (!jsonfield_copy(obj, "vnp_TransactionNo", out->bank_txn_id, sizeof(out->bank_txn_id)))
			goto done;
		char pay_date[ADAPTER_CODE_CAP];
		if (jsonfield_copy(obj, "vnp_PayDate", pay_date, sizeof(pay_date)) &&
		    !adapter_parse_vn_compact(pay_date, &out->bank_time))
			out->bank_time = 0;
	} else if (strcmp(code, "94") == 0) {
		/* The same request is still being processed at VNPAY. */
		out->state = ADAPTER_TXN_PENDING;
		memcpy(out->failure_code, code, sizeof(code));
	} else {
		out->state = strcmp(code, "91") == 0 ? ADAPTER_TXN_NOT_FOUND : ADAPTER_TXN_FAILED;
		memcpy(out->failure_code, code, sizeof(code));
	}
	rc = ADAPTER_OK;
done:
	json_decref(obj);
	return rc;
}

static bool vnpay_settlement_row(const adapter_config *cfg, const csv_reader *r,
				 adapter_settlement_line *l, adapter_error *err)
{
	static const char *const refs[4] = {"TxnRef", "TransactionNo", "RefundRequestId", "RefundTransactionNo"};
	if (!csv_settlement_start(cfg, r, 9, "TmnCode", l, err))
		return false;
	const char *type = csv_field(r, 1);
	if (strcmp(type, "01") == 0)
		l->kind = ADAPTER_SETTLE_PAYMENT;
	else if (strcmp(type, "02") == 0 || strcmp(type, "03") == 0)
		l->kind = ADAPTER_SETTLE_REFUND;
	else
		return csv_settle_fail(err, r->line, "unknown TransactionType");
	if (!csv_settlement_refs(r, l, refs, err))
		return false;
	int64_t fee100;
	if (!parse_vnp_amount(csv_field(r, 6), &l->amount))
		return csv_settle_fail(err, r->line, "bad Amount");
	if (!util_parse_int64(csv_field(r, 7), &fee100) || fee100 < 0 || fee100 % 100 != 0)
		return csv_settle_fail(err, r->line, "bad Fee");
	l->fee = fee100 / 100;
	if (!adapter_parse_vn_compact(csv_field(r, 8), &l->at))
		return csv_settle_fail(err, r->line, "bad PayDate");
	return true;
}

static adapter_rc vnpay_parse_settlement(const adapter_config *cfg, const char *data, size_t len,
					 adapter_settlement_cb cb, void *ctx, adapter_error *err)
{
	return csv_parse_settlement(cfg, data, len, VNPAY_SETTLEMENT_HEADER, vnpay_settlement_row, cb, ctx, err);
}

const adapter vnpay_adapter = {
	.name = "vnpay",
	.display_name = "VNPAY",
	.checkout_vi = "Thẻ ATM, thẻ quốc tế hoặc tài khoản ngân hàng qua VNPAY",
	.checkout_en = "Card or bank account via VNPAY",
	.env_merchant_id = "FEEGATE_VNPAY_TMN_CODE",
	.env_access_key = NULL,
	.env_secret = "FEEGATE_VNPAY_HASH_SECRET",
	.start = vnpay_start,
	.parse_start_response = NULL,
	.verify_return = vnpay_verify_query,
	.verify_notification = vnpay_verify_query,
	.notification_reply = vnpay_ipn_reply,
	.matches = NULL,
	.build_query = vnpay_build_query,
	.parse_query_response = vnpay_parse_query_response,
	.build_refund = vnpay_build_refund,
	.parse_refund_response = vnpay_parse_refund_response,
	.parse_settlement = vnpay_parse_settlement,
};
