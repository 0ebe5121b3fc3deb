#include "lib/passwd.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_LEN 16
#define KEY_LEN 32
/* scrypt needs 128 * r * N bytes; allow the largest cost accepted below */
#define MAX_MEM (1100ull * 1024 * 1024)

static bool derive(const char *pw, size_t len, const unsigned char *salt, size_t salt_len, int logn, int r, int p,
		   unsigned char key[KEY_LEN])
{
	return EVP_PBE_scrypt(pw, len, salt, salt_len, 1ull << logn, (uint64_t)r, (uint64_t)p, MAX_MEM, key, KEY_LEN) == 1;
}

static int b64url_value(char c)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *p = memchr(alpha, c, 64);
	return p ? (int)(p - alpha) : -1;
}

static int b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	return (int)util_bits_decode(in, n, 6, b64url_value, out, cap);
}

bool passwd_hash(const char *password, size_t len, int logn, char out[PASSWD_HASH_CAP])
{
	if (logn < 10 || logn > 20)
		return false;
	unsigned char salt[SALT_LEN], key[KEY_LEN];
	util_random(salt, sizeof salt);
	if (!derive(password, len, salt, sizeof salt, logn, 8, 1, key))
		return false;
	char s64[32], k64[48];
	util_base64url(salt, sizeof salt, s64);
	util_base64url(key, sizeof key, k64);
	OPENSSL_cleanse(key, sizeof key);
	return snprintf(out, PASSWD_HASH_CAP, "scrypt$%d$8$1$%s$%s", logn, s64, k64) < PASSWD_HASH_CAP;
}

bool passwd_verify(const char *password, size_t len, const char *stored)
{
	int logn, r, p, off = 0;
	if (!stored || sscanf(stored, "scrypt$%d$%d$%d$%n", &logn, &r, &p, &off) != 3 || off == 0)
		return false;
	if (logn < 10 || logn > 20 || r < 1 || r > 16 || p < 1 || p > 4)
		return false;
	const char *salt64 = stored + off, *dollar = strchr(salt64, '$');
	if (!dollar)
		return false;
	unsigned char salt[64], want[KEY_LEN + 8], got[KEY_LEN];
	int salt_len = b64url_decode(salt64, (size_t)(dollar - salt64), salt, sizeof salt);
	int want_len = b64url_decode(dollar + 1, strlen(dollar + 1), want, sizeof want);
	if (salt_len < 8 || want_len != KEY_LEN)
		return false;
	if (!derive(password, len, salt, (size_t)salt_len, logn, r, p, got))
		return false;
	bool ok = CRYPTO_memcmp(got, want, KEY_LEN) == 0;
	OPENSSL_cleanse(got, sizeof got);
	return ok;
}

const char *passwd_weak(const char *password, size_t len)
{
	long chars = util_utf8_length(password, len);
	if (chars < 0)
		return "Mật khẩu chứa ký tự không hợp lệ.";
	if (chars < PASSWD_MIN_LEN)
		return "Mật khẩu cần ít nhất 12 ký tự.";
	if (len > PASSWD_MAX_LEN)
		return "Mật khẩu dài quá 256 byte.";
	return NULL;
}
