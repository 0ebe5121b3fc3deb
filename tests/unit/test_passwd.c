/* lib/passwd: scrypt hashes with their parameters, verified in constant time; RFC 7914's
 * test vector through OpenSSL; malformed stored values never match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "lib/passwd.h"

static void test_rfc7914_vector(void **state)
{
	/* scrypt("password", "NaCl", N=1024, r=8, p=16, 64 bytes) */
	static const unsigned char want[8] = {0xfd, 0xba, 0xbe, 0x1c, 0x9d, 0x34, 0x72, 0x00};
	unsigned char out[64];
	assert_int_equal(EVP_PBE_scrypt("password", 8, (const unsigned char *)"NaCl", 4, 1024, 8, 16, 0, out, 64), 1);
	assert_memory_equal(out, want, sizeof want);
}

static void test_hash_and_verify(void **state)
{
	char h1[PASSWD_HASH_CAP], h2[PASSWD_HASH_CAP];
	const char *pw = "mật khẩu đủ dài 2026";
	assert_true(passwd_hash(pw, strlen(pw), 10, h1));
	assert_true(passwd_hash(pw, strlen(pw), 10, h2));
	assert_true(strncmp(h1, "scrypt$10$8$1$", 14) == 0);
	assert_string_not_equal(h1, h2); /* a salt of its own */
	assert_true(passwd_verify(pw, strlen(pw), h1));
	assert_true(passwd_verify(pw, strlen(pw), h2));
	assert_false(passwd_verify("mật khẩu đủ dài 2025", strlen(pw), h1));
	assert_false(passwd_verify(pw, strlen(pw) - 1, h1));
	assert_false(passwd_hash(pw, strlen(pw), 9, h1)); /* below the accepted cost */
}

static void test_malformed_stored_values(void **state)
{
	const char *pw = "correct horse battery";
	char h[PASSWD_HASH_CAP];
	assert_true(passwd_hash(pw, strlen(pw), 10, h));
	char bad[PASSWD_HASH_CAP];
	snprintf(bad, sizeof bad, "%s", h);
	bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
	assert_false(passwd_verify(pw, strlen(pw), bad));
	assert_false(passwd_verify(pw, strlen(pw), NULL));
	assert_false(passwd_verify(pw, strlen(pw), ""));
	assert_false(passwd_verify(pw, strlen(pw), "scrypt$30$8$1$AAAA$AAAA"));
	assert_false(passwd_verify(pw, strlen(pw), "bcrypt$10$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAA"));
	assert_false(passwd_verify(pw, strlen(pw), "scrypt$10$8$1$!!!!!!!!!!!$AAAA"));
}

static void test_weak(void **state)
{
	assert_non_null(passwd_weak("short", 5));
	assert_null(passwd_weak("twelve chars", 12));
	assert_non_null(passwd_weak("\xff\xfe invalid utf8 here", 20));
	/* counted in characters: 11 Vietnamese letters are too few even at 2+ bytes each */
	assert_non_null(passwd_weak("ưươơêêôôăăđ", strlen("ưươơêêôôăăđ")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7914_vector),
		cmocka_unit_test(test_hash_and_verify),
		cmocka_unit_test(test_malformed_stored_values),
		cmocka_unit_test(test_weak),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
