/* ledger/report: the CSV cell rule (RFC 4180 quoting, formula-looking text made inert), the CSV
 * and JSON writers' output for totals and lines, and a sink that stops the writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/report.h"

struct buf {
	char data[8192];
	size_t len;
	int calls_left; /* -1: unlimited */
};

static bool sink(void *arg, const void *data, size_t len)
{
	struct buf *b = arg;
	if (b->calls_left == 0)
		return false;
	if (b->calls_left > 0)
		b->calls_left--;
	assert_true(b->len + len < sizeof b->data);
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return true;
}

static void cell(const char *in, const char *want)
{
	char out[128];
	size_t n = report_csv_cell(in, out, sizeof out);
	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
}

static void test_csv_cells(void **state)
{
	cell("plain", "plain");
	cell("Nguyễn Văn An", "Nguyễn Văn An");
	cell("=1+2", "'=1+2");
	cell("+84901", "'+84901");
	cell("-5", "'-5");
	cell("@SUM(A1)", "'@SUM(A1)");
	cell("\tx", "'\tx");
	cell("\rx", "\"'\rx\"");
	cell("a,b", "\"a,b\"");
	cell("say \"hi\"", "\"say \"\"hi\"\"\"");
	cell("=HYPERLINK(\"u\",\"x\")", "\"'=HYPERLINK(\"\"u\"\",\"\"x\"\")\"");
	cell("two\nlines", "\"two\nlines\"");
	cell("", "");
	/* too small a buffer: truncated but terminated, the needed length returned */
	char small[4];
	assert_int_equal(report_csv_cell("abcdef", small, sizeof small), 6);
	assert_string_equal(small, "abc");
}

static const struct report_total total = {
	.date = "2026-03-10", .agency = "XNC", .bank = "vnpay", .count = 2, .gross = 300000, .refunds = 50000,
	.fees = 3300, .net = 246700, .cases_open = 1, .has_payout = false,
};
static const struct report_line pay = {
	.kind = "payment", .business_date = "2026-03-10", .at = 1773108900, /* 2026-03-10T09:15:00+07:00 */
	.agency = "XNC", .bank = "vnpay", .order_id = "o1", .reference = "=cmd",
	.payer = "{\"name\":\"Trần Thị B\",\"id_number\":\"079200001234\"}", .bank_txn_id = "T1", .amount = 200000, .fee = 2200, .net = 197800,
	.reconciliation = "matched", .chapter = "418", .ndkt = "2662", .dbhc = "79",
	.metadata = "{\"ho_so\":\"HS-1\",\"n\":3}",
};
static const struct report_line refund = {
	.kind = "refund", .business_date = "2026-03-10", .at = 1773111600, /* 2026-03-10T10:00:00+07:00 */
	.agency = "XNC", .bank = "vnpay", .order_id = "o1", .reference = "=cmd", .amount = -50000, .fee = 0,
	.net = -50000,
};

static void test_csv_report(void **state)
{
	struct buf b = {.calls_left = -1};
	const char *keys[] = {"ho_so", "n"};
	struct report_writer *w = report_writer_new(REPORT_CSV, "2026-03-10", "2026-03-10", keys, 2, sink, &b, NULL);
	assert_true(report_write_total(w, &total));
	assert_true(report_write_line(w, &pay));
	assert_true(report_write_line(w, &refund));
	assert_true(report_finish(w));
	report_writer_free(w);
	assert_memory_equal(b.data, "\xEF\xBB\xBFrecord,business_date,", 24);
	assert_non_null(strstr(b.data, ",budget_dbhc,meta.ho_so,meta.n\r\n"));
	assert_non_null(strstr(b.data, "\r\ntotal,2026-03-10,XNC,vnpay,2,300000,50000,3300,246700,1,,"));
	assert_non_null(strstr(b.data, "\r\npayment,2026-03-10,XNC,vnpay,,,,,197800,,,,2026-03-10T09:15:00+07:00,o1,'=cmd,,"
				       "Trần Thị B,1234,T1,200000,2200,matched,418,2662,79,HS-1,3\r\n"));
	assert_non_null(strstr(b.data, "\r\nrefund,2026-03-10,XNC,vnpay,,,,,-50000,,,"));
	/* every row has as many cells as the header: 25 columns and 2 metadata keys */
	int rows = 0;
	for (char *line = b.data; *line; rows++) {
		char *end = strstr(line, "\r\n");
		assert_non_null(end);
		int commas = 0;
		for (char *c = line; c < end; c++)
			commas += *c == ',';
		assert_int_equal(commas, 26);
		line = end + 2;
	}
	assert_int_equal(rows, 4);
}

static void test_json_report(void **state)
{
	struct buf b = {.calls_left = -1};
	struct report_writer *w = report_writer_new(REPORT_JSON, "2026-03-10", "2026-03-11", NULL, 0, sink, &b, NULL);
	assert_true(report_write_total(w, &total));
	assert_true(report_write_total(w, &total));
	assert_true(report_write_line(w, &pay));
	assert_true(report_finish(w));
	report_writer_free(w);
	json_error_t e;
	json_t *doc = json_loads(b.data, 0, &e);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "from")), "2026-03-10");
	assert_string_equal(json_string_value(json_object_get(doc, "to")), "2026-03-11");
	assert_int_equal(json_array_size(json_object_get(doc, "totals")), 2);
	json_t *t = json_array_get(json_object_get(doc, "totals"), 0);
	assert_int_equal(json_integer_value(json_object_get(t, "net")), 246700);
	assert_true(json_is_null(json_object_get(t, "payout")));
	json_t *l = json_array_get(json_object_get(doc, "lines"), 0);
	assert_string_equal(json_string_value(json_object_get(l, "reference")), "=cmd"); /* JSON is not a spreadsheet */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(l, "metadata"), "n")), 3);
	json_decref(doc);

	/* no lines at all: still a whole document */
	struct buf e2 = {.calls_left = -1};
	w = report_writer_new(REPORT_JSON, "2026-03-10", "2026-03-10", NULL, 0, sink, &e2, NULL);
	assert_true(report_finish(w));
	report_writer_free(w);
	assert_string_equal(e2.data, "{\"from\":\"2026-03-10\",\"to\":\"2026-03-10\",\"time_zone\":\"Asia/Ho_Chi_Minh\","
				     "\"totals\":[],\"lines\":[]}");
}

/* An agency's own row (bank NULL): what it owes, in every format's receivable column */
static void test_agency_owes(void **state)
{
	const struct report_total owed = {.date = "2026-03-10", .agency = "XNC", .has_receivable = true,
					  .receivable = 100000};
	struct buf b = {.calls_left = -1};
	struct report_writer *w = report_writer_new(REPORT_CSV, "2026-03-10", "2026-03-10", NULL, 0, sink, &b, NULL);
	assert_true(report_write_total(w, &total));
	assert_true(report_write_total(w, &owed));
	assert_true(report_finish(w));
	report_writer_free(w);
	assert_non_null(strstr(b.data, ",cases_open,payout,receivable,"));
	assert_non_null(strstr(b.data, "\r\ntotal,2026-03-10,XNC,vnpay,2,300000,50000,3300,246700,1,,,,"));
	assert_non_null(strstr(b.data, "\r\ntotal,2026-03-10,XNC,,0,0,0,0,0,0,,100000,,"));

	struct buf j = {.calls_left = -1};
	w = report_writer_new(REPORT_JSON, "2026-03-10", "2026-03-10", NULL, 0, sink, &j, NULL);
	assert_true(report_write_total(w, &total));
	assert_true(report_write_total(w, &owed));
	assert_true(report_finish(w));
	report_writer_free(w);
	json_t *doc = json_loads(j.data, 0, NULL);
	assert_non_null(doc);
	json_t *t0 = json_array_get(json_object_get(doc, "totals"), 0), *t1 = json_array_get(json_object_get(doc, "totals"), 1);
	assert_null(json_object_get(t0, "receivable"));
	assert_true(json_is_null(json_object_get(t1, "bank")));
	assert_int_equal(json_integer_value(json_object_get(t1, "receivable")), 100000);
	json_decref(doc);
}

static void test_sink_that_stops(void **state)
{
	struct buf b = {.calls_left = 0};
	struct report_writer *w = report_writer_new(REPORT_CSV, "2026-03-10", "2026-03-10", NULL, 0, sink, &b, NULL);
	bool ok = true;
	for (int i = 0; i < 2000 && ok; i++)
		ok = report_write_line(w, &pay); /* about 200 bytes each: the 64 KiB buffer fills */
	assert_false(ok);
	assert_false(report_finish(w));
	report_writer_free(w);
	assert_int_equal(b.len, 0);
}

/* What a line shows is made by the writer: the local time (across midnight UTC), the payer's
 * name, and of the identity number only its last four characters, none when it has four or
 * fewer (UTF-8 characters, not bytes); no payer, or a payer that is not an object, shows nothing. */
static const char *shown(const char *payer, int64_t at, const char *field)
{
	static char out[64];
	struct buf b = {.calls_left = -1};
	struct report_line l = pay;
	l.payer = payer;
	l.at = at;
	struct report_writer *w = report_writer_new(REPORT_JSON, "2026-03-10", "2026-03-10", NULL, 0, sink, &b, NULL);
	assert_true(report_write_line(w, &l));
	assert_true(report_finish(w));
	report_writer_free(w);
	json_t *doc = json_loads(b.data, 0, NULL);
	assert_non_null(doc);
	const char *v = json_string_value(json_object_get(json_array_get(json_object_get(doc, "lines"), 0), field));
	snprintf(out, sizeof out, "%s", v ? v : "(none)");
	json_decref(doc);
	return out;
}

static void test_line_fields(void **state)
{
	assert_string_equal(shown(pay.payer, 1773163800, "local_time"), "2026-03-11T00:30:00+07:00"); /* 17:30Z */
	assert_string_equal(shown(pay.payer, 1773108900, "payer_name"), "Trần Thị B");
	assert_string_equal(shown(pay.payer, 0, "payer_id_last4"), "1234");
	assert_string_equal(shown("{\"id_number\":\"12345\"}", 0, "payer_id_last4"), "2345");
	assert_string_equal(shown("{\"id_number\":\"1234\"}", 0, "payer_id_last4"), "(none)");
	assert_string_equal(shown("{\"id_number\":\"ĐĐĐĐ\"}", 0, "payer_id_last4"), "(none)");
	assert_string_equal(shown("{\"id_number\":\"AĐĐĐĐ\"}", 0, "payer_id_last4"), "ĐĐĐĐ");
	assert_string_equal(shown("{\"name\":\"An\"}", 0, "payer_id_last4"), "(none)");
	assert_string_equal(shown(NULL, 0, "payer_name"), "(none)");
	assert_string_equal(shown("[1]", 0, "payer_name"), "(none)");
	/* written as PostgreSQL writes json_build_object, with escapes, or not a string */
	assert_string_equal(shown("{\"name\" : \"B\\u1ea3o \\\"A\\\"\", \"id_number\" : \"0123456\"}", 0, "payer_name"),
			    "Bảo \"A\"");
	assert_string_equal(shown("{\"name\":\"\\ud83d\\ude00\"}", 0, "payer_name"), "\xF0\x9F\x98\x80");
	assert_string_equal(shown("{\"name\":42}", 0, "payer_name"), "(none)");
	assert_string_equal(shown("{\"name\":\"x\\ud800\"}", 0, "payer_name"), "(none)"); /* not JSON: jansson refuses it too */
	assert_string_equal(shown("{\"a\":{\"b\":1},\"name\":\"Nested\"}", 0, "payer_name"), "Nested");
}

/* Metadata values in CSV: strings unescaped, numbers and booleans as written, null and absent
 * empty, a nested value as compact JSON (read by jansson). */
static void test_csv_metadata(void **state)
{
	struct buf b = {.calls_left = -1};
	const char *keys[] = {"a", "b", "c", "d", "e"};
	struct report_writer *w = report_writer_new(REPORT_CSV, "2026-03-10", "2026-03-10", keys, 5, sink, &b, NULL);
	struct report_line l = pay;
	l.metadata = "{ \"a\" : \"x\\ny\", \"b\" : -1.5e3, \"c\" : true, \"d\" : null }";
	assert_true(report_write_line(w, &l));
	l.metadata = "{\"e\":[1, 2],\"a\":\"z\"}";
	assert_true(report_write_line(w, &l));
	assert_true(report_finish(w));
	report_writer_free(w);
	assert_non_null(strstr(b.data, ",79,\"x\ny\",'-1.5e3,true,,\r\n"));
	assert_non_null(strstr(b.data, ",79,z,,,,\"[1,2]\"\r\n"));
}

static void test_format_names(void **state)
{
	enum report_format f;
	assert_true(report_format_parse("xlsx", &f));
	assert_int_equal(f, REPORT_XLSX);
	assert_false(report_format_parse("pdf", &f));
	assert_false(report_format_parse(NULL, &f));
	assert_string_equal(report_extension(REPORT_CSV), "csv");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_cells),
		cmocka_unit_test(test_csv_report),
		cmocka_unit_test(test_json_report),
		cmocka_unit_test(test_agency_owes),
		cmocka_unit_test(test_sink_that_stops),
		cmocka_unit_test(test_line_fields),
		cmocka_unit_test(test_csv_metadata),
		cmocka_unit_test(test_format_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
