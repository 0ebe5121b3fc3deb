#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/params.h"
#include "adapters/vnpay.h"

#define SECRET "TESTSECRET"
#define TMN "FEEGATE1"
#define CREATED ((time_t)1714530600) /* 2024-05-01 09:30:00 GMT+7 */

static const adapter_config cfg = {
	.bank_url = "http://127.0.0.1:8090",
	.merchant_id = TMN,
	.secret = SECRET,
	.ipn_url = "http://127.0.0.1:8080/ipn/vnpay",
	.return_url = "http://127.0.0.1:8080/return/vnpay",
};

static char *encode(const char *s)
{
	struct strbuf b;
	strbuf_init(&b);
	params_urlencode(&b, s, strlen(s));
	return strbuf_take(&b);
}

static void test_urlencode_edge_cases(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "AZaz09-_.", "AZaz09-_." },
		{ "a b", "a+b" },
		{ "~", "%7E" },
		{ "*'()!", "%2A%27%28%29%21" },
		{ "&=+/?#%", "%26%3D%2B%2F%3F%23%25" },
		{ "\xC3\xA9", "%C3%A9" },                  /* é */
		{ "L\xE1\xBB\x87 ph\xC3\xAD", "L%E1%BB%87+ph%C3%AD" }, /* Lệ phí */
		{ "http://h:8080/r?x=1", "http%3A%2F%2Fh%3A8080%2Fr%3Fx%3D1" },
		{ "\x7F\x01", "%7F%01" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = encode(cases[i].in);
		assert_non_null(got);
		assert_string_equal(got, cases[i].out);
		free(got);
	}
}

static void test_urldecode(void **state)
{
	params p;
	params_init(&p);
	assert_true(params_parse_query(&p, "a=x+y%20z&b=%zz%4&c&=skip&d=%C3%A9&a=2"));
	assert_int_equal(p.len, 5);
	assert_string_equal(params_get(&p, "a"), "x y z");
	assert_string_equal(params_get(&p, "b"), "%zz%4");
	assert_string_equal(params_get(&p, "c"), "");
	assert_string_equal(params_get(&p, "d"), "\xC3\xA9");
	assert_int_equal(params_count(&p, "a"), 2);
	params_free(&p);

	params_init(&p);
	assert_false(params_parse_query(&p, "a=1%002"));
	params_free(&p);

	params_init(&p);
	assert_true(params_parse_query(&p, NULL));
	assert_int_equal(p.len, 0);
	params_free(&p);
}

static void test_hash_data_selects_and_sorts(void **state)
{
	params p;
	params_init(&p);
	assert_true(params_add(&p, "vnp_TxnRef", "R1"));
	assert_true(params_add(&p, "vnp_Amount", "100"));
	assert_true(params_add(&p, "vnp_BankCode", ""));
	assert_true(params_add(&p, "other", "x"));
	assert_true(params_add(&p, "vnp_SecureHash", "abc"));
	assert_true(params_add(&p, "vnp_SecureHashType", "SHA512"));
	assert_true(params_add(&p, "vnp_OrderInfo", "a b&c"));
	struct strbuf b;
	strbuf_init(&b);
	vnpay_hash_data(&p, &b);
	assert_string_equal(b.data, "vnp_Amount=100&vnp_OrderInfo=a+b%26c&vnp_TxnRef=R1");
	strbuf_free(&b);
	/* The caller's order is untouched. */
	assert_string_equal(p.items[0].name, "vnp_TxnRef");
	params_free(&p);
}

static adapter_payment sample_payment(void)
{
	adapter_payment p = {
		.bank_order_ref = "ABC12345678",
		.amount = 100000,
		.description = "L\xE1\xBB\x87 ph\xC3\xAD c\xE1\xBA\xA5p h\xE1\xBB\x99 chi\xE1\xBA\xBFu",
		.client_ip = "127.0.0.1",
		.created_at = CREATED,
		.expires_at = CREATED + 900,
	};
	return p;
}

/* Expected digest computed outside this project (Python hmac) from docs/openapi.yaml. */
static void test_redirect_known_answer(void **state)
{
	adapter_payment p = sample_payment();
	adapter_start s;
	assert_int_equal(adapter_start_payment(adapter_find("vnpay"), &cfg, &p, &s), ADAPTER_OK);
	assert_int_equal(s.kind, ADAPTER_START_REDIRECT);
	assert_string_equal(
		s.redirect_url,
		"http://127.0.0.1:8090/paymentv2/vpcpay.html?"
		"vnp_Amount=10000000&vnp_Command=pay&vnp_CreateDate=20240501093000&vnp_CurrCode=VND"
		"&vnp_ExpireDate=20240501094500&vnp_IpAddr=127.0.0.1&vnp_Locale=vn"
		"&vnp_OrderInfo=Le+phi+cap+ho+chieu&vnp_OrderType=other"
		"&vnp_ReturnUrl=http%3A%2F%2F127.0.0.1%3A8080%2Freturn%2Fvnpay&vnp_TmnCode=FEEGATE1"
		"&vnp_TxnRef=ABC12345678&vnp_Version=2.1.0"
		"&vnp_SecureHash=95703ec93a47dad0076ba46385dada3167b40c76d913837b16c11ab470c0ff88"
		"f12e170daeeaa4f9ef9e41ed8a07fb090dd5cec1a01bc2b956bc5cd4a738fc7e");
	adapter_start_free(&s);
}

static void test_redirect_round_trip_and_tamper(void **state)
{
	adapter_payment p = sample_payment();
	adapter_start s;
	assert_int_equal(adapter_start_payment(&vnpay_adapter, &cfg, &p, &s), ADAPTER_OK);
	const char *query = strchr(s.redirect_url, '?') + 1;
	params q;
	params_init(&q);
	assert_true(params_parse_query(&q, query));
	assert_int_equal(vnpay_verify_params(SECRET, &q), ADAPTER_OK);
	assert_int_equal(vnpay_verify_params("other-secret", &q), ADAPTER_BAD_SIGNATURE);
	assert_true(params_set(&q, "vnp_Amount", "20000000"));
	assert_int_equal(vnpay_verify_params(SECRET, &q), ADAPTER_BAD_SIGNATURE);
	params_free(&q);
	adapter_start_free(&s);

	p.amount = 0;
	assert_int_equal(adapter_start_payment(&vnpay_adapter, &cfg, &p, &s), ADAPTER_INVALID_INPUT);
	adapter_start_free(&s);
}

static void test_order_info_sanitized(void **state)
{
	char out[VNPAY_ORDER_INFO_MAX + 1];
	vnpay_order_info("  \xC4\x90\xE1\xBB\xA3t 1/2024 - H\xE1\xBB\x93 s\xC6\xA1: #A-7!  ", out, sizeof(out));
	assert_string_equal(out, "Dot 1 2024 Ho so A 7");
	char longtext[600];
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	vnpay_order_info(longtext, out, sizeof(out));
	assert_int_equal(strlen(out), VNPAY_ORDER_INFO_MAX);
	vnpay_order_info("\xF0\x9F\x98\x80\xE2\x82\xAB", out, sizeof(out)); /* emoji, dong sign */
	assert_string_equal(out, "");
}

static char *signed_ipn(const char *secret, const char *tmn, const char *amount, const char *response,
			const char *status)
{
	params p;
	params_init(&p);
	assert_true(params_add(&p, "vnp_Amount", amount));
	assert_true(params_add(&p, "vnp_BankCode", "NCB"));
	assert_true(params_add(&p, "vnp_OrderInfo", "Le phi cap ho chieu"));
	assert_true(params_add(&p, "vnp_PayDate", "20240501093512"));
	assert_true(params_add(&p, "vnp_ResponseCode", response));
	assert_true(params_add(&p, "vnp_TmnCode", tmn));
	assert_true(params_add(&p, "vnp_TransactionNo", "14123456"));
	assert_true(params_add(&p, "vnp_TransactionStatus", status));
	assert_true(params_add(&p, "vnp_TxnRef", "ABC12345678"));
	char *q = vnpay_signed_query(secret, &p);
	assert_non_null(q);
	params_free(&p);
	return q;
}

static adapter_rc verify_ipn(const char *query, adapter_txn *txn)
{
	adapter_inbound in = { .query = query, .now = CREATED };
	return adapter_verify_notification(&vnpay_adapter, &cfg, &in, txn);
}

static void test_ipn_success(void **state)
{
	char *q = signed_ipn(SECRET, TMN, "10000000", "00", "00");
	adapter_txn txn;
	assert_int_equal(verify_ipn(q, &txn), ADAPTER_OK);
	assert_true(txn.success);
	assert_int_equal(txn.state, ADAPTER_TXN_SUCCEEDED);
	assert_string_equal(txn.bank_order_ref, "ABC12345678");
	assert_int_equal(txn.amount, 100000);
	assert_string_equal(txn.bank_txn_id, "14123456");
	assert_string_equal(txn.failure_code, "");
	assert_int_equal(txn.bank_time, CREATED + 312);
	assert_true(adapter_matches(&vnpay_adapter, &txn, "ABC12345678", 100000, NULL));
	assert_false(adapter_matches(&vnpay_adapter, &txn, "ABC12345678", 100001, NULL));

	/* The return is the same signed query and gets the same verdict. */
	adapter_inbound in = { .query = q };
	assert_int_equal(adapter_verify_return(&vnpay_adapter, &cfg, &in, &txn), ADAPTER_OK);
	assert_true(txn.success);

	/* Upper-case hex is the same signature. */
	char *upper = strdup(q);
	char *h = strstr(upper, "vnp_SecureHash=") + strlen("vnp_SecureHash=");
	for (; *h; h++)
		if (*h >= 'a' && *h <= 'f')
			*h = (char)(*h - 'a' + 'A');
	assert_int_equal(verify_ipn(upper, &txn), ADAPTER_OK);
	free(upper);
	free(q);
}

static void test_ipn_failure_codes(void **state)
{
	adapter_txn txn;
	char *q = signed_ipn(SECRET, TMN, "10000000", "24", "02");
	assert_int_equal(verify_ipn(q, &txn), ADAPTER_OK);
	assert_false(txn.success);
	assert_int_equal(txn.state, ADAPTER_TXN_FAILED);
	assert_string_equal(txn.failure_code, "24");
	free(q);

	/* ResponseCode 00 alone is not a success. */
	q = signed_ipn(SECRET, TMN, "10000000", "00", "01");
	assert_int_equal(verify_ipn(q, &txn), ADAPTER_OK);
	assert_false(txn.success);
	assert_string_equal(txn.failure_code, "01");
	free(q);
}

static void test_ipn_rejections(void **state)
{
	adapter_txn txn;
	char *q = signed_ipn(SECRET, TMN, "10000000", "00", "00");

	/* Tampered amount. */
	char *t = strdup(q);
	memcpy(strstr(t, "vnp_Amount=1") + strlen("vnp_Amount="), "2", 1);
	assert_int_equal(verify_ipn(t, &txn), ADAPTER_BAD_SIGNATURE);
	free(t);
	/* Tampered signature (last hex digit changed). */
	t = strdup(q);
	char *last = t + strlen(t) - 1;
	*last = *last == '0' ? '1' : '0';
	assert_int_equal(verify_ipn(t, &txn), ADAPTER_BAD_SIGNATURE);
	free(t);
	/* Signature missing. */
	t = strdup(q);
	*strstr(t, "&vnp_SecureHash=") = '\0';
	assert_int_equal(verify_ipn(t, &txn), ADAPTER_BAD_SIGNATURE);
	free(t);
	/* A repeated vnp_ parameter is ambiguous. */
	size_t n = strlen(q) + 32;
	t = malloc(n);
	snprintf(t, n, "%s&vnp_Amount=1", q);
	assert_int_equal(verify_ipn(t, &txn), ADAPTER_MALFORMED);
	free(t);
	/* Extra non-vnp parameters are not signed and do not matter. */
	t = malloc(n);
	snprintf(t, n, "%s&utm=1", q);
	assert_int_equal(verify_ipn(t, &txn), ADAPTER_OK);
	free(t);
	free(q);

	/* Signed with another secret. */
	q = signed_ipn("WRONG", TMN, "10000000", "00", "00");
	assert_int_equal(verify_ipn(q, &txn), ADAPTER_BAD_SIGNATURE);
	free(q);
	/* Authentic but for another merchant. */
	q = signed_ipn(SECRET, "OTHER", "10000000", "00", "00");
	assert_int_equal(verify_ipn(q, &txn), ADAPTER_MISMATCH);
	free(q);
	/* Amount not a whole number of VND. */
	q = signed_ipn(SECRET, TMN, "10000050", "00", "00");
	assert_int_equal(verify_ipn(q, &txn), ADAPTER_MALFORMED);
	free(q);
	/* Signed, but above the largest possible order (100 billion VND, x100). */
	q = signed_ipn(SECRET, TMN, "10000000000100", "00", "00");
	assert_int_equal(verify_ipn(q, &txn), ADAPTER_MALFORMED);
	free(q);
	q = signed_ipn(SECRET, TMN, "10000000000000", "00", "00");
	assert_int_equal(verify_ipn(q, &txn), ADAPTER_OK);
	free(q);
	/* A success without the bank's transaction id cannot be told from another payment. */
	params p;
	params_init(&p);
	assert_true(params_add(&p, "vnp_Amount", "10000000"));
	assert_true(params_add(&p, "vnp_ResponseCode", "00"));
	assert_true(params_add(&p, "vnp_TmnCode", TMN));
	assert_true(params_add(&p, "vnp_TransactionStatus", "00"));
	assert_true(params_add(&p, "vnp_TxnRef", "ABC12345678"));
	q = vnpay_signed_query(SECRET, &p);
	params_free(&p);
	assert_int_equal(verify_ipn(q, &txn), ADAPTER_MALFORMED);
	free(q);
	assert_int_equal(verify_ipn("", &txn), ADAPTER_BAD_SIGNATURE);
}

static void test_ipn_reply_codes(void **state)
{
	static const struct {
		adapter_outcome outcome;
		const char *body;
	} cases[] = {
		{ ADAPTER_APPLIED, "{\"RspCode\":\"00\",\"Message\":\"Confirm Success\"}" },
		{ ADAPTER_REPLAYED, "{\"RspCode\":\"02\",\"Message\":\"Order already confirmed\"}" },
		{ ADAPTER_UNKNOWN_ORDER, "{\"RspCode\":\"01\",\"Message\":\"Order not found\"}" },
		{ ADAPTER_WRONG_AMOUNT, "{\"RspCode\":\"04\",\"Message\":\"Invalid amount\"}" },
		{ ADAPTER_REJECTED, "{\"RspCode\":\"97\",\"Message\":\"Invalid signature\"}" },
		{ ADAPTER_FAILED, "{\"RspCode\":\"99\",\"Message\":\"Unknown error\"}" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		adapter_reply r = adapter_notification_reply(&vnpay_adapter, cases[i].outcome);
		assert_int_equal(r.status, 200);
		assert_string_equal(r.body, cases[i].body);
		assert_int_equal(r.body_len, strlen(cases[i].body));
	}
}

static json_t *request_json(const adapter_request *r)
{
	json_error_t err;
	json_t *obj = json_loadb(r->body, r->body_len, 0, &err);
	assert_non_null(obj);
	return obj;
}

static void test_querydr_request(void **state)
{
	adapter_query q = {
		.request_id = "Q1714530900",
		.bank_order_ref = "ABC12345678",
		.amount = 100000,
		.attempt_created_at = CREATED,
		.now = CREATED + 300,
	};
	adapter_request r;
	assert_int_equal(adapter_build_query(&vnpay_adapter, &cfg, &q, &r), ADAPTER_OK);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.url, "http://127.0.0.1:8090/merchant_webapi/api/transaction");
	assert_string_equal(r.headers[0].value, "application/json");
	json_t *obj = request_json(&r);
	struct strbuf data;
	strbuf_init(&data);
	assert_true(vnpay_api_hash_data(VNPAY_MSG_QUERYDR, obj, &data));
	assert_string_equal(data.data, "Q1714530900|2.1.0|querydr|FEEGATE1|ABC12345678|20240501093000|"
				       "20240501093500|127.0.0.1|Truy van GD ABC12345678");
	strbuf_free(&data);
	assert_int_equal(vnpay_api_verify(SECRET, VNPAY_MSG_QUERYDR, obj), ADAPTER_OK);
	json_object_set_new(obj, "vnp_TxnRef", json_string("OTHER"));
	assert_int_equal(vnpay_api_verify(SECRET, VNPAY_MSG_QUERYDR, obj), ADAPTER_BAD_SIGNATURE);
	json_decref(obj);
	adapter_request_free(&r);

	q.request_id = "has space";
	assert_int_equal(adapter_build_query(&vnpay_adapter, &cfg, &q, &r), ADAPTER_INVALID_INPUT);
	adapter_request_free(&r);
}

static char *signed_response(vnpay_msg kind, const char *command, const char *code,
			     const char *ref, const char *status)
{
	json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
				"vnp_ResponseId", "R1", "vnp_Command", command, "vnp_ResponseCode", code,
				"vnp_Message", "ok", "vnp_TmnCode", TMN, "vnp_TxnRef", ref,
				"vnp_Amount", "10000000", "vnp_BankCode", "NCB", "vnp_PayDate",
				"20240501093512", "vnp_TransactionNo", "14123456",
				"vnp_TransactionType", "01", "vnp_TransactionStatus", status,
				"vnp_OrderInfo", "x");
	char hash[VNPAY_HASH_HEX_SIZE];
	assert_true(vnpay_api_sign(SECRET, kind, obj, hash));
	json_object_set_new(obj, "vnp_SecureHash", json_string(hash));
	char *s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return s;
}

static adapter_rc parse_query(const char *body, int status, adapter_txn *txn)
{
	adapter_query q = { .request_id = "Q1", .bank_order_ref = "ABC12345678", .amount = 100000 };
	adapter_response resp = { .status = status, .body = body, .body_len = strlen(body) };
	return adapter_parse_query_response(&vnpay_adapter, &cfg, &q, &resp, txn);
}

static void test_querydr_response(void **state)
{
	adapter_txn txn;
	char *body = signed_response(VNPAY_MSG_QUERYDR_RESPONSE, "querydr", "00", "ABC12345678", "00");
	assert_int_equal(parse_query(body, 200, &txn), ADAPTER_OK);
	assert_int_equal(txn.state, ADAPTER_TXN_SUCCEEDED);
	assert_int_equal(txn.amount, 100000);
	assert_string_equal(txn.bank_txn_id, "14123456");
	assert_int_equal(parse_query(body, 503, &txn), ADAPTER_UNAVAILABLE);
	/* Tampered status. */
	char *t = strdup(body);
	char *st = strstr(t, "\"vnp_TransactionStatus\":\"00\"");
	assert_non_null(st);
	st[strlen("\"vnp_TransactionStatus\":\"0")] = '2';
	assert_int_equal(parse_query(t, 200, &txn), ADAPTER_BAD_SIGNATURE);
	free(t);
	free(body);

	body = signed_response(VNPAY_MSG_QUERYDR_RESPONSE, "querydr", "00", "ABC12345678", "01");
	assert_int_equal(parse_query(body, 200, &txn), ADAPTER_OK);
	assert_int_equal(txn.state, ADAPTER_TXN_PENDING);
	free(body);

	body = signed_response(VNPAY_MSG_QUERYDR_RESPONSE, "querydr", "00", "ABC12345678", "02");
	assert_int_equal(parse_query(body, 200, &txn), ADAPTER_OK);
	assert_int_equal(txn.state, ADAPTER_TXN_FAILED);
	assert_string_equal(txn.failure_code, "02");
	free(body);

	body = signed_response(VNPAY_MSG_QUERYDR_RESPONSE, "querydr", "91", "ABC12345678", "");
	assert_int_equal(parse_query(body, 200, &txn), ADAPTER_OK);
	assert_int_equal(txn.state, ADAPTER_TXN_NOT_FOUND);
	free(body);

	body = signed_response(VNPAY_MSG_QUERYDR_RESPONSE, "querydr", "00", "ZZZ12345678", "00");
	assert_int_equal(parse_query(body, 200, &txn), ADAPTER_MISMATCH);
	free(body);

	/* A refund answer's field list does not verify as a querydr answer. */
	body = signed_response(VNPAY_MSG_REFUND_RESPONSE, "querydr", "00", "ABC12345678", "00");
	assert_int_equal(parse_query(body, 200, &txn), ADAPTER_BAD_SIGNATURE);
	free(body);
	assert_int_equal(parse_query("not json", 200, &txn), ADAPTER_UNAVAILABLE);
}

static void test_refund_request_and_response(void **state)
{
	adapter_refund r = {
		.refund_ref = "RF0001",
		.bank_order_ref = "ABC12345678",
		.bank_txn_id = "14123456",
		.amount = 40000,
		.paid_amount = 100000,
		.attempt_created_at = CREATED,
		.reason = "Tr\xE1\xBA\xA3 l\xE1\xBA\xA1i",
		.created_by = "finance1",
		.now = CREATED + 3600,
	};
	adapter_request req;
	assert_int_equal(adapter_build_refund(&vnpay_adapter, &cfg, &r, &req), ADAPTER_OK);
	json_t *obj = request_json(&req);
	struct strbuf data;
	strbuf_init(&data);
	assert_true(vnpay_api_hash_data(VNPAY_MSG_REFUND, obj, &data));
	assert_string_equal(data.data, "RF0001|2.1.0|refund|FEEGATE1|03|ABC12345678|4000000|14123456|"
				       "20240501093000|finance1|20240501103000|127.0.0.1|Tra lai");
	strbuf_free(&data);
	assert_int_equal(vnpay_api_verify(SECRET, VNPAY_MSG_REFUND, obj), ADAPTER_OK);
	json_decref(obj);
	adapter_request_free(&req);

	r.amount = 100000;
	assert_int_equal(adapter_build_refund(&vnpay_adapter, &cfg, &r, &req), ADAPTER_OK);
	obj = request_json(&req);
	assert_string_equal(json_string_value(json_object_get(obj, "vnp_TransactionType")), "02");
	json_decref(obj);
	adapter_request_free(&req);

	r.amount = 100001;
	assert_int_equal(adapter_build_refund(&vnpay_adapter, &cfg, &r, &req), ADAPTER_INVALID_INPUT);
	adapter_request_free(&req);
	r.amount = 40000;

	adapter_txn txn;
	char *body = signed_response(VNPAY_MSG_REFUND_RESPONSE, "refund", "00", "ABC12345678", "05");
	adapter_response resp = { .status = 200, .body = body, .body_len = strlen(body) };
	assert_int_equal(adapter_parse_refund_response(&vnpay_adapter, &cfg, &r, &resp, &txn), ADAPTER_OK);
	assert_int_equal(txn.state, ADAPTER_TXN_SUCCEEDED);
	assert_string_equal(txn.bank_txn_id, "14123456");
	free(body);

	body = signed_response(VNPAY_MSG_REFUND_RESPONSE, "refund", "02", "ABC12345678", "");
	resp.body = body;
	resp.body_len = strlen(body);
	assert_int_equal(adapter_parse_refund_response(&vnpay_adapter, &cfg, &r, &resp, &txn), ADAPTER_OK);
	assert_int_equal(txn.state, ADAPTER_TXN_FAILED);
	assert_string_equal(txn.failure_code, "02");
	free(body);

	/* Signed over the querydr list: not a valid refund answer. */
	body = signed_response(VNPAY_MSG_QUERYDR_RESPONSE, "refund", "00", "ABC12345678", "05");
	resp.body = body;
	resp.body_len = strlen(body);
	assert_int_equal(adapter_parse_refund_response(&vnpay_adapter, &cfg, &r, &resp, &txn),
			 ADAPTER_BAD_SIGNATURE);
	free(body);
}

static bool collect(void *ctx, const adapter_settlement_line *line)
{
	adapter_settlement_line *lines = ctx;
	size_t i = 0;
	while (lines[i].line_no)
		i++;
	lines[i] = *line;
	return true;
}

static void test_settlement(void **state)
{
	const char *file = "\xEF\xBB\xBF" VNPAY_SETTLEMENT_HEADER "\r\n"
			   "FEEGATE1,01,ABC12345678,14123456,,,10000000,110000,20240501093512\r\n"
			   "FEEGATE1,03,ABC12345678,14123456,RF0001,14123999,4000000,0,20240501110000\r\n"
			   "TOTAL,20240501,2,140000\r\n";
	adapter_settlement_line lines[4];
	memset(lines, 0, sizeof(lines));
	adapter_error err;
	adapter_settlement_summary sum;
	assert_int_equal(adapter_parse_settlement(&vnpay_adapter, &cfg, file, strlen(file), collect,
						  lines, &sum, &err),
			 ADAPTER_OK);
	assert_string_equal(sum.business_day, "20240501");
	assert_int_equal(sum.lines, 2);
	assert_int_equal(sum.total, 140000);
	assert_int_equal(lines[0].kind, ADAPTER_SETTLE_PAYMENT);
	assert_int_equal(lines[0].amount, 100000);
	assert_int_equal(lines[0].fee, 1100);
	assert_int_equal(lines[0].at, CREATED + 312);
	assert_int_equal(lines[1].kind, ADAPTER_SETTLE_REFUND);
	assert_string_equal(lines[1].refund_ref, "RF0001");
	assert_string_equal(lines[1].refund_txn_id, "14123999");
	assert_int_equal(lines[1].line_no, 3);
	assert_int_equal(lines[2].line_no, 0);

	const char *bad = VNPAY_SETTLEMENT_HEADER "\n"
			  "FEEGATE1,01,ABC12345678,14123456,,,10000000,0,20240501093512\n"
			  "FEEGATE1,01,ABC12345679,14123457,,,100000x0,0,20240501093512\n"
			  "TOTAL,20240501,2,200000\n";
	memset(lines, 0, sizeof(lines));
	assert_int_equal(adapter_parse_settlement(&vnpay_adapter, &cfg, bad, strlen(bad), collect,
						  lines, &sum, &err),
			 ADAPTER_MALFORMED);
	assert_int_equal(err.line, 3);
	assert_string_equal(err.message, "bad Amount");
	assert_int_equal(adapter_parse_settlement(&vnpay_adapter, &cfg, "a,b\n", 4, collect, lines, &sum, &err),
			 ADAPTER_MALFORMED);
	assert_int_equal(err.line, 1);

	/* lines that disagree with the file's own trailer: refused whole, no line handed on */
	const char *short_file = VNPAY_SETTLEMENT_HEADER "\n"
				 "FEEGATE1,01,ABC12345678,14123456,,,10000000,0,20240501093512\n"
				 "TOTAL,20240501,2,200000\n";
	memset(lines, 0, sizeof(lines));
	assert_int_equal(adapter_parse_settlement(&vnpay_adapter, &cfg, short_file, strlen(short_file), collect,
						  lines, &sum, &err),
			 ADAPTER_MALFORMED);
	assert_int_equal(err.line, 3);
	assert_int_equal(lines[0].line_no, 0);
	/* no trailer at all */
	const char *bare = VNPAY_SETTLEMENT_HEADER "\n"
			   "FEEGATE1,01,ABC12345678,14123456,,,10000000,0,20240501093512\n";
	assert_int_equal(adapter_parse_settlement(&vnpay_adapter, &cfg, bare, strlen(bare), collect, lines, &sum, &err),
			 ADAPTER_MALFORMED);
	assert_int_equal(err.line, 2);
}

static void test_dates(void **state)
{
	char d[15];
	vnpay_format_date(0, d);
	assert_string_equal(d, "19700101070000");
	time_t t;
	assert_true(adapter_parse_vn_compact("20240501093000", &t));
	assert_int_equal(t, CREATED);
	assert_false(adapter_parse_vn_compact("20240231093000", &t));
	assert_false(adapter_parse_vn_compact("2024050109300", &t));
}

static void test_registry(void **state)
{
	assert_ptr_equal(adapter_find("vnpay"), &vnpay_adapter);
	assert_null(adapter_find("VNPAY"));
	assert_null(adapter_find(NULL));
	assert_true(adapter_count() >= 3);
	for (size_t i = 0; i < adapter_count(); i++)
		assert_ptr_equal(adapter_find(adapter_at(i)->name), adapter_at(i));
	/* the choices the routes offer are the table's names */
	char names[128];
	adapter_names("|", names, sizeof names);
	assert_string_equal(ADAPTER_CHOICES, names);
	assert_true(adapter_transfer() && adapter_transfer()->transfer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urlencode_edge_cases),
		cmocka_unit_test(test_urldecode),
		cmocka_unit_test(test_hash_data_selects_and_sorts),
		cmocka_unit_test(test_redirect_known_answer),
		cmocka_unit_test(test_redirect_round_trip_and_tamper),
		cmocka_unit_test(test_order_info_sanitized),
		cmocka_unit_test(test_ipn_success),
		cmocka_unit_test(test_ipn_failure_codes),
		cmocka_unit_test(test_ipn_rejections),
		cmocka_unit_test(test_ipn_reply_codes),
		cmocka_unit_test(test_querydr_request),
		cmocka_unit_test(test_querydr_response),
		cmocka_unit_test(test_refund_request_and_response),
		cmocka_unit_test(test_settlement),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_registry),
	};
	return cmocka_run_group_tests_name("vnpay", tests, NULL, NULL);
}
