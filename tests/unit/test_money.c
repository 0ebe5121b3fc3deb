/* Amount formatting, attempt references, the ledger hash rule, circuit breakers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "ledger/check.h"
#include "lib/breaker.h"

static void test_format_vnd(void **state)
{
	char out[48];
	format_vnd(200000, out, sizeof out);
	assert_string_equal(out, "200.000 \xe2\x82\xab");
	format_vnd(1, out, sizeof out);
	assert_string_equal(out, "1 \xe2\x82\xab");
	format_vnd(1000, out, sizeof out);
	assert_string_equal(out, "1.000 \xe2\x82\xab");
	format_vnd(100000000000LL, out, sizeof out);
	assert_string_equal(out, "100.000.000.000 \xe2\x82\xab");
	format_vnd(999, out, sizeof out);
	assert_string_equal(out, "999 \xe2\x82\xab");
}

static void test_attempt_ref(void **state)
{
	char a[13], b[13];
	checkout_new_ref(a);
	checkout_new_ref(b);
	assert_int_equal(strlen(a), 12);
	assert_memory_equal(a, "FG", 2);
	for (int i = 0; i < 12; i++)
		assert_true((a[i] >= 'A' && a[i] <= 'Z') || (a[i] >= '0' && a[i] <= '9'));
	assert_string_not_equal(a, b);
}

static void test_transfer_hash(void **state)
{
	/* The rule: sha256 over the fields joined with '|'; absent ids are empty. The expected digest
	 * was computed outside this code: Python's hashlib.sha256 of
	 * "0"*64 + "|pay:a|1|3|6|200000|payment|o|a|". */
	char h[65];
	ledger_transfer_hash(LEDGER_GENESIS_HASH, "pay:a", 1, 3, 6, 200000, "payment", "o", "a", "", h);
	assert_string_equal(h, "320288a0404d3fc5928635a1da2344a43b7cdede1e057c0339daa452e2df0090");
	/* any field change changes the hash */
	char h2[65];
	ledger_transfer_hash(LEDGER_GENESIS_HASH, "pay:a", 1, 3, 6, 200001, "payment", "o", "a", "", h2);
	assert_string_not_equal(h, h2);
	ledger_transfer_hash(h, "pay:a", 1, 3, 6, 200000, "payment", "o", "a", "", h2);
	assert_string_not_equal(h, h2);
}

static void test_breaker(void **state)
{
	assert_true(breaker_init(3, 200));
	assert_true(breaker_allow("momo"));
	breaker_record("momo", false);
	breaker_record("momo", false);
	assert_false(breaker_is_open("momo"));
	breaker_record("momo", false);
	assert_true(breaker_is_open("momo"));
	assert_false(breaker_allow("momo"));
	assert_false(breaker_is_open("vnpay")); /* banks are independent */
	usleep(250000);
	assert_false(breaker_is_open("momo"));
	assert_true(breaker_allow("momo"));  /* the one trial */
	assert_false(breaker_allow("momo")); /* no second trial while the first runs */
	breaker_record("momo", false);       /* trial failed: open again */
	assert_true(breaker_is_open("momo"));
	usleep(250000);
	assert_true(breaker_allow("momo"));
	breaker_record("momo", true); /* trial succeeded: closed */
	assert_false(breaker_is_open("momo"));
	assert_true(breaker_allow("momo"));
	assert_true(breaker_allow("momo"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_vnd),
		cmocka_unit_test(test_attempt_ref),
		cmocka_unit_test(test_transfer_hash),
		cmocka_unit_test(test_breaker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
