#ifndef FEEGATE_UTIL_H
#define FEEGATE_UTIL_H
/* Small helpers every layer uses: randomness, encodings, hashing, UTF-8, time. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WARN_UNUSED __attribute__((warn_unused_result))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Fills buf with n bytes from the OS CSPRNG (OpenSSL RAND_bytes); aborts if it cannot. */
void util_random(void *buf, size_t n);
/* A random token: prefix + base64url of nbytes random bytes. Caller frees. */
char *util_token(const char *prefix, size_t nbytes);
/* Random UUID v4 in canonical lower-case form, into out[37]. */
void util_uuid(char out[37]);
/* Time-ordered UUID v7 (48-bit ms timestamp, then random): ids that index at the right edge of
 * a B-tree instead of at random pages. */
void util_uuid7(char out[37]);
bool util_uuid_valid(const char *s) WARN_UNUSED;

void util_hex(const unsigned char *in, size_t n, char *out); /* out needs 2n+1 */
void util_sha256_hex(const void *data, size_t n, char out[65]);
void util_base64url(const unsigned char *in, size_t n, char *out); /* out needs 4n/3+3 */

/* The value of one hex digit, or -1. */
int util_hex_digit(char c);
/* A whole decimal integer (optional '-', digits only, in int64 range) into *out. */
bool util_parse_int64(const char *s, int64_t *out) WARN_UNUSED;

/* Lower-case hex HMAC of data; out must hold 2 * digest size + 1. md_name is "SHA256" or
 * "SHA512". False when the key is NULL or out too small. */
/* Text in a base-2^bits alphabet (base32: 5, base64: 6) to bytes. value_of gives a character's
 * value, UTIL_DECODE_SKIP for one passed over, UTIL_DECODE_END for one that ends the text, or -1
 * for an invalid one. Reads at most n characters (or to a NUL). The byte count, or -1 when a
 * character is invalid or out[cap] is too small. */
#define UTIL_DECODE_SKIP (-2)
#define UTIL_DECODE_END (-3)
long util_bits_decode(const char *in, size_t n, int bits, int (*value_of)(char c), unsigned char *out, size_t cap);
bool util_hmac_hex(const char *md_name, const char *key, const void *data, size_t len, char *out,
		   size_t out_size) WARN_UNUSED;
/* The timestamped signature scheme (a bank's notifications, feegate's own webhooks): lower-case
 * hex HMAC-SHA256(key, timestamp "." body). */
bool util_sign_timestamped(const char *key, const char *timestamp, const void *body, size_t len,
			   char out[65]) WARN_UNUSED;
/* Constant-time comparison of an expected lower-case hex digest with a received one (either
 * case). */
bool util_hex_equal(const char *expected, const char *received) WARN_UNUSED;

/* UTF-8 as RFC 3629 has it: no overlong forms, no surrogates, nothing above U+10FFFF. */
/* The length of the well-formed sequence at s[0..n), its code point in *cp; 0 when the bytes
 * there are not one (a NUL-terminated s may pass n = 4: the check stops at the NUL). */
size_t util_utf8_decode(const char *s, size_t n, uint32_t *cp) WARN_UNUSED;
/* Decodes the character at NUL-terminated *s and advances past it; a byte that starts no
 * well-formed sequence decodes as U+FFFD and advances by one. */
uint32_t util_utf8_next(const char **s);
/* Number of code points if s[0..n) is valid UTF-8, else -1. */
long util_utf8_length(const char *s, size_t n) WARN_UNUSED;

int64_t util_now_ms(void);       /* wall clock, ms since the epoch */
/* The database's clock as this process last measured it: the wall clock plus the offset the
 * PostgreSQL pool measures on every new connection. Order times are stamped on it because the
 * sweeper compares them with PostgreSQL's now(): a host clock that is off must not expire
 * orders early or late. */
int64_t util_db_now_ms(void);
void util_set_db_clock_offset_ms(int64_t offset_ms);
int64_t util_monotonic_us(void); /* monotonic clock, µs */
/* ISO 8601 UTC with milliseconds: 2026-11-27T21:05:17.123Z, into out[32]. */
void util_format_time(int64_t epoch_ms, char out[32]);

bool util_is_http_url(const char *s) WARN_UNUSED;

#endif
