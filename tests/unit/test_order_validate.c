/* Field rules of POST /v1/orders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "gateway/order_validate.h"

static const char *base =
	"{\"reference\":\"HS-1\",\"agency\":\"XNC\",\"description\":\"L\xe1\xbb\x87 ph\xc3\xad\",\"amount\":200000,"
	"\"return_url\":\"https://portal.example/r\"}";

static json_t *with(const char *key, json_t *value)
{
	json_t *o = json_loads(base, 0, NULL);
	if (value)
		json_object_set_new(o, key, value);
	else
		json_object_del(o, key);
	return o;
}

static void expect_field(json_t *body, const char *field)
{
	struct order_input in;
	struct validation_error e;
	assert_false(order_validate(body, &in, &e));
	assert_int_equal(e.err, ERR_VALIDATION);
	assert_string_equal(e.field, field);
	assert_true(strlen(e.message) > 0);
	json_decref(body);
}

static void expect_ok(json_t *body)
{
	struct order_input in;
	struct validation_error e;
	bool ok = order_validate(body, &in, &e);
	if (!ok)
		fprintf(stderr, "unexpected: %s %s\n", e.field, e.message);
	assert_true(ok);
	json_decref(body);
}

static char *repeat(const char *unit, int n)
{
	size_t len = strlen(unit);
	char *s = malloc(len * (size_t)n + 1);
	for (int i = 0; i < n; i++)
		memcpy(s + len * (size_t)i, unit, len);
	s[len * (size_t)n] = '\0';
	return s;
}

static void test_valid_minimal(void **state)
{
	json_t *o = json_loads(base, 0, NULL);
	struct order_input in;
	struct validation_error e;
	assert_true(order_validate(o, &in, &e));
	assert_string_equal(in.reference, "HS-1");
	assert_int_equal(in.amount, 200000);
	assert_int_equal(in.expires_in, 900);
	assert_null(in.items);
	json_decref(o);
}

static void test_reference(void **state)
{
	expect_field(with("reference", NULL), "reference");
	expect_field(with("reference", json_string("")), "reference");
	expect_field(with("reference", json_integer(5)), "reference");
	char *s = repeat("a", 65);
	expect_field(with("reference", json_string(s)), "reference");
	free(s);
	/* 64 Vietnamese characters are 64, not 128 or 192 bytes' worth */
	s = repeat("\xe1\xbb\x87", 64);
	expect_ok(with("reference", json_string(s)));
	free(s);
	expect_field(with("reference", json_string("a\nb")), "reference");
}

static void test_description(void **state)
{
	char *s = repeat("\xc3\xa2", 255);
	expect_ok(with("description", json_string(s)));
	free(s);
	s = repeat("x", 256);
	expect_field(with("description", json_string(s)), "description");
	free(s);
	expect_field(with("description", NULL), "description");
}

static void test_amount(void **state)
{
	expect_field(with("amount", json_integer(0)), "amount");
	expect_field(with("amount", json_integer(-5)), "amount");
	expect_field(with("amount", json_integer(100000000001LL)), "amount");
	expect_ok(with("amount", json_integer(100000000000LL)));
	expect_ok(with("amount", json_integer(1)));
	expect_field(with("amount", json_real(1.5)), "amount");
	expect_field(with("amount", json_real(100.0)), "amount");
	expect_field(with("amount", json_string("100")), "amount");
	expect_field(with("amount", NULL), "amount");
}

static void test_currency(void **state)
{
	expect_ok(with("currency", json_string("VND")));
	expect_field(with("currency", json_string("USD")), "currency");
	expect_field(with("currency", json_integer(704)), "currency");
}

static void test_items(void **state)
{
	expect_ok(with("items", json_pack("[{s:s,s:s,s:I},{s:s,s:s,s:I}]", "code", "A", "name", "Ph\xc3\xad", "amount",
					  (json_int_t)150000, "code", "B", "name", "In", "amount", (json_int_t)50000)));
	expect_field(with("items", json_pack("[{s:s,s:s,s:I}]", "code", "A", "name", "x", "amount", (json_int_t)1)),
		     "items");
	expect_field(with("items", json_pack("[{s:s,s:I}]", "code", "A", "amount", (json_int_t)200000)), "items");
	expect_field(with("items", json_pack("[{s:s,s:s,s:f}]", "code", "A", "name", "x", "amount", 200000.0)), "items");
	expect_field(with("items", json_string("x")), "items");
	expect_field(with("items", json_array()), "items");
}

static void test_return_url(void **state)
{
	expect_field(with("return_url", json_string("/relative")), "return_url");
	expect_field(with("return_url", json_string("ftp://x.example/")), "return_url");
	expect_field(with("return_url", json_string("https://")), "return_url");
	expect_field(with("return_url", json_string("https://a b.example/")), "return_url");
	expect_ok(with("return_url", json_string("http://portal.example:8080/r?x=1")));
	char *tail = repeat("a", 2000 - 20);
	char url[2100];
	snprintf(url, sizeof url, "https://p.example/%s", tail);
	expect_ok(with("return_url", json_string(url))); /* 1998 characters */
	snprintf(url, sizeof url, "https://p.example/%saaa", tail);
	expect_field(with("return_url", json_string(url)), "return_url"); /* 2001 */
	free(tail);
}

static void test_expires_in(void **state)
{
	expect_field(with("expires_in", json_integer(59)), "expires_in");
	expect_field(with("expires_in", json_integer(86401)), "expires_in");
	expect_ok(with("expires_in", json_integer(60)));
	expect_ok(with("expires_in", json_integer(86400)));
	expect_field(with("expires_in", json_string("900")), "expires_in");
}

static void test_metadata(void **state)
{
	json_t *md = json_object();
	for (int i = 0; i < 10; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		json_object_set_new(md, k, json_integer(i));
	}
	expect_ok(with("metadata", json_deep_copy(md)));
	json_object_set_new(md, "k10", json_true());
	expect_field(with("metadata", md), "metadata");
	expect_field(with("metadata", json_pack("{s:{s:i}}", "a", "b", 1)), "metadata");
	expect_field(with("metadata", json_pack("{s:[]}", "a")), "metadata");
	expect_field(with("metadata", json_pack("{s:n}", "a")), "metadata");
	expect_field(with("metadata", json_string("x")), "metadata");
	expect_ok(with("metadata", json_pack("{s:s,s:f,s:b}", "a", "x", "b", 1.5, "c", 1)));
}

static void test_payer(void **state)
{
	expect_ok(with("payer", json_pack("{s:s,s:s,s:s,s:s}", "name", "Nguy\xe1\xbb\x85n V\xc4\x83n A", "id_number",
					  "001099012345", "email", "a@b.vn", "phone", "+84 912345678")));
	expect_field(with("payer", json_pack("{s:s}", "email", "not-an-email")), "payer");
	expect_field(with("payer", json_pack("{s:s}", "phone", "abc")), "payer");
	expect_field(with("payer", json_pack("{s:s}", "nickname", "x")), "payer");
	expect_field(with("payer", json_integer(1)), "payer");
}

static void test_unknown_and_shape(void **state)
{
	expect_field(with("surprise", json_true()), "surprise");
	struct order_input in;
	struct validation_error e;
	json_t *arr = json_array();
	assert_false(order_validate(arr, &in, &e));
	assert_string_equal(e.field, "");
	json_decref(arr);
}

static void test_idempotency_key(void **state)
{
	assert_true(idempotency_key_valid("k"));
	assert_true(idempotency_key_valid("order-2026-11-27 #1"));
	assert_false(idempotency_key_valid(""));
	assert_false(idempotency_key_valid("\xc3\xa2"));
	assert_false(idempotency_key_valid("a\tb"));
	char *s = repeat("k", 255);
	assert_true(idempotency_key_valid(s));
	free(s);
	s = repeat("k", 256);
	assert_false(idempotency_key_valid(s));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_minimal), cmocka_unit_test(test_reference),
		cmocka_unit_test(test_description),   cmocka_unit_test(test_amount),
		cmocka_unit_test(test_currency),      cmocka_unit_test(test_items),
		cmocka_unit_test(test_return_url),    cmocka_unit_test(test_expires_in),
		cmocka_unit_test(test_metadata),      cmocka_unit_test(test_payer),
		cmocka_unit_test(test_unknown_and_shape), cmocka_unit_test(test_idempotency_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
