/* lib/multipart: a multipart/form-data body read in chunks of any size (every cut of the same
 * body gives the same parts), delimiter look-alikes inside a file, refused bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "lib/multipart.h"

/* What the handler saw: "name|filename=" then the part's bytes, one line per part. */
struct seen {
	char out[8192];
	size_t n;
	int stop_after; /* parts; 0: never */
	int parts;
};

static void add(struct seen *s, const char *p, size_t n)
{
	assert_true(s->n + n < sizeof s->out);
	memcpy(s->out + s->n, p, n);
	s->n += n;
	s->out[s->n] = '\0';
}

static bool on_part(void *arg, const char *name, const char *filename)
{
	struct seen *s = arg;
	char head[600];
	int n = snprintf(head, sizeof head, "[%s|%s]", name, filename ? filename : "-");
	add(s, head, (size_t)n);
	return !s->stop_after || ++s->parts < s->stop_after;
}

static bool on_data(void *arg, const char *data, size_t len)
{
	add(arg, data, len);
	return true;
}

static bool on_end(void *arg)
{
	add(arg, "\n", 1);
	return true;
}

static const struct multipart_handler handler = {on_part, on_data, on_end};

#define CT "multipart/form-data; boundary=----WebKitFormBoundaryx7Q"
#define D "------WebKitFormBoundaryx7Q"

/* Feeds body in chunks of step bytes (0: whole), expecting rc at the end. */
static enum multipart_rc run(const char *ct, const char *body, size_t len, size_t step, struct seen *s)
{
	struct multipart *m = multipart_new(ct, &handler, s);
	assert_non_null(m);
	enum multipart_rc rc = MULTIPART_MORE;
	for (size_t i = 0; i < len && rc == MULTIPART_MORE;) {
		size_t n = step && step < len - i ? step : len - i;
		rc = multipart_feed(m, body + i, n);
		i += n;
	}
	if (rc == MULTIPART_MORE)
		rc = multipart_end(m);
	multipart_free(m);
	return rc;
}

static void test_every_cut_gives_the_same_parts(void **state)
{
	/* the file holds CR, LF, a CRLF followed by dashes and most of the delimiter */
	static const char body[] = "preamble\r\n" D "\r\n"
				   "Content-Disposition: form-data; name=\"csrf\"\r\n\r\n"
				   "tok123\r\n" D "\r\n"
				   "Content-Disposition: form-data; name=\"source\"\r\n\r\n"
				   "vnpay\r\n" D "\r\n"
				   "Content-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".csv\"\r\n"
				   "Content-Type: text/csv\r\n\r\n"
				   "x,1\r\ny,2\r\r\n--\r\n" "\r\n------WebKitFormBoundaryx7\r\n" "\r\n\r\n-" "\r\n" D "--\r\n"
				   "epilogue";
	static const char want[] = "[csrf|-]tok123\n[source|-]vnpay\n[file|a \"b\".csv]"
				   "x,1\r\ny,2\r\r\n--\r\n\r\n------WebKitFormBoundaryx7\r\n\r\n\r\n-\n";
	for (size_t step = 0; step <= sizeof body; step++) {
		struct seen s = {0};
		assert_int_equal(run(CT, body, sizeof body - 1, step, &s), MULTIPART_DONE);
		assert_string_equal(s.out, want);
	}
}

static void test_a_border_of_the_delimiter(void **state)
{
	/* "\r\n--a\r\n--ab": the first attempt fails at its 6th byte, where a new one has begun */
	static const char body[] = "--ab\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n"
				   "\r\n--a\r\n--ab--";
	for (size_t step = 0; step <= sizeof body; step++) {
		struct seen s = {0};
		assert_int_equal(run("multipart/form-data; boundary=\"ab\"", body, sizeof body - 1, step, &s),
				 MULTIPART_DONE);
		assert_string_equal(s.out, "[f|-]\r\n--a\n");
	}
}

static void test_refused(void **state)
{
	assert_null(multipart_new("application/x-www-form-urlencoded", &handler, NULL));
	assert_null(multipart_new("multipart/form-data", &handler, NULL));
	assert_null(multipart_new("multipart/form-data; boundary=", &handler, NULL));
	char longb[120] = "multipart/form-data; boundary=";
	memset(longb + strlen(longb), 'x', 75);
	assert_null(multipart_new(longb, &handler, NULL));

	struct seen s = {0};
	static const char cut[] = D "\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nhalf a file";
	assert_int_equal(run(CT, cut, sizeof cut - 1, 0, &s), MULTIPART_BAD);
	static const char noname[] = D "\r\nContent-Disposition: form-data\r\n\r\nx\r\n" D "--";
	assert_int_equal(run(CT, noname, sizeof noname - 1, 0, &s), MULTIPART_BAD);
	static const char junk[] = D "XX\r\n";
	assert_int_equal(run(CT, junk, sizeof junk - 1, 0, &s), MULTIPART_BAD);
	char huge[MULTIPART_HEAD_MAX + 200];
	int n = snprintf(huge, sizeof huge, "%s\r\nX-Long: ", D);
	memset(huge + n, 'a', sizeof huge - (size_t)n - 1);
	huge[sizeof huge - 1] = '\0';
	assert_int_equal(run(CT, huge, strlen(huge), 0, &s), MULTIPART_BAD);

	/* a handler that says stop stops the body */
	struct seen once = {.stop_after = 1};
	static const char two[] = D "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n" D
				  "\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n" D "--";
	assert_int_equal(run(CT, two, sizeof two - 1, 0, &once), MULTIPART_STOPPED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_cut_gives_the_same_parts),
		cmocka_unit_test(test_a_border_of_the_delimiter),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
