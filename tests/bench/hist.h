/*
 * Latency histogram with log-linear buckets, in the manner of HdrHistogram: values below
 * 2 * HIST_SUB are counted exactly; above, each power of two is cut into HIST_SUB equal
 * buckets, so a bucket is never wider than 1/HIST_SUB (0.8 %) of the values it holds.
 * Values are plain integers (the load generator records microseconds); values at or above
 * HIST_LIMIT are counted in the last bucket, while min and max stay exact.
 *
 * Shared by the load generator and its unit test (tests/unit/test_loadgen.c includes hist.c).
 */
#ifndef FEEGATE_BENCH_HIST_H
#define FEEGATE_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40 /* 2^40 us is 12.7 days: no latency we measure comes near */
#define HIST_LIMIT (UINT64_C(1) << HIST_MAX_BITS)
#define HIST_BUCKETS (2 * HIST_SUB + (HIST_MAX_BITS - HIST_SUB_BITS - 1) * HIST_SUB)

struct hist {
	uint64_t counts[HIST_BUCKETS];
	uint64_t total;
	uint64_t min; /* exact; UINT64_MAX while empty */
	uint64_t max; /* exact */
	double sum;   /* for the mean */
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t value);
void hist_record_n(struct hist *h, uint64_t value, uint64_t n);
void hist_merge(struct hist *dst, const struct hist *src);

/* Bucket of a value, and the lowest and highest value that bucket holds (inclusive). */
size_t hist_index(uint64_t value);
uint64_t hist_bucket_low(size_t index);
uint64_t hist_bucket_high(size_t index);

/*
 * The value at percentile pct (0..100): the highest value of the bucket holding the sample of
 * rank ceil(pct / 100 * total), capped at the exact max. So it never understates the true
 * percentile and overstates it by at most one bucket width. 0 when empty; pct 0 gives min.
 */
uint64_t hist_percentile(const struct hist *h, double pct);
double hist_mean(const struct hist *h);

#endif
