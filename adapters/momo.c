#include "adapters/momo.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/csv.h"
#include "adapters/jsonfield.h"
#include "adapters/params.h"
#include "lib/mem.h"
#include "lib/util.h"

#define MOMO_ORDER_INFO_MAX 255

static const char *const create_keys[] = {
	"accessKey", "amount", "extraData", "ipnUrl", "orderId", "orderInfo", "partnerCode",
	"redirectUrl", "requestId", "requestType", NULL,
};
static const char *const create_response_keys[] = {
	"accessKey", "amount", "message", "orderId", "partnerCode", "payUrl", "requestId",
	"responseTime", "resultCode", NULL,
};
static const char *const query_keys[] = {
	"accessKey", "orderId", "partnerCode", "requestId", NULL,
};
static const char *const refund_keys[] = {
	"accessKey", "amount", "description", "orderId", "partnerCode", "requestId", "transId", NULL,
};
static const char *const refund_response_keys[] = {
	"accessKey", "amount", "message", "orderId", "partnerCode", "requestId", "responseTime",
	"resultCode", "transId", NULL,
};
static const char *const ipn_keys[] = {
	"accessKey", "amount", "extraData", "message", "orderId", "orderInfo", "orderType",
	"partnerCode", "payType", "requestId", "responseTime", "resultCode", "transId", NULL,
};

static const struct {
	const char *name;
	momo_msg kind;
	const char *const *keys;
} messages[] = {
	{ "create", MOMO_MSG_CREATE, create_keys },
	{ "create-response", MOMO_MSG_CREATE_RESPONSE, create_response_keys },
	{ "query", MOMO_MSG_QUERY, query_keys },
	{ "query-response", MOMO_MSG_QUERY_RESPONSE, ipn_keys },
	{ "refund", MOMO_MSG_REFUND, refund_keys },
	{ "refund-response", MOMO_MSG_REFUND_RESPONSE, refund_response_keys },
	{ "ipn", MOMO_MSG_IPN, ipn_keys },
};

bool momo_msg_from_name(const char *name, momo_msg *out)
{
	for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
		if (strcmp(messages[i].name, name) == 0) {
			*out = messages[i].kind;
			return true;
		}
	}
	return false;
}

static const char *const *keys_of(momo_msg kind)
{
	for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++)
		if (messages[i].kind == kind)
			return messages[i].keys;
	return query_keys;
}

bool momo_signature_data(momo_msg kind, const char *access_key, const json_t *obj, struct strbuf *out)
{
	const char *const *keys = keys_of(kind);
	for (size_t i = 0; keys[i]; i++) {
		strbuf_printf(out, "%s%s=", i ? "&" : "", keys[i]);
		if (strcmp(keys[i], "accessKey") == 0)
			strbuf_puts(out, access_key ? access_key : "");
		else if (!jsonfield_text(obj, keys[i], out))
			return false;
	}
	return true;
}

bool momo_sign(const char *secret, const char *access_key, momo_msg kind, const json_t *obj,
	       char out[MOMO_SIG_HEX_SIZE])
{
	struct strbuf data;
	strbuf_init(&data);
	bool ok = momo_signature_data(kind, access_key, obj, &data) &&
		  util_hmac_hex("SHA256", secret, data.data ? data.data : "", data.len, out,
				   MOMO_SIG_HEX_SIZE);
	strbuf_free(&data);
	return ok;
}

adapter_rc momo_verify(const char *secret, const char *access_key, momo_msg kind, const json_t *obj)
{
	const char *received = json_string_value(json_object_get(obj, "signature"));
	if (!received || !secret || !*secret)
		return ADAPTER_BAD_SIGNATURE;
	char expected[MOMO_SIG_HEX_SIZE];
	if (!momo_sign(secret, access_key, kind, obj, expected))
		return ADAPTER_MALFORMED;
	return util_hex_equal(expected, received) ? ADAPTER_OK : ADAPTER_BAD_SIGNATURE;
}

bool momo_result_pending(int64_t result_code)
{
	/* 1000 waiting for the user, 7000/7002 being processed, 9000 authorised but
	 * not yet captured. */
	return result_code == 1000 || result_code == 7000 || result_code == 7002 || result_code == 9000;
}

void momo_ipn_reply(adapter_outcome outcome, adapter_reply *out)
{
	const char *message = NULL;
	memset(out, 0, sizeof(*out));
	switch (outcome) {
	case ADAPTER_APPLIED:
	case ADAPTER_REPLAYED:
		out->status = 204;
		return;
	case ADAPTER_REJECTED: out->status = 401; message = "invalid signature"; break;
	case ADAPTER_WRONG_AMOUNT: out->status = 400; message = "invalid amount"; break;
	case ADAPTER_UNKNOWN_ORDER: out->status = 404; message = "order not found"; break;
	case ADAPTER_FAILED: out->status = 500; message = "try again later"; break;
	}
	out->content_type = "application/json";
	int n = snprintf(out->body, sizeof(out->body), "{\"message\":\"%s\"}", message);
	out->body_len = n > 0 ? (size_t)n : 0;
}

static bool text_equal(const json_t *obj, const char *key, const char *want)
{
	const char *v = json_string_value(json_object_get(obj, key));
	return v && want && strcmp(v, want) == 0;
}

static bool config_ok(const adapter_config *cfg)
{
	return cfg->bank_url && cfg->merchant_id && cfg->access_key && cfg->secret && *cfg->secret;
}

static bool momo_post(const adapter_config *cfg, const char *path, json_t *body, momo_msg kind,
		      adapter_request *out)
{
	char sig[MOMO_SIG_HEX_SIZE];
	struct strbuf url;
	strbuf_init(&url);
	if (!momo_sign(cfg->secret, cfg->access_key, kind, body, sig) ||
	    json_object_set_new(body, "signature", json_string(sig)) != 0)
		return false;
	strbuf_printf(&url, "%s%s", cfg->bank_url, path);
	out->method = "POST";
	out->url = strbuf_take(&url);
	out->body = jsonfield_dump(body, &out->body_len);
	return out->url && out->body &&
	       adapter_request_add_header(out, "Content-Type", "application/json; charset=UTF-8");
}

static adapter_rc momo_start(const adapter_config *cfg, const adapter_payment *p, adapter_start *out)
{
	adapter_rc rc = ADAPTER_INVALID_INPUT;
	json_t *body = NULL;
	char info[MOMO_ORDER_INFO_MAX + 1];
	if (!config_ok(cfg) || !cfg->ipn_url || !cfg->return_url || !p->bank_order_ref ||
	    !*p->bank_order_ref || strlen(p->bank_order_ref) >= ADAPTER_REF_CAP || p->amount < 1 ||
	    p->amount > ADAPTER_AMOUNT_MAX || p->expires_at <= p->created_at) {
		rc = ADAPTER_INVALID_INPUT;
		goto done;
	}
	adapter_set(info, sizeof(info), p->description && *p->description ? p->description : p->bank_order_ref);
	int64_t minutes = (p->expires_at - p->created_at + 59) / 60;
	body = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
			 "partnerCode", cfg->merchant_id,
			 "requestId", p->bank_order_ref,
			 "amount", (json_int_t)p->amount,
			 "orderId", p->bank_order_ref,
			 "orderInfo", info,
			 "redirectUrl", cfg->return_url,
			 "ipnUrl", cfg->ipn_url,
			 "requestType", "captureWallet",
			 "extraData", "",
			 "lang", "vi",
			 "orderExpireTime", (json_int_t)minutes);
	if (!body || !momo_post(cfg, MOMO_CREATE_PATH, body, MOMO_MSG_CREATE, &out->call))
		goto done;
	out->kind = ADAPTER_START_CALL;
	rc = ADAPTER_OK;
done:
	json_decref(body);
	return rc;
}

/* Parses a MoMo API answer and checks its signature; business errors come with
 * 4xx statuses and a signed body, so only an unreadable answer is UNAVAILABLE. */
static adapter_rc momo_answer(const adapter_config *cfg, momo_msg kind, const adapter_response *resp,
			      const char *order_id, json_t **root, int64_t *result_code)
{
	*root = NULL;
	json_t *obj = jsonfield_parse_object(resp->body, resp->body_len);
	if (!obj || !jsonfield_int64(obj, "resultCode", result_code)) {
		json_decref(obj);
		return ADAPTER_UNAVAILABLE;
	}
	adapter_rc rc = momo_verify(cfg->secret, cfg->access_key, kind, obj);
	if (rc == ADAPTER_OK && (!text_equal(obj, "partnerCode", cfg->merchant_id) ||
				 !text_equal(obj, "orderId", order_id)))
		rc = ADAPTER_MISMATCH;
	if (rc != ADAPTER_OK) {
		json_decref(obj);
		return rc;
	}
	*root = obj;
	return ADAPTER_OK;
}

static void set_code(char *dst, size_t cap, int64_t code)
{
	snprintf(dst, cap, "%" PRId64, code);
}

static adapter_rc momo_parse_start_response(const adapter_config *cfg, const adapter_payment *p,
					    const adapter_response *resp, adapter_start *out)
{
	json_t *obj = NULL;
	int64_t code = 0, amount = 0;
	adapter_rc rc = momo_answer(cfg, MOMO_MSG_CREATE_RESPONSE, resp, p->bank_order_ref, &obj, &code);
	if (rc != ADAPTER_OK)
		goto done;
	if (code != 0) {
		set_code(out->failure_code, sizeof(out->failure_code), code);
		rc = ADAPTER_DECLINED;
		goto done;
	}
	if (!text_equal(obj, "requestId", p->bank_order_ref) ||
	    !jsonfield_int64(obj, "amount", &amount) || amount != p->amount) {
		rc = ADAPTER_MISMATCH;
		goto done;
	}
	const char *pay_url = json_string_value(json_object_get(obj, "payUrl"));
	if (!pay_url || (strncmp(pay_url, "https://", 8) != 0 && strncmp(pay_url, "http://", 7) != 0)) {
		rc = ADAPTER_MALFORMED;
		goto done;
	}
	out->redirect_url = xstrdup(pay_url);
	rc = ADAPTER_OK;
done:
	json_decref(obj);
	return rc;
}

/* The payment result an IPN, a redirect or a query answer carries. */
static adapter_rc momo_txn_from(const json_t *obj, adapter_txn *out)
{
	int64_t code, amount, millis;
	if (!jsonfield_int64(obj, "resultCode", &code) || !jsonfield_int64(obj, "amount", &amount) ||
	    amount < 0 || amount > ADAPTER_AMOUNT_MAX ||
	    !jsonfield_copy(obj, "orderId", out->bank_order_ref, sizeof(out->bank_order_ref)) ||
	    !out->bank_order_ref[0])
		return ADAPTER_MALFORMED;
	out->amount = amount;
	if (!jsonfield_copy(obj, "transId", out->bank_txn_id, sizeof(out->bank_txn_id)))
		out->bank_txn_id[0] = '\0';
	if (jsonfield_int64(obj, "responseTime", &millis) && millis > 0)
		out->bank_time = (time_t)(millis / 1000);
	if (code == 0) {
		out->state = ADAPTER_TXN_SUCCEEDED;
		out->success = true;
		if (!out->bank_txn_id[0])
			return ADAPTER_MALFORMED;
	} else {
		out->state = momo_result_pending(code) ? ADAPTER_TXN_PENDING : ADAPTER_TXN_FAILED;
		set_code(out->failure_code, sizeof(out->failure_code), code);
	}
	return ADAPTER_OK;
}

static adapter_rc momo_check_ipn(const adapter_config *cfg, const json_t *obj, adapter_txn *out)
{
	adapter_rc rc = momo_verify(cfg->secret, cfg->access_key, MOMO_MSG_IPN, obj);
	if (rc != ADAPTER_OK)
		return rc;
	if (!text_equal(obj, "partnerCode", cfg->merchant_id))
		return ADAPTER_MISMATCH;
	return momo_txn_from(obj, out);
}

static adapter_rc momo_verify_notification(const adapter_config *cfg, const adapter_inbound *in,
					   adapter_txn *out)
{
	json_t *obj = jsonfield_parse_object(in->body, in->body_len);
	if (!obj)
		return ADAPTER_MALFORMED;
	adapter_rc rc = momo_check_ipn(cfg, obj, out);
	json_decref(obj);
	return rc;
}

/* The redirect carries the IPN's fields as query parameters, all as text. */
static adapter_rc momo_verify_return(const adapter_config *cfg, const adapter_inbound *in,
				     adapter_txn *out)
{
	adapter_rc rc = ADAPTER_MALFORMED;
	params p;
	params_init(&p);
	json_t *obj = json_object();
	if (!obj)
		goto done;
	if (!params_parse_query(&p, in->query)) {
		rc = ADAPTER_MALFORMED;
		goto done;
	}
	for (size_t i = 0; i < p.len; i++) {
		if (params_count(&p, p.items[i].name) > 1) {
			rc = ADAPTER_MALFORMED;
			goto done;
		}
		if (json_object_set_new(obj, p.items[i].name, json_string(p.items[i].value)) != 0) {
			rc = ADAPTER_MALFORMED; /* not UTF-8 */
			goto done;
		}
	}
	rc = momo_check_ipn(cfg, obj, out);
done:
	json_decref(obj);
	params_free(&p);
	return rc;
}

static bool momo_request_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return n > 0 && n <= 50;
}

static adapter_rc momo_build_query(const adapter_config *cfg, const adapter_query *q,
				   adapter_request *out)
{
	adapter_rc rc = ADAPTER_INVALID_INPUT;
	json_t *body = NULL;
	if (!config_ok(cfg) || !momo_request_id_ok(q->request_id) || !q->bank_order_ref ||
	    !*q->bank_order_ref) {
		rc = ADAPTER_INVALID_INPUT;
		goto done;
	}
	body = json_pack("{s:s, s:s, s:s, s:s}", "partnerCode", cfg->merchant_id,
			 "requestId", q->request_id, "orderId", q->bank_order_ref, "lang", "vi");
	if (!body || !momo_post(cfg, MOMO_QUERY_PATH, body, MOMO_MSG_QUERY, out))
		goto done;
	rc = ADAPTER_OK;
done:
	json_decref(body);
	return rc;
}

static adapter_rc momo_parse_query_response(const adapter_config *cfg, const adapter_query *q,
					    const adapter_response *resp, adapter_txn *out)
{
	json_t *obj = NULL;
	int64_t code = 0;
	adapter_rc rc = momo_answer(cfg, MOMO_MSG_QUERY_RESPONSE, resp, q->bank_order_ref, &obj, &code);
	if (rc != ADAPTER_OK)
		goto done;
	if (code == 42) {
		out->state = ADAPTER_TXN_NOT_FOUND;
		adapter_set(out->bank_order_ref, sizeof(out->bank_order_ref), q->bank_order_ref);
		set_code(out->failure_code, sizeof(out->failure_code), code);
		goto done;
	}
	rc = momo_txn_from(obj, out);
done:
	json_decref(obj);
	return rc;
}

static adapter_rc momo_build_refund(const adapter_config *cfg, const adapter_refund *r,
				    adapter_request *out)
{
	adapter_rc rc = ADAPTER_INVALID_INPUT;
	json_t *body = NULL;
	int64_t trans_id;
	char description[MOMO_ORDER_INFO_MAX + 1];
	if (!config_ok(cfg) || !momo_request_id_ok(r->refund_ref) ||
	    !util_parse_int64(r->bank_txn_id, &trans_id) || trans_id <= 0 || r->amount < 1 ||
	    r->amount > r->paid_amount || r->amount > ADAPTER_AMOUNT_MAX) {
		rc = ADAPTER_INVALID_INPUT;
		goto done;
	}
	adapter_set(description, sizeof(description), r->reason ? r->reason : "");
	body = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s}",
			 "partnerCode", cfg->merchant_id,
			 "orderId", r->refund_ref,
			 "requestId", r->refund_ref,
			 "amount", (json_int_t)r->amount,
			 "transId", (json_int_t)trans_id,
			 "lang", "vi",
			 "description", description);
	if (!body || !momo_post(cfg, MOMO_REFUND_PATH, body, MOMO_MSG_REFUND, out))
		goto done;
	rc = ADAPTER_OK;
done:
	json_decref(body);
	return rc;
}

static adapter_rc momo_parse_refund_response(const adapter_config *cfg, const adapter_refund *r,
					     const adapter_response *resp, adapter_txn *out)
{
	json_t *obj = NULL;
	int64_t code = 0, amount = 0, millis = 0;
	adapter_rc rc = momo_answer(cfg, MOMO_MSG_REFUND_RESPONSE, resp, r->refund_ref, &obj, &code);
	if (rc != ADAPTER_OK)
		goto done;
	adapter_set(out->bank_order_ref, sizeof(out->bank_order_ref), r->bank_order_ref);
	out->amount = jsonfield_int64(obj, "amount", &amount) ? amount : r->amount;
	if (jsonfield_int64(obj, "responseTime", &millis) && millis > 0)
		out->bank_time = (time_t)(millis / 1000);
	if (code == 0) {
		out->state = ADAPTER_TXN_SUCCEEDED;
		out->success = true;
		if (!jsonfield_copy(obj, "transId", out->bank_txn_id, sizeof(out->bank_txn_id)))
			rc = ADAPTER_MALFORMED;
		goto done;
	}
	set_code(out->failure_code, sizeof(out->failure_code), code);
	out->state = momo_result_pending(code) ? ADAPTER_TXN_PENDING
		     : code == 42		   ? ADAPTER_TXN_NOT_FOUND
						   : ADAPTER_TXN_FAILED;
done:
	json_decref(obj);
	return rc;
}

static bool momo_settlement_row(const adapter_config *cfg, const csv_reader *r,
				adapter_settlement_line *l, adapter_error *err)
{
	static const char *const refs[4] = {"orderId", "transId", "refundOrderId", "refundTransId"};
	if (!csv_settlement_start(cfg, r, 9, "partnerCode", l, err))
		return false;
	const char *type = csv_field(r, 1);
	if (strcmp(type, "payment") == 0)
		l->kind = ADAPTER_SETTLE_PAYMENT;
	else if (strcmp(type, "refund") == 0)
		l->kind = ADAPTER_SETTLE_REFUND;
	else
		return csv_settle_fail(err, r->line, "type is neither payment nor refund");
	if (!csv_settlement_refs(r, l, refs, err))
		return false;
	int64_t millis;
	if (!util_parse_int64(csv_field(r, 6), &l->amount) || l->amount <= 0)
		return csv_settle_fail(err, r->line, "bad amount");
	if (!util_parse_int64(csv_field(r, 7), &l->fee) || l->fee < 0)
		return csv_settle_fail(err, r->line, "bad fee");
	if (!util_parse_int64(csv_field(r, 8), &millis) || millis <= 0)
		return csv_settle_fail(err, r->line, "bad responseTime");
	l->at = (time_t)(millis / 1000);
	return true;
}

static adapter_rc momo_parse_settlement(const adapter_config *cfg, const char *data, size_t len,
					adapter_settlement_cb cb, void *ctx, adapter_error *err)
{
	return csv_parse_settlement(cfg, data, len, MOMO_SETTLEMENT_HEADER, momo_settlement_row, cb, ctx, err);
}

const adapter momo_adapter = {
	.name = "momo",
	.display_name = "MoMo",
	.checkout_vi = "Ví điện tử MoMo",
	.checkout_en = "MoMo e-wallet",
	.env_merchant_id = "FEEGATE_MOMO_PARTNER_CODE",
	.env_access_key = "FEEGATE_MOMO_ACCESS_KEY",
	.env_secret = "FEEGATE_MOMO_SECRET_KEY",
	.start = momo_start,
	.parse_start_response = momo_parse_start_response,
	.verify_return = momo_verify_return,
	.verify_notification = momo_verify_notification,
	.notification_reply = momo_ipn_reply,
	.matches = NULL,
	.build_query = momo_build_query,
	.parse_query_response = momo_parse_query_response,
	.build_refund = momo_build_refund,
	.parse_refund_response = momo_parse_refund_response,
	.parse_settlement = momo_parse_settlement,
};
