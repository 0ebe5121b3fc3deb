#include "lib/util.h"

#include <errno.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/mem.h"
#include "lib/strbuf.h"

void util_random(void *buf, size_t n)
{
	if (RAND_bytes(buf, (int)n) != 1) {
		fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"RAND_bytes failed\"}\n");
		abort();
	}
}

void util_base64url(const unsigned char *in, size_t n, char *out)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = tbl[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = tbl[v & 63];
	}
	out[o] = '\0';
}

char *util_token(const char *prefix, size_t nbytes)
{
	unsigned char raw[64];
	if (nbytes > sizeof raw)
		nbytes = sizeof raw;
	util_random(raw, nbytes);
	size_t plen = strlen(prefix);
	char *out = xmalloc(plen + nbytes * 4 / 3 + 4);
	memcpy(out, prefix, plen);
	util_base64url(raw, nbytes, out + plen);
	return out;
}

void util_hex(const unsigned char *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void util_uuid(char out[37])
{
	unsigned char b[16];
	util_random(b, sizeof b);
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	char hex[33];
	util_hex(b, 16, hex);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

void util_uuid7(char out[37])
{
	unsigned char b[16];
	util_random(b, sizeof b);
	uint64_t ms = (uint64_t)util_now_ms();
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (b[6] & 0x0f) | 0x70;
	b[8] = (b[8] & 0x3f) | 0x80;
	char hex[33];
	util_hex(b, 16, hex);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

bool util_uuid_valid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

void util_sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(data, n, md);
	util_hex(md, sizeof md, out);
}

bool util_hmac_hex(const char *md_name, const char *key, const void *data, size_t len, char *out, size_t out_size)
{
	const EVP_MD *md = NULL;
	if (strcmp(md_name, "SHA256") == 0)
		md = EVP_sha256();
	else if (strcmp(md_name, "SHA512") == 0)
		md = EVP_sha512();
	if (!md || !key)
		return false;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	size_t key_len = strlen(key);
	if (key_len > INT32_MAX)
		return false;
	if (!HMAC(md, key, (int)key_len, data, len, mac, &mac_len))
		return false;
	if (out_size < (size_t)mac_len * 2 + 1)
		return false;
	util_hex(mac, mac_len, out);
	OPENSSL_cleanse(mac, sizeof(mac));
	return true;
}

bool util_sign_timestamped(const char *key, const char *timestamp, const void *body, size_t len, char out[65])
{
	struct strbuf data;
	strbuf_init(&data);
	strbuf_puts(&data, timestamp);
	strbuf_putc(&data, '.');
	strbuf_append(&data, body, len);
	bool ok = util_hmac_hex("SHA256", key, data.data, data.len, out, 65);
	strbuf_free(&data);
	return ok;
}

bool util_hex_equal(const char *expected, const char *received)
{
	if (!expected || !received)
		return false;
	size_t n = strlen(expected);
	if (n == 0 || strlen(received) != n)
		return false;
	char lowered[256];
	if (n >= sizeof(lowered))
		return false;
	for (size_t i = 0; i < n; i++)
		lowered[i] = (char)tolower((unsigned char)received[i]);
	return CRYPTO_memcmp(expected, lowered, n) == 0;
}

size_t util_utf8_decode(const char *str, size_t n, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	if (n == 0)
		return 0;
	unsigned char c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	uint32_t v;
	unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		v = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0; /* no overlong forms */
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		v = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	v = (v << 6) | (s[1] & 0x3F);
	for (size_t i = 2; i < len; i++) {
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	*cp = v;
	return len;
}

uint32_t util_utf8_next(const char **s)
{
	uint32_t cp;
	size_t len = util_utf8_decode(*s, 4, &cp);
	if (len == 0) {
		*s += 1;
		return 0xFFFD;
	}
	*s += len;
	return cp;
}

long util_utf8_length(const char *str, size_t n)
{
	long count = 0;
	size_t i = 0;
	while (i < n) {
		uint32_t cp;
		size_t len = util_utf8_decode(str + i, n - i, &cp);
		if (len == 0)
			return -1;
		i += len;
		count++;
	}
	return count;
}

int64_t util_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t db_clock_offset_ms; /* one loop per process: no lock needed */

int64_t util_db_now_ms(void)
{
	return util_now_ms() + db_clock_offset_ms;
}

void util_set_db_clock_offset_ms(int64_t offset_ms)
{
	db_clock_offset_ms = offset_ms;
}

int64_t util_monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void util_format_time(int64_t epoch_ms, char out[32])
{
	time_t secs = (time_t)(epoch_ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(epoch_ms % 1000) % 1000u);
}

bool util_is_http_url(const char *s)
{
	const char *rest;
	if (strncasecmp(s, "https://", 8) == 0)
		rest = s + 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		rest = s + 7;
	else
		return false;
	/* A host must follow; no whitespace or control characters anywhere. */
	if (*rest == '\0' || *rest == '/' || *rest == '?' || *rest == '#' || *rest == ':')
		return false;
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

int util_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool util_parse_int64(const char *s, int64_t *out)
{
	if (!s || !*s)
		return false;
	const char *p = s;
	if (*p == '-')
		p++;
	if (!*p)
		return false;
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return false;
	errno = 0;
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (errno || !end || *end)
		return false;
	*out = (int64_t)v;
	return true;
}

long util_bits_decode(const char *in, size_t n, int bits, int (*value_of)(char c), unsigned char *out, size_t cap)
{
	uint32_t acc = 0;
	int have = 0;
	size_t o = 0;
	for (size_t i = 0; i < n && in[i]; i++) {
		int v = value_of(in[i]);
		if (v == UTIL_DECODE_SKIP)
			continue;
		if (v == UTIL_DECODE_END)
			break;
		if (v < 0)
			return -1;
		acc = (acc << bits | (uint32_t)v) & 0xffffu;
		have += bits;
		if (have >= 8) {
			have -= 8;
			if (o == cap)
				return -1;
			out[o++] = (unsigned char)(acc >> have);
		}
	}
	return (long)o;
}
