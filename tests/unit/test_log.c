/* lib/log: every line is one valid JSON object whatever bytes the message holds (invalid UTF-8
 * becomes U+FFFD, control characters are escaped, valid multi-byte text passes unchanged). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

static void escapes_to(const char *in, const char *want)
{
	char out[256];
	size_t n = log_json_escape(out, sizeof out, in);
	assert_string_equal(out, want);
	assert_int_equal(n, strlen(want));
}

static void test_escape_known_answers(void **state)
{
	(void)state;
	escapes_to("plain", "plain");
	escapes_to("a\"b\\c\nd\te", "a\\\"b\\\\c\\nd\\u0009e");
	escapes_to("L\xe1\xbb\x87 ph\xc3\xad", "L\xe1\xbb\x87 ph\xc3\xad"); /* "Lệ phí" kept */
	escapes_to("\xf0\x9f\x92\xb3", "\xf0\x9f\x92\xb3");                 /* 4-byte character */
	escapes_to("a\xff" "b", "a\\ufffdb");                               /* never valid */
	escapes_to("\x80", "\\ufffd");                                     /* lone continuation */
	escapes_to("\xc3", "\\ufffd");                                     /* truncated */
	escapes_to("\xc0\xaf", "\\ufffd\\ufffd");                          /* overlong "/" */
	escapes_to("\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd");               /* surrogate D800 */
	escapes_to("\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd");    /* above U+10FFFF */
	escapes_to("\xe2\x82x", "\\ufffd\\ufffdx");                        /* cut short */
	escapes_to("\x7f", "\\u007f");
}

static void test_escape_never_cuts_a_character(void **state)
{
	(void)state;
	char out[10];
	/* "ééééé": 10 bytes; at most 9 fit and the output must end on a character boundary */
	size_t n = log_json_escape(out, sizeof out, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
	assert_true(n < sizeof out);
	assert_int_equal(n % 2, 0);
	json_t *j = json_stringn(out, n);
	assert_non_null(j);
	json_decref(j);
}

/* Every byte value 1..255 in one message, through log_emit, read back from stderr. */
static void test_log_line_is_valid_json_for_any_bytes(void **state)
{
	(void)state;
	char msg[512];
	size_t k = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (int b = 1; b < 256; b++)
			msg[k++] = (char)b;
	}
	msg[k] = '\0';
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
	log_info("req-12345678", "bytes: %s", msg);
	log_warn(NULL, "\xff\xfe invalid \xc3");
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(fds[1]);
	char buf[16384];
	size_t len = 0;
	ssize_t r;
	while ((r = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
		len += (size_t)r;
	close(fds[0]);
	buf[len] = '\0';
	int lines = 0;
	for (char *line = buf, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
		*nl = '\0';
		json_error_t err;
		json_t *j = json_loads(line, 0, &err); /* jansson refuses invalid UTF-8 */
		if (!j)
			fail_msg("line %d is not valid JSON: %s", lines + 1, err.text);
		assert_non_null(json_object_get(j, "msg"));
		json_decref(j);
		lines++;
	}
	assert_int_equal(lines, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_known_answers),
		cmocka_unit_test(test_escape_never_cuts_a_character),
		cmocka_unit_test(test_log_line_is_valid_json_for_any_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
