#ifndef FEEGATE_TOTP_H
#define FEEGATE_TOTP_H
/*
 * Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 30-second steps, six
 * digits; a code is accepted for the current step and one step either side (clock drift).
 * Secrets are exchanged as base32 (RFC 4648, no padding), the form authenticator apps read
 * from an otpauth:// URI.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

#define TOTP_STEP_S 30
#define TOTP_SECRET_BYTES 20
#define TOTP_SECRET_B32 33 /* 20 bytes: 32 characters and the NUL */

/* The code for a counter value (HOTP), 0..999999. */
uint32_t totp_hotp(const unsigned char *key, size_t key_len, uint64_t counter);
/* A new random secret, base32, into out[TOTP_SECRET_B32]. */
void totp_new_secret(char out[TOTP_SECRET_B32]);
/* Checks a 6-digit code against a base32 secret at unix time now. On success returns true and
 * sets *step to the accepted step, which the caller stores so that the same code (or an
 * older one) is never accepted twice: pass that stored step as last_step (-1 for none). */
bool totp_check(const char *secret_b32, const char *code, int64_t now, int64_t last_step, int64_t *step) WARN_UNUSED;

/* Base32 (RFC 4648 alphabet, upper case, no padding). decode accepts lower case and ignores
 * spaces; it returns the byte count or -1. */
size_t totp_base32_encode(const unsigned char *in, size_t n, char *out, size_t cap);
int totp_base32_decode(const char *in, unsigned char *out, size_t cap) WARN_UNUSED;

#endif
