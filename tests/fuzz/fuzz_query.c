/* Query strings against the one query rule (lib/query). */
#include <stdlib.h>
#include <string.h>

#include "lib/query.h"
#include "tests/fuzz/fuzz.h"

static const struct query_field fields[] = {
	{"state", Q_CHOICE, "open|acknowledged|resolved", 0, 0},
	{"order_id", Q_UUID, NULL, 0, 0},
	{"from", Q_DATE, NULL, 0, 0},
	{"reference", Q_TEXT, NULL, 0, 64},
	{"amount", Q_INT, NULL, 1, 100000000000},
	QUERY_LIST,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *raw = fuzz_cstr(data, size);
	struct query q;
	const char *field;
	const char *err = query_check(raw, fields, (int)(sizeof fields / sizeof fields[0]), &q, &field);
	if (!err) {
		/* an accepted value never carries a control character */
		for (int i = 0; i < q.n; i++)
			for (const char *p = q.value[i]; p && *p; p++)
				if ((unsigned char)*p < 0x20)
					abort();
	} else if (!field) {
		abort();
	}
	query_free(&q);
	free(raw);
	return 0;
}
