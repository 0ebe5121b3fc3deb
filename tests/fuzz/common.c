/* What the fuzz targets share, linked into both their libFuzzer and their replay builds. */
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}
