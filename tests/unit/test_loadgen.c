/* tests/bench/hist.c: the load generator's latency histogram and its percentiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/hist.c"

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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
