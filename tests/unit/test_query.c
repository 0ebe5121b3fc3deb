/* lib/query: the one query-string rule (unknown, repeated, empty, malformed and out-of-range
 * parameters refused with the parameter named; the list rule's limit and cursor). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/query.h"

static const struct query_field list_fields[] = {
	{"state", Q_CHOICE, "open|acknowledged|resolved", 0, 0},
	{"order_id", Q_UUID, NULL, 0, 0},
	{"from", Q_DATE, NULL, 0, 0},
	{"reference", Q_TEXT, NULL, 0, 64},
	{"amount", Q_INT, NULL, 1, 1000},
	QUERY_LIST,
};
#define NF ((int)(sizeof list_fields / sizeof list_fields[0]))

static const char *check(const char *raw, struct query *q, const char **field)
{
	return query_check(raw, list_fields, NF, q, field);
}

static void test_accepts(void **state)
{
	struct query q;
	const char *field;
	assert_null(check("state=open&limit=500&cursor=abc-1.2:x&from=2024-02-29&reference=HS%2D1+a", &q, &field));
	assert_string_equal(query_get(&q, "state"), "open");
	assert_int_equal(query_num(&q, "limit"), 500);
	assert_string_equal(query_get(&q, "cursor"), "abc-1.2:x");
	assert_string_equal(query_get(&q, "reference"), "HS-1 a");
	assert_null(query_get(&q, "order_id"));
	query_free(&q);
	assert_null(check(NULL, &q, &field));
	assert_int_equal(query_num(&q, "limit"), QUERY_DEFAULT_LIMIT);
	query_free(&q);
	assert_null(check("reference=L%E1%BB%87+ph%C3%AD", &q, &field));
	assert_string_equal(query_get(&q, "reference"), "L\xe1\xbb\x87 ph\xc3\xad");
	query_free(&q);
}

static void refused(const char *raw, const char *want_field)
{
	struct query q;
	const char *field = NULL;
	const char *err = check(raw, &q, &field);
	if (!err)
		fail_msg("accepted: %s", raw);
	assert_non_null(field);
	if (strcmp(field, want_field) != 0)
		fail_msg("%s: field %s, wanted %s (%s)", raw, field, want_field, err);
	for (int i = 0; i < NF; i++)
		assert_null(q.value[i]);
	query_free(&q);
}

static void test_refuses(void **state)
{
	refused("limit=abc", "limit");
	refused("limit=0", "limit");
	refused("limit=100000", "limit");
	refused("limit=-1", "limit");
	refused("limit=", "limit");
	refused("state=zzz", "state");
	refused("state=open&state=open", "state");
	refused("colour=red", "colour");
	refused("from=2023-02-29", "from");
	refused("from=2024-13-01", "from");
	refused("order_id=xyz", "order_id");
	refused("order_id=0190c3c2-7e2b-7000-8000-00000000%2F000", "order_id");
	refused("reference=a%00b", "reference");
	refused("reference=a%0Ab", "reference");
	refused("reference=a%ZZ", "reference");
	refused("reference=a%4", "reference");
	refused("reference=%FF", "reference");
	refused("cursor=a/b", "cursor");
	refused("amount=1001", "amount");
	refused("amount=1e3", "amount");
	refused("state=open&limit=abc", "limit");
}

static json_t *page_of(const char *raw, int n)
{
	struct query q;
	const char *field;
	assert_null(check(raw, &q, &field));
	json_t *all = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(all, json_integer(i));
	json_t *page = query_page_array(all, &q);
	query_free(&q);
	return page;
}

static void test_page_array(void **state)
{
	/* 7 items, 3 a page: pages 0-2, 3-5, 6, then no cursor */
	json_t *p = page_of("limit=3", 7);
	assert_int_equal(json_array_size(json_object_get(p, "data")), 3);
	assert_string_equal(json_string_value(json_object_get(p, "next_cursor")), "o:3");
	json_decref(p);
	p = page_of("limit=3&cursor=o:6", 7);
	assert_int_equal(json_array_size(json_object_get(p, "data")), 1);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(p, "data"), 0)), 6);
	assert_true(json_is_null(json_object_get(p, "next_cursor")));
	json_decref(p);
	p = page_of("", 7); /* default limit 50: one page */
	assert_int_equal(json_array_size(json_object_get(p, "data")), 7);
	assert_true(json_is_null(json_object_get(p, "next_cursor")));
	json_decref(p);
	assert_null(page_of("cursor=x:1", 7));
	assert_null(page_of("cursor=o:1x", 7));
	assert_null(page_of("cursor=o:", 7));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_refuses),
		cmocka_unit_test(test_page_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
