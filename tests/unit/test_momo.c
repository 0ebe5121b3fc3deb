#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/momo.h"

#define SECRET "momosecret"
#define ACCESS "AK"
#define PARTNER "MOMOTEST"
#define CREATED ((time_t)1714530600)

static const adapter_config cfg = {
	.bank_url = "http://127.0.0.1:8090",
	.merchant_id = PARTNER,
	.access_key = ACCESS,
	.secret = SECRET,
	.ipn_url = "http://127.0.0.1:8080/ipn/momo",
	.return_url = "http://127.0.0.1:8080/return/momo",
};

static adapter_payment sample_payment(void)
{
	adapter_payment p = {
		.bank_order_ref = "ORD12345678",
		.amount = 50000,
		.description = "L\xE1\xBB\x87 ph\xC3\xAD h\xE1\xBB\x99 chi\xE1\xBA\xBFu",
		.client_ip = "127.0.0.1",
		.created_at = CREATED,
		.expires_at = CREATED + 900,
	};
	return p;
}

static json_t *parse(const char *body, size_t len)
{
	json_error_t err;
	json_t *obj = json_loadb(body, len, 0, &err);
	assert_non_null(obj);
	return obj;
}

static char *dump_signed(json_t *obj, momo_msg kind, const char *secret)
{
	char sig[MOMO_SIG_HEX_SIZE];
	assert_true(momo_sign(secret, ACCESS, kind, obj, sig));
	json_object_set_new(obj, "signature", json_string(sig));
	char *s = json_dumps(obj, JSON_COMPACT);
	assert_non_null(s);
	return s;
}

/* Expected digest computed with Python's hmac from the documented key order (docs/openapi.yaml). */
static void test_create_request_known_answer(void **state)
{
	adapter_payment p = sample_payment();
	adapter_start s;
	assert_int_equal(adapter_start_payment(&momo_adapter, &cfg, &p, &s), ADAPTER_OK);
	assert_int_equal(s.kind, ADAPTER_START_CALL);
	assert_string_equal(s.call.method, "POST");
	assert_string_equal(s.call.url, "http://127.0.0.1:8090/v2/gateway/api/create");
	json_t *obj = parse(s.call.body, s.call.body_len);
	assert_string_equal(json_string_value(json_object_get(obj, "requestType")), "captureWallet");
	assert_int_equal(json_integer_value(json_object_get(obj, "amount")), 50000);
	assert_string_equal(json_string_value(json_object_get(obj, "requestId")), "ORD12345678");
	assert_string_equal(json_string_value(json_object_get(obj, "signature")),
			    "c5e3791d5cdbdbd3a0047636615c558fb92a1342aec90369a6d91074fa7846a5");
	assert_int_equal(momo_verify(SECRET, ACCESS, MOMO_MSG_CREATE, obj), ADAPTER_OK);
	assert_int_equal(momo_verify(SECRET, "other", MOMO_MSG_CREATE, obj), ADAPTER_BAD_SIGNATURE);
	json_object_set_new(obj, "amount", json_integer(50001));
	assert_int_equal(momo_verify(SECRET, ACCESS, MOMO_MSG_CREATE, obj), ADAPTER_BAD_SIGNATURE);
	json_decref(obj);
	adapter_start_free(&s);
}

static void test_query_signature_known_answer(void **state)
{
	adapter_query q = { .request_id = "ORD12345678", .bank_order_ref = "ORD12345678" };
	adapter_request r;
	assert_int_equal(adapter_build_query(&momo_adapter, &cfg, &q, &r), ADAPTER_OK);
	assert_string_equal(r.url, "http://127.0.0.1:8090/v2/gateway/api/query");
	json_t *obj = parse(r.body, r.body_len);
	struct strbuf data;
	strbuf_init(&data);
	assert_true(momo_signature_data(MOMO_MSG_QUERY, ACCESS, obj, &data));
	assert_string_equal(data.data, "accessKey=AK&orderId=ORD12345678&partnerCode=MOMOTEST&requestId=ORD12345678");
	strbuf_free(&data);
	assert_string_equal(json_string_value(json_object_get(obj, "signature")),
			    "726992c509275c485716c9edc518e75c0a44b422da850033825381d19a7929e4");
	json_decref(obj);
	adapter_request_free(&r);
}

static json_t *create_answer(int code, const char *order_id, int64_t amount)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:i, s:s}", "partnerCode", PARTNER,
			 "requestId", order_id, "orderId", order_id, "amount", (json_int_t)amount,
			 "responseTime", (json_int_t)1714530601000LL, "message", "Thanh cong",
			 "resultCode", code, "payUrl",
			 code == 0 ? "http://127.0.0.1:8090/momo/pay?orderId=ORD12345678" : "");
}

static adapter_rc parse_create(json_t *answer, const char *secret, int status, adapter_start *s)
{
	adapter_payment p = sample_payment();
	char *body = dump_signed(answer, MOMO_MSG_CREATE_RESPONSE, secret);
	adapter_response resp = { .status = status, .body = body, .body_len = strlen(body) };
	memset(s, 0, sizeof(*s));
	adapter_rc rc = adapter_parse_start_response(&momo_adapter, &cfg, &p, &resp, s);
	free(body);
	json_decref(answer);
	return rc;
}

static void test_create_response(void **state)
{
	adapter_start s;
	assert_int_equal(parse_create(create_answer(0, "ORD12345678", 50000), SECRET, 200, &s), ADAPTER_OK);
	assert_string_equal(s.redirect_url, "http://127.0.0.1:8090/momo/pay?orderId=ORD12345678");
	adapter_start_free(&s);

	assert_int_equal(parse_create(create_answer(0, "ORD12345678", 50000), "wrong", 200, &s),
			 ADAPTER_BAD_SIGNATURE);
	assert_null(s.redirect_url);
	assert_int_equal(parse_create(create_answer(0, "ORD99999999", 50000), SECRET, 200, &s),
			 ADAPTER_MISMATCH);
	assert_int_equal(parse_create(create_answer(0, "ORD12345678", 50001), SECRET, 200, &s),
			 ADAPTER_MISMATCH);
	assert_int_equal(parse_create(create_answer(41, "ORD12345678", 50000), SECRET, 400, &s),
			 ADAPTER_DECLINED);
	assert_string_equal(s.failure_code, "41");
	adapter_start_free(&s);

	adapter_payment p = sample_payment();
	adapter_response resp = { .status = 502, .body = "<html>", .body_len = 6 };
	assert_int_equal(adapter_parse_start_response(&momo_adapter, &cfg, &p, &resp, &s), ADAPTER_UNAVAILABLE);
	adapter_start_free(&s);
}

static json_t *ipn(int code, int64_t amount)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:i, s:s, s:s, s:I, s:s}",
			 "partnerCode", PARTNER, "orderId", "ORD12345678", "requestId", "ORD12345678",
			 "amount", (json_int_t)amount, "orderInfo", "L\xE1\xBB\x87 ph\xC3\xAD",
			 "orderType", "momo_wallet", "transId", (json_int_t)4088878653LL,
			 "resultCode", code, "message", "Thanh cong.", "payType", "qr",
			 "responseTime", (json_int_t)1714530612000LL, "extraData", "");
}

static adapter_rc verify_ipn_body(const char *body, adapter_txn *txn)
{
	adapter_inbound in = { .body = body, .body_len = strlen(body) };
	return adapter_verify_notification(&momo_adapter, &cfg, &in, txn);
}

static void test_ipn(void **state)
{
	adapter_txn txn;
	json_t *obj = ipn(0, 50000);
	char *body = dump_signed(obj, MOMO_MSG_IPN, SECRET);
	assert_int_equal(verify_ipn_body(body, &txn), ADAPTER_OK);
	assert_true(txn.success);
	assert_string_equal(txn.bank_order_ref, "ORD12345678");
	assert_string_equal(txn.bank_txn_id, "4088878653");
	assert_int_equal(txn.amount, 50000);
	assert_int_equal(txn.bank_time, 1714530612);
	free(body);

	/* Tampered amount after signing. */
	json_object_set_new(obj, "amount", json_integer(5000));
	body = json_dumps(obj, JSON_COMPACT);
	assert_int_equal(verify_ipn_body(body, &txn), ADAPTER_BAD_SIGNATURE);
	free(body);
	json_decref(obj);

	obj = ipn(1006, 50000);
	body = dump_signed(obj, MOMO_MSG_IPN, SECRET);
	assert_int_equal(verify_ipn_body(body, &txn), ADAPTER_OK);
	assert_false(txn.success);
	assert_int_equal(txn.state, ADAPTER_TXN_FAILED);
	assert_string_equal(txn.failure_code, "1006");
	free(body);
	json_decref(obj);

	obj = ipn(0, 50000);
	json_object_set_new(obj, "partnerCode", json_string("SOMEONE"));
	body = dump_signed(obj, MOMO_MSG_IPN, SECRET);
	assert_int_equal(verify_ipn_body(body, &txn), ADAPTER_MISMATCH);
	free(body);
	json_decref(obj);

	obj = ipn(0, 50000);
	body = dump_signed(obj, MOMO_MSG_IPN, "wrong");
	assert_int_equal(verify_ipn_body(body, &txn), ADAPTER_BAD_SIGNATURE);
	free(body);
	json_decref(obj);

	/* Signed, but above the largest possible order: malformed, success or not. */
	for (int code = 0; code <= 1006; code += 1006) {
		obj = ipn(code, 100000000001LL);
		body = dump_signed(obj, MOMO_MSG_IPN, SECRET);
		assert_int_equal(verify_ipn_body(body, &txn), ADAPTER_MALFORMED);
		free(body);
		json_decref(obj);
	}

	assert_int_equal(verify_ipn_body("{\"a\":1,\"a\":2}", &txn), ADAPTER_MALFORMED);
	assert_int_equal(verify_ipn_body("[]", &txn), ADAPTER_MALFORMED);
	assert_int_equal(verify_ipn_body("{}", &txn), ADAPTER_BAD_SIGNATURE);
}

static void test_return_query_string(void **state)
{
	json_t *obj = ipn(0, 50000);
	char sig[MOMO_SIG_HEX_SIZE];
	assert_true(momo_sign(SECRET, ACCESS, MOMO_MSG_IPN, obj, sig));
	char query[1024];
	snprintf(query, sizeof(query),
		 "partnerCode=MOMOTEST&orderId=ORD12345678&requestId=ORD12345678&amount=50000"
		 "&orderInfo=L%%E1%%BB%%87+ph%%C3%%AD&orderType=momo_wallet&transId=4088878653"
		 "&resultCode=0&message=Thanh+cong.&payType=qr&responseTime=1714530612000"
		 "&extraData=&signature=%s",
		 sig);
	adapter_inbound in = { .query = query };
	adapter_txn txn;
	assert_int_equal(adapter_verify_return(&momo_adapter, &cfg, &in, &txn), ADAPTER_OK);
	assert_true(txn.success);
	assert_int_equal(txn.amount, 50000);
	char *t = strstr(query, "amount=50000");
	t[strlen("amount=5")] = '1';
	assert_int_equal(adapter_verify_return(&momo_adapter, &cfg, &in, &txn), ADAPTER_BAD_SIGNATURE);
	json_decref(obj);
}

static void test_ipn_reply(void **state)
{
	adapter_reply r = adapter_notification_reply(&momo_adapter, ADAPTER_APPLIED);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.body_len, 0);
	assert_int_equal(adapter_notification_reply(&momo_adapter, ADAPTER_REPLAYED).status, 204);
	assert_int_equal(adapter_notification_reply(&momo_adapter, ADAPTER_REJECTED).status, 401);
	assert_int_equal(adapter_notification_reply(&momo_adapter, ADAPTER_WRONG_AMOUNT).status, 400);
}

static void test_query_response(void **state)
{
	adapter_query q = { .request_id = "Q1", .bank_order_ref = "ORD12345678" };
	adapter_txn txn;
	static const struct {
		int code;
		adapter_txn_state want;
	} cases[] = {
		{ 0, ADAPTER_TXN_SUCCEEDED },
		{ 1000, ADAPTER_TXN_PENDING },
		{ 1005, ADAPTER_TXN_FAILED },
		{ 42, ADAPTER_TXN_NOT_FOUND },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *obj = ipn(cases[i].code, 50000);
		char *body = dump_signed(obj, MOMO_MSG_QUERY_RESPONSE, SECRET);
		adapter_response resp = { .status = 200, .body = body, .body_len = strlen(body) };
		assert_int_equal(adapter_parse_query_response(&momo_adapter, &cfg, &q, &resp, &txn), ADAPTER_OK);
		assert_int_equal(txn.state, cases[i].want);
		free(body);
		json_decref(obj);
	}
	json_t *obj = ipn(0, 50000);
	char *body = dump_signed(obj, MOMO_MSG_QUERY_RESPONSE, "wrong");
	adapter_response resp = { .status = 200, .body = body, .body_len = strlen(body) };
	assert_int_equal(adapter_parse_query_response(&momo_adapter, &cfg, &q, &resp, &txn),
			 ADAPTER_BAD_SIGNATURE);
	free(body);
	json_decref(obj);
}

static void test_refund(void **state)
{
	adapter_refund r = {
		.refund_ref = "RF0001",
		.bank_order_ref = "ORD12345678",
		.bank_txn_id = "4088878653",
		.amount = 20000,
		.paid_amount = 50000,
		.reason = "Ho so bi tra lai",
	};
	adapter_request req;
	assert_int_equal(adapter_build_refund(&momo_adapter, &cfg, &r, &req), ADAPTER_OK);
	assert_string_equal(req.url, "http://127.0.0.1:8090/v2/gateway/api/refund");
	json_t *obj = parse(req.body, req.body_len);
	struct strbuf data;
	strbuf_init(&data);
	assert_true(momo_signature_data(MOMO_MSG_REFUND, ACCESS, obj, &data));
	assert_string_equal(data.data, "accessKey=AK&amount=20000&description=Ho so bi tra lai"
				       "&orderId=RF0001&partnerCode=MOMOTEST&requestId=RF0001&transId=4088878653");
	strbuf_free(&data);
	assert_int_equal(momo_verify(SECRET, ACCESS, MOMO_MSG_REFUND, obj), ADAPTER_OK);
	json_decref(obj);
	adapter_request_free(&req);

	r.bank_txn_id = "not-a-number";
	assert_int_equal(adapter_build_refund(&momo_adapter, &cfg, &r, &req), ADAPTER_INVALID_INPUT);
	adapter_request_free(&req);
	r.bank_txn_id = "4088878653";

	obj = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:s, s:I}", "partnerCode", PARTNER,
			"orderId", "RF0001", "requestId", "RF0001", "amount", (json_int_t)20000,
			"transId", (json_int_t)4088879999LL, "resultCode", 0, "message", "ok",
			"responseTime", (json_int_t)1714534200000LL);
	char *body = dump_signed(obj, MOMO_MSG_REFUND_RESPONSE, SECRET);
	adapter_response resp = { .status = 200, .body = body, .body_len = strlen(body) };
	adapter_txn txn;
	assert_int_equal(adapter_parse_refund_response(&momo_adapter, &cfg, &r, &resp, &txn), ADAPTER_OK);
	assert_int_equal(txn.state, ADAPTER_TXN_SUCCEEDED);
	assert_string_equal(txn.bank_txn_id, "4088879999");
	assert_int_equal(txn.amount, 20000);
	free(body);

	json_object_set_new(obj, "resultCode", json_integer(1081));
	json_object_del(obj, "signature");
	body = dump_signed(obj, MOMO_MSG_REFUND_RESPONSE, SECRET);
	resp.body = body;
	resp.body_len = strlen(body);
	assert_int_equal(adapter_parse_refund_response(&momo_adapter, &cfg, &r, &resp, &txn), ADAPTER_OK);
	assert_int_equal(txn.state, ADAPTER_TXN_FAILED);
	assert_string_equal(txn.failure_code, "1081");
	free(body);
	json_decref(obj);
}

static bool count_lines(void *ctx, const adapter_settlement_line *line)
{
	(*(int *)ctx)++;
	return true;
}

static void test_settlement(void **state)
{
	const char *file = MOMO_SETTLEMENT_HEADER "\n"
			   "MOMOTEST,payment,ORD12345678,4088878653,,,50000,500,1714530612000\n"
			   "MOMOTEST,refund,ORD12345678,4088878653,RF0001,4088879999,20000,0,1714534200000\n"
			   "TOTAL,20240501,2,70000\n";
	int n = 0;
	adapter_error err;
	adapter_settlement_summary sum;
	assert_int_equal(adapter_parse_settlement(&momo_adapter, &cfg, file, strlen(file), count_lines, &n, &sum, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 2);
	const char *bad = MOMO_SETTLEMENT_HEADER "\n"
			  "MOMOTEST,refund,ORD12345678,4088878653,,,20000,0,1714534200000\n"
			  "TOTAL,20240501,1,20000\n";
	assert_int_equal(adapter_parse_settlement(&momo_adapter, &cfg, bad, strlen(bad), count_lines, &n, &sum, &err),
			 ADAPTER_MALFORMED);
	assert_int_equal(err.line, 2);

	/* one pass: the lines are handed on as read, the trailer is checked after them */
	n = 0;
	assert_int_equal(adapter_stream_settlement(&momo_adapter, &cfg, file, strlen(file), count_lines, &n, &sum, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 2);
	assert_string_equal(sum.business_day, "20240501");
	const char *short_total = MOMO_SETTLEMENT_HEADER "\n"
				  "MOMOTEST,payment,ORD12345678,4088878653,,,50000,500,1714530612000\n"
				  "TOTAL,20240501,2,50000\n";
	n = 0;
	assert_int_equal(adapter_stream_settlement(&momo_adapter, &cfg, short_total, strlen(short_total), count_lines, &n,
						   &sum, &err),
			 ADAPTER_MALFORMED);
	assert_int_equal(n, 1);
	assert_int_equal(err.line, 3);
	n = 0;
	assert_int_equal(adapter_parse_settlement(&momo_adapter, &cfg, short_total, strlen(short_total), count_lines, &n,
						  &sum, &err),
			 ADAPTER_MALFORMED);
	assert_int_equal(n, 0); /* two passes: nothing before the whole file is checked */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_request_known_answer),
		cmocka_unit_test(test_query_signature_known_answer),
		cmocka_unit_test(test_create_response),
		cmocka_unit_test(test_ipn),
		cmocka_unit_test(test_return_query_string),
		cmocka_unit_test(test_ipn_reply),
		cmocka_unit_test(test_query_response),
		cmocka_unit_test(test_refund),
		cmocka_unit_test(test_settlement),
	};
	return cmocka_run_group_tests_name("momo", tests, NULL, NULL);
}
