#include "lib/totp.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

size_t totp_base32_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8 | in[i]) & 0xffffu;
		bits += 8;
		while (bits >= 5 && o + 1 < cap) {
			bits -= 5;
			out[o++] = b32[(acc >> bits) & 31];
		}
	}
	if (bits > 0 && o + 1 < cap)
		out[o++] = b32[(acc << (5 - bits)) & 31];
	if (cap)
		out[o] = '\0';
	return o;
}

static int base32_value(char c)
{
	if (c == ' ' || c == '=')
		return UTIL_DECODE_SKIP;
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	const char *p = strchr(b32, c);
	return p ? (int)(p - b32) : -1;
}

int totp_base32_decode(const char *in, unsigned char *out, size_t cap)
{
	return (int)util_bits_decode(in, SIZE_MAX, 5, base32_value, out, cap);
}

uint32_t totp_hotp(const unsigned char *key, size_t key_len, uint64_t counter)
{
	unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;
	for (int i = 7; i >= 0; i--, counter >>= 8)
		msg[i] = (unsigned char)(counter & 0xff);
	HMAC(EVP_sha1(), key, (int)key_len, msg, sizeof msg, mac, &mac_len);
	int off = mac[mac_len - 1] & 0x0f;
	uint32_t bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 | (uint32_t)mac[off + 2] << 8 |
		       mac[off + 3];
	return bin % 1000000u;
}

void totp_new_secret(char out[TOTP_SECRET_B32])
{
	unsigned char key[TOTP_SECRET_BYTES];
	util_random(key, sizeof key);
	totp_base32_encode(key, sizeof key, out, TOTP_SECRET_B32);
}

bool totp_check(const char *secret_b32, const char *code, int64_t now, int64_t last_step, int64_t *step)
{
	if (!secret_b32 || !code || strlen(code) != 6 || strspn(code, "0123456789") != 6)
		return false;
	unsigned char key[64];
	int n = totp_base32_decode(secret_b32, key, sizeof key);
	if (n < 10)
		return false;
	uint32_t want = 0;
	for (int i = 0; i < 6; i++)
		want = want * 10 + (uint32_t)(code[i] - '0');
	int64_t t = now / TOTP_STEP_S;
	for (int64_t s = t - 1; s <= t + 1; s++) {
		if (s <= last_step)
			continue;
		if (totp_hotp(key, (size_t)n, (uint64_t)s) == want) {
			*step = s;
			return true;
		}
	}
	return false;
}
