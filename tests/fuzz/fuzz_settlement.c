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
	size_t n = 0;
	if (a->parse_settlement &&
	    adapter_parse_settlement(a, &cfg, (const char *)data + 1, size - 1, each_line, &n, &err) != ADAPTER_OK &&
	    err.message[0] == '\0')
		abort(); /* a refused file always says why */
	return 0;
}
