#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <string.h>

#include "lib/pgrow.h"

/* A result as libpq would hand it over: the named text columns, one row of values (NULL: SQL
 * NULL). */
static PGresult *result(int n, const char *const *names, const char *const *values)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc attrs[8];
	memset(attrs, 0, sizeof attrs);
	for (int i = 0; i < n; i++) {
		attrs[i].name = (char *)names[i];
		attrs[i].typid = 25; /* text */
		attrs[i].typlen = -1;
		attrs[i].atttypmod = -1;
	}
	assert_true(PQsetResultAttrs(res, n, attrs));
	for (int i = 0; i < n; i++)
		assert_true(PQsetvalue(res, 0, i, (char *)values[i], values[i] ? (int)strlen(values[i]) : -1));
	return res;
}

enum verdict { V_UNKNOWN, V_OK, V_LOCKED };
static const struct pg_word verdicts[] = {{"ok", V_OK}, {"locked", V_LOCKED}, {NULL, V_UNKNOWN}};

struct row {
	int r_outcome;
	const char *r_text, *r_maybe;
	int64_t r_count;
	double r_ratio;
	bool r_flag;
};
static const struct pg_col cols[] = {
	PG_COL_WORD(struct row, r_outcome, verdicts),
	PG_COL(struct row, r_text, PG_TEXT),
	PG_COL(struct row, r_maybe, PG_TEXT_NULL),
	PG_COL(struct row, r_count, PG_INT64),
	PG_COL(struct row, r_ratio, PG_DOUBLE),
	PG_COL(struct row, r_flag, PG_BOOL),
};
static const char *const names[] = {"r_outcome", "r_text", "r_maybe", "r_count", "r_ratio", "r_flag", "extra"};

static void test_decodes_a_row(void **state)
{
	const char *values[] = {"locked", "text", NULL, "-42", "0.5", "t", "x"};
	PGresult *res = result(7, names, values);
	struct row r;
	assert_true(PG_ROW(res, 0, cols, &r));
	assert_int_equal(r.r_outcome, V_LOCKED);
	assert_string_equal(r.r_text, "text");
	assert_null(r.r_maybe);
	assert_int_equal(r.r_count, -42);
	assert_true(r.r_ratio == 0.5);
	assert_true(r.r_flag);
	PQclear(res);

	const char *others[] = {"new word", NULL, "m", NULL, NULL, "f", "x"};
	res = result(7, names, others);
	assert_true(PG_ROW(res, 0, cols, &r));
	assert_int_equal(r.r_outcome, V_UNKNOWN); /* a word the table does not list */
	assert_string_equal(r.r_text, "");        /* NULL as PQgetvalue gives it */
	assert_string_equal(r.r_maybe, "m");
	assert_int_equal(r.r_count, 0);
	assert_false(r.r_flag);
	PQclear(res);
}

static void test_refuses_other_columns(void **state)
{
	const char *values[] = {"ok", "a", "b", "1", "1", "t", "x"};
	static const char *const moved[] = {"r_text", "r_outcome", "r_maybe", "r_count", "r_ratio", "r_flag", "extra"};
	PGresult *res = result(7, moved, values);
	struct row r;
	assert_false(PG_ROW(res, 0, cols, &r)); /* two columns swapped */
	PQclear(res);
	res = result(5, names, values);
	assert_false(PG_ROW(res, 0, cols, &r)); /* one missing */
	assert_false(pg_row(res, 1, cols, 1, &r)); /* no such row */
	PQclear(res);
}

static void test_columns_from(void **state)
{
	const char *values[] = {"ok", "a", "b", "7", "1", "t", "x"};
	PGresult *res = result(7, names, values);
	static const struct pg_col tail[] = {PG_COL(struct row, r_count, PG_INT64)};
	struct row r;
	assert_true(PG_ROW_FROM(res, 0, 3, tail, &r));
	assert_int_equal(r.r_count, 7);
	assert_false(PG_ROW_FROM(res, 0, 2, tail, &r));
	assert_false(PG_ROW_FROM(res, 0, 7, tail, &r));
	PQclear(res);
}

static void test_words(void **state)
{
	assert_int_equal(pg_word_value(verdicts, "ok"), V_OK);
	assert_int_equal(pg_word_value(verdicts, NULL), V_UNKNOWN);
	assert_string_equal(pg_word_name(verdicts, V_LOCKED), "locked");
	assert_string_equal(pg_word_name(verdicts, 99), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decodes_a_row),
		cmocka_unit_test(test_refuses_other_columns),
		cmocka_unit_test(test_columns_from),
		cmocka_unit_test(test_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
