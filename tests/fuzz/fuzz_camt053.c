/* The camt.053 treasury statement reader (ledger/camt053.c): any bytes are either a balanced
 * statement whose lines are all handed on, or refused with a reason and no line handed on. */
#include <stdlib.h>

#include "ledger/camt053.h"
#include "tests/fuzz/fuzz.h"

static bool each_line(void *ctx, const struct camt_line *line)
{
	int64_t *n = ctx;
	if (line->amount < 0)
		abort();
	(*n)++;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct camt_summary sum;
	struct camt_error err = {0};
	int64_t n = 0;
	if (camt053_parse((const char *)data, size, each_line, &n, &sum, &err)) {
		if (n != sum.lines)
			abort(); /* an accepted statement hands on exactly its lines */
	} else if (n != 0 || err.message[0] == '\0') {
		abort(); /* a refused one hands on nothing and says why */
	}
	return 0;
}
