/* lib/totp: RFC 6238's SHA-1 test vectors, the +-1 step window, replay refusal, base32. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/totp.h"

/* RFC 6238 appendix B: the key is ASCII "12345678901234567890"; 8-digit codes, of which
 * ours are the last six. */
static const char rfc_key_b32[] = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

static void test_rfc6238_vectors(void **state)
{
	static const struct {
		int64_t t;
		const char *code8;
	} v[] = {{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		 {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"}};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		int64_t step = -1;
		assert_true(totp_check(rfc_key_b32, v[i].code8 + 2, v[i].t, -1, &step));
		assert_int_equal(step, v[i].t / 30);
		char wrong[16];
		snprintf(wrong, sizeof wrong, "%06d", (atoi(v[i].code8 + 2) + 1) % 1000000);
		assert_false(totp_check(rfc_key_b32, wrong, v[i].t, -1, &step));
	}
}

static void test_window_and_replay(void **state)
{
	int64_t t = 1234567890, step;
	/* the code of 89005924 is for step t/30: one step later and earlier still accept it */
	assert_true(totp_check(rfc_key_b32, "005924", t + 30, -1, &step));
	assert_true(totp_check(rfc_key_b32, "005924", t - 30, -1, &step));
	assert_false(totp_check(rfc_key_b32, "005924", t + 61, -1, &step));
	assert_false(totp_check(rfc_key_b32, "005924", t - 61, -1, &step));
	/* once step s was used, s and anything before it are refused */
	assert_false(totp_check(rfc_key_b32, "005924", t, t / 30, &step));
	assert_true(totp_check(rfc_key_b32, "005924", t, t / 30 - 1, &step));
	assert_false(totp_check(rfc_key_b32, "00592", t, -1, &step));
	assert_false(totp_check(rfc_key_b32, "00592x", t, -1, &step));
	assert_false(totp_check("not base32!", "005924", t, -1, &step));
}

static void test_base32_round_trip(void **state)
{
	unsigned char in[20], out[32];
	for (int i = 0; i < 20; i++)
		in[i] = (unsigned char)(i * 37 + 5);
	char b32[TOTP_SECRET_B32];
	assert_int_equal(totp_base32_encode(in, sizeof in, b32, sizeof b32), 32);
	assert_int_equal(totp_base32_decode(b32, out, sizeof out), 20);
	assert_memory_equal(in, out, 20);
	assert_int_equal(totp_base32_decode("gezd gnbv", out, sizeof out), 5); /* lower case, spaces */
	assert_memory_equal(out, "12345", 5);
	assert_int_equal(totp_base32_decode("AB1", out, sizeof out), -1);
	char s1[TOTP_SECRET_B32], s2[TOTP_SECRET_B32];
	totp_new_secret(s1);
	totp_new_secret(s2);
	assert_int_equal(strlen(s1), 32);
	assert_string_not_equal(s1, s2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6238_vectors),
		cmocka_unit_test(test_window_and_replay),
		cmocka_unit_test(test_base32_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
