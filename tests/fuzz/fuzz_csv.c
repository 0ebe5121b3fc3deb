/* The RFC 4180 reader of the banks' settlement files. */
#include <stdlib.h>

#include "adapters/csv.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	csv_reader r;
	csv_reader_init(&r, (const char *)data, size);
	int rc;
	while ((rc = csv_next(&r)) == 1)
		for (size_t i = 0; i < r.count; i++)
			if (!csv_field(&r, i))
				abort();
	if (rc < 0 && !r.error)
		abort();
	csv_reader_free(&r);
	return 0;
}
