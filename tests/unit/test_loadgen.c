/*
 * tests/bench/hist.c: the load generator's latency histogram and its percentiles.
 * tests/bench/vnpay_ipn.c: the flow scenario's signed VNPAY IPNs, byte for byte what
 * tests/bench/vnpay_ipn.py prints, and accepted by the gateway's own verifier.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/params.h"
#include "adapters/vnpay.h"
#include "tests/bench/hist.c"
#include "tests/bench/vnpay_ipn.c"

static struct hist *new_hist(void)
{
	struct hist *h = malloc(sizeof *h);
	assert_non_null(h);
	hist_reset(h);
	return h;
}

static void test_empty(void **state)
{
	struct hist *h = new_hist();
	assert_int_equal(h->total, 0);
	assert_int_equal(hist_percentile(h, 50), 0);
	assert_int_equal(hist_percentile(h, 99.9), 0);
	assert_true(hist_mean(h) == 0);
	free(h);
}

static void test_small_values_are_exact(void **state)
{
	struct hist *h = new_hist();
	for (uint64_t v = 0; v < 2 * HIST_SUB; v++) {
		assert_int_equal(hist_index(v), v);
		hist_record(h, v);
	}
	assert_int_equal(h->total, 2 * HIST_SUB);
	assert_int_equal(hist_percentile(h, 50), 127);
	assert_int_equal(hist_percentile(h, 100), 255);
	assert_int_equal(hist_percentile(h, 0), 0);
	free(h);
}

/* Buckets tile the whole range with no gap or overlap, each at most 1/HIST_SUB wide. */
static void test_buckets_tile_the_range(void **state)
{
	assert_int_equal(hist_bucket_low(0), 0);
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);
		assert_true(lo <= hi);
		assert_int_equal(hist_index(lo), i);
		assert_int_equal(hist_index(hi), i);
		if (i + 1 < HIST_BUCKETS)
			assert_int_equal(hist_bucket_low(i + 1), hi + 1);
		if (lo >= 2 * HIST_SUB)
			assert_true((hi - lo + 1) * HIST_SUB <= lo);
	}
	assert_int_equal(hist_bucket_high(HIST_BUCKETS - 1), HIST_LIMIT - 1);
}

static void test_uniform(void **state)
{
	struct hist *h = new_hist();
	for (uint64_t v = 1; v <= 10000; v++)
		hist_record(h, v);
	assert_int_equal(h->min, 1);
	assert_int_equal(h->max, 10000);
	assert_true(hist_mean(h) == 5000.5);
	uint64_t p50 = hist_percentile(h, 50), p99 = hist_percentile(h, 99), p999 = hist_percentile(h, 99.9);
	assert_in_range(p50, 5000, 5000 + 5000 / HIST_SUB);
	assert_in_range(p99, 9900, 9900 + 9900 / HIST_SUB);
	assert_in_range(p999, 9990, 10000);
	assert_int_equal(hist_percentile(h, 100), 10000);
	free(h);
}

/* 99.9 % of 1000 samples is rank 999, even though 99.9 has no exact binary form. */
static void test_rank_rounding(void **state)
{
	struct hist *h = new_hist();
	for (uint64_t v = 1; v <= 999; v++)
		hist_record(h, v);
	hist_record(h, 1000000); /* one far outlier: only p100 may see it */
	assert_int_equal(hist_percentile(h, 99.9), 999);
	assert_int_equal(hist_percentile(h, 100), 1000000);
	assert_int_equal(h->max, 1000000);
	free(h);
}

/* Against the exact percentile of sorted samples: never below it, at most one bucket above. */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_against_exact(void **state)
{
	enum { N = 20000 };
	uint64_t *v = malloc(N * sizeof *v);
	assert_non_null(v);
	struct hist *h = new_hist();
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < N; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* a long-tailed spread: 50 us to about 2 s */
		v[i] = 50 + (x % 1000) * (1 + (x >> 40) % 2000);
		hist_record(h, v[i]);
	}
	qsort(v, N, sizeof *v, cmp_u64);
	static const double pcts[] = {1, 10, 50, 75, 90, 99, 99.9, 99.99};
	for (size_t k = 0; k < sizeof pcts / sizeof pcts[0]; k++) {
		size_t rank = (size_t)((pcts[k] / 100.0) * N + 0.999999);
		uint64_t exact = v[rank - 1];
		uint64_t got = hist_percentile(h, pcts[k]);
		assert_true(got >= exact);
		assert_true(got <= exact + exact / HIST_SUB + 1);
	}
	assert_int_equal(hist_percentile(h, 100), v[N - 1]);
	assert_int_equal(h->min, v[0]);
	free(v);
	free(h);
}

static void test_merge_and_record_n(void **state)
{
	struct hist *a = new_hist(), *b = new_hist(), *all = new_hist();
	for (uint64_t i = 0; i < 5000; i++) {
		uint64_t val = 20000 + i * 7;
		hist_record(i % 2 ? a : b, val);
		hist_record(all, val);
	}
	hist_record_n(a, 300000, 10);
	hist_record_n(all, 300000, 10);
	hist_record_n(a, 5, 0); /* nothing */
	hist_merge(a, b);
	assert_int_equal(a->total, all->total);
	assert_int_equal(a->min, all->min);
	assert_int_equal(a->max, 300000);
	assert_memory_equal(a->counts, all->counts, sizeof a->counts);
	assert_int_equal(hist_percentile(a, 99), hist_percentile(all, 99));
	struct hist *empty = new_hist();
	hist_merge(a, empty);
	assert_int_equal(a->total, all->total);
	free(a);
	free(b);
	free(all);
	free(empty);
}

static void test_huge_values_clamp(void **state)
{
	struct hist *h = new_hist();
	hist_record(h, UINT64_MAX);
	hist_record(h, HIST_LIMIT);
	assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	assert_int_equal(h->counts[HIST_BUCKETS - 1], 2);
	assert_int_equal(h->max, UINT64_MAX);
	assert_int_equal(hist_percentile(h, 50), HIST_LIMIT); /* the bucket is capped, min is exact */
	free(h);
}

static void test_php_urlencode(void **state)
{
	char out[64];
	assert_true(ipn_php_urlencode("a b~*\xc3\xa9-_.Z9", out, sizeof out));
	assert_string_equal(out, "a+b%7E%2A%C3%A9-_.Z9"); /* php_urlencode() of vnpay_ipn.py */
	assert_true(ipn_php_urlencode("", out, sizeof out));
	assert_string_equal(out, "");
	char small[5];
	assert_false(ipn_php_urlencode("abc~", small, sizeof small)); /* "abc%7E" does not fit */
}

static void test_url_param(void **state)
{
	const char *url = "http://127.0.0.1:1/paymentv2/vpcpay.html?vnp_Amount=20000000&vnp_OrderInfo=Le+phi%2C+x"
			  "&vnp_TxnRef=FGI8OXW69NPQ&vnp_Bad=%4&vnp_Empty=";
	char v[32];
	assert_true(ipn_url_param(url, "vnp_Amount", v, sizeof v));
	assert_string_equal(v, "20000000");
	assert_true(ipn_url_param(url, "vnp_TxnRef", v, sizeof v));
	assert_string_equal(v, "FGI8OXW69NPQ");
	assert_true(ipn_url_param(url, "vnp_OrderInfo", v, sizeof v));
	assert_string_equal(v, "Le phi, x");
	assert_false(ipn_url_param(url, "vnp_Bad", v, sizeof v));
	assert_false(ipn_url_param(url, "vnp_Empty", v, sizeof v)); /* absent and empty alike */
	assert_false(ipn_url_param(url, "vnp_Txn", v, sizeof v));
	assert_false(ipn_url_param(url, "vnp_TxnRef", v, 5)); /* does not fit */
	assert_false(ipn_url_param("http://x/no-query", "a", v, sizeof v));
}

static const struct ipn_payment known_payment = {
	.tmn_code = "CZMH3L9Q",
	.txn_ref = "FGI8OXW69NPQ",
	.amount = "20000000",
	.transaction_no = "00000000100000007",
	.bank_tran_no = "VNP00000000100000007",
	.paid_at = 1795822665, /* 2026-11-27 23:37:45 UTC, 06:37:45 on the 28th in Hanoi */
};
static const char known_secret[] = "JFHMLK08GVZNGJY4FW2YOFEJR1QXFD16";

static void test_success_query_matches_python(void **state)
{
	/* signed_query() of vnpay_ipn.py over the same fields */
	const char *want = "vnp_Amount=20000000&vnp_BankCode=NCB&vnp_BankTranNo=VNP00000000100000007&vnp_CardType=ATM"
			   "&vnp_OrderInfo=Thanh+toan+FGI8OXW69NPQ&vnp_PayDate=20261128063745&vnp_ResponseCode=00"
			   "&vnp_TmnCode=CZMH3L9Q&vnp_TransactionNo=00000000100000007&vnp_TransactionStatus=00"
			   "&vnp_TxnRef=FGI8OXW69NPQ&vnp_SecureHash=1940394f75df2e0d76296535c395d9b828df03ec66c24d9546f775d2"
			   "3958ad057ab79ebd184aae1f87e95b706e4069b4af0c998c0021a45cf8620c4e2df02c74";
	char q[2048];
	assert_true(ipn_success_query(known_secret, &known_payment, q, sizeof q));
	assert_string_equal(q, want);
	assert_false(ipn_success_query(known_secret, &known_payment, q, strlen(want))); /* one byte short */
}

static void test_success_query_passes_the_gateway(void **state)
{
	char q[2048];
	assert_true(ipn_success_query(known_secret, &known_payment, q, sizeof q));
	params p;
	params_init(&p);
	assert_true(params_parse_query(&p, q));
	assert_int_equal(vnpay_verify_params(known_secret, &p), ADAPTER_OK);
	assert_int_equal(vnpay_verify_params("another secret", &p), ADAPTER_BAD_SIGNATURE);
	params_free(&p);
}

static void test_signed_query_drops_and_sorts(void **state)
{
	const struct ipn_param fields[] = {
		{"vnp_b", "2"}, {"vnp_SecureHashType", "SHA512"}, {"other", "x"}, {"vnp_a", "1 ~"},
		{"vnp_empty", ""}, {"vnp_SecureHash", "old"},
	};
	char q[512];
	assert_true(ipn_signed_query("k", fields, sizeof fields / sizeof fields[0], q, sizeof q));
	assert_memory_equal(q, "vnp_a=1+%7E&vnp_b=2&vnp_SecureHash=", strlen("vnp_a=1+%7E&vnp_b=2&vnp_SecureHash="));
	assert_int_equal(strlen(q), strlen("vnp_a=1+%7E&vnp_b=2&vnp_SecureHash=") + 128);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_small_values_are_exact),
		cmocka_unit_test(test_buckets_tile_the_range),
		cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_rank_rounding),
		cmocka_unit_test(test_against_exact),
		cmocka_unit_test(test_merge_and_record_n),
		cmocka_unit_test(test_huge_values_clamp),
		cmocka_unit_test(test_php_urlencode),
		cmocka_unit_test(test_url_param),
		cmocka_unit_test(test_success_query_matches_python),
		cmocka_unit_test(test_success_query_passes_the_gateway),
		cmocka_unit_test(test_signed_query_drops_and_sorts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
