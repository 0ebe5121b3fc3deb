/* Each bank's settlement-file parser; the first byte picks the bank. */
#include <stdlib.h>

#include "adapters/adapter.h"
#include "tests/fuzz/fuzz.h"

static bool each_line(void *ctx, const adapter_settlement_line *line)
{
	size_t *n = ctx;
	if (line->amount < 0)
		abort();
	(*n)++;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const adapter *a = adapter_at(data[0] % adapter_count());
	adapter_config cfg = {.merchant_id = "FEEGATE01", .access_key = "ak", .secret = "s"};
	adapter_error err;
	adapter_settlement_summary sum;
	size_t n = 0;
	if (!a->parse_settlement)
		return 0;
	adapter_rc rc = adapter_parse_settlement(a, &cfg, (const char *)data + 1, size - 1, each_line, &n, &sum, &err);
	if (rc != ADAPTER_OK && err.message[0] == '\0')
		abort(); /* a refused file always says why */
	if (rc == ADAPTER_OK && (int64_t)n != sum.lines)
		abort(); /* an accepted file hands on exactly the lines its total record counts */
	return 0;
}
