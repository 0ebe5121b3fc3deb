/* Log-linear latency histogram; see hist.h. */
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

size_t hist_index(uint64_t value)
{
	if (value >= HIST_LIMIT)
		value = HIST_LIMIT - 1;
	if (value < 2 * HIST_SUB)
		return (size_t)value;
	unsigned msb = 63u - (unsigned)__builtin_clzll(value);
	unsigned shift = msb - HIST_SUB_BITS; /* >= 1 here */
	uint64_t mantissa = value >> shift;   /* in [HIST_SUB, 2 * HIST_SUB) */
	return 2 * HIST_SUB + (size_t)(shift - 1) * HIST_SUB + (size_t)(mantissa - HIST_SUB);
}

uint64_t hist_bucket_low(size_t index)
{
	if (index < 2 * HIST_SUB)
		return index;
	size_t k = index - 2 * HIST_SUB;
	unsigned shift = (unsigned)(k / HIST_SUB) + 1;
	uint64_t mantissa = HIST_SUB + k % HIST_SUB;
	return mantissa << shift;
}

uint64_t hist_bucket_high(size_t index)
{
	if (index < 2 * HIST_SUB)
		return index;
	unsigned shift = (unsigned)((index - 2 * HIST_SUB) / HIST_SUB) + 1;
	return hist_bucket_low(index) + (UINT64_C(1) << shift) - 1;
}

void hist_record_n(struct hist *h, uint64_t value, uint64_t n)
{
	if (n == 0)
		return;
	h->counts[hist_index(value)] += n;
	h->total += n;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
	h->sum += (double)value * (double)n;
}

void hist_record(struct hist *h, uint64_t value)
{
	hist_record_n(h, value, 1);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (src->total == 0)
		return;
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->total += src->total;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
	if (h->total == 0)
		return 0;
	if (!(pct > 0))
		return h->min;
	if (pct >= 100)
		return h->max;
	/* The slack keeps 99.9 % of 1000 at rank 999: 99.9 is not exact in binary. */
	double exact = pct / 100.0 * (double)h->total;
	double want = ceil(exact - exact * 1e-12 - 1e-9);
	uint64_t rank = want < 1 ? 1 : (uint64_t)want;
	if (rank > h->total)
		rank = h->total;
	uint64_t seen = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->total ? h->sum / (double)h->total : 0;
}
