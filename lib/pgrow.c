#include "lib/pgrow.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

int pg_word_value(const struct pg_word *words, const char *word)
{
	const struct pg_word *w = words;
	for (; w->word; w++) {
		if (word && strcmp(w->word, word) == 0)
			return w->value;
	}
	return w->value;
}

const char *pg_word_name(const struct pg_word *words, int value)
{
	for (const struct pg_word *w = words; w->word; w++) {
		if (w->value == value)
			return w->word;
	}
	return "?";
}

bool pg_row(const PGresult *res, int row, const struct pg_col *cols, size_t n, void *out)
{
	return pg_row_from(res, row, 0, cols, n, out);
}

bool pg_row_from(const PGresult *res, int row, int first, const struct pg_col *cols, size_t n, void *out)
{
	if (!res || row < 0 || row >= PQntuples(res) || first < 0 || (size_t)PQnfields(res) < (size_t)first + n) {
		log_error(NULL, "database result: %d columns, row %d of %d; expected %zu columns from %s",
			  res ? PQnfields(res) : 0, row, res ? PQntuples(res) : 0, (size_t)first + n,
			  n ? cols[0].name : "-");
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = PQfname(res, first + (int)i);
		if (!name || strcmp(name, cols[i].name) != 0) {
			log_error(NULL, "database result: column %zu is %s, expected %s", (size_t)first + i + 1,
				  name ? name : "-", cols[i].name);
			return false;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct pg_col *c = &cols[i];
		int col = first + (int)i;
		bool null = PQgetisnull(res, row, col);
		const char *v = PQgetvalue(res, row, col);
		void *dst = (char *)out + c->offset;
		switch (c->type) {
		case PG_TEXT:
			*(const char **)dst = v;
			break;
		case PG_TEXT_NULL:
			*(const char **)dst = null ? NULL : v;
			break;
		case PG_INT64:
			*(int64_t *)dst = null ? 0 : strtoll(v, NULL, 10);
			break;
		case PG_DOUBLE:
			*(double *)dst = null ? 0 : strtod(v, NULL);
			break;
		case PG_BOOL:
			*(bool *)dst = !null && v[0] == 't';
			break;
		case PG_WORD:
			*(int *)dst = pg_word_value(c->words, null ? NULL : v);
			break;
		}
	}
	return true;
}
