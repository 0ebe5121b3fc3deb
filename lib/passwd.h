#ifndef FEEGATE_PASSWD_H
#define FEEGATE_PASSWD_H
/*
 * Staff passwords: scrypt (OpenSSL), a random salt per password, the parameters stored with
 * the hash as "scrypt$logN$r$p$salt$hash" (salt and hash base64url), so they can be raised
 * later without invalidating old hashes. Deliberately slow and memory-hungry: call these off
 * the event loop (lib/workpool.h) in the server; the command line may call them directly.
 */
#include <stdbool.h>
#include <stddef.h>

#include "lib/util.h"

#define PASSWD_MIN_LEN 12
#define PASSWD_MAX_LEN 256
#define PASSWD_HASH_CAP 160

/* Default cost: N = 2^15, r = 8, p = 1 (32 MiB, tens of milliseconds). */
#define PASSWD_LOG_N 15

/* Hashes password with a new salt into out[PASSWD_HASH_CAP]. logn: the cost, 10..20. */
bool passwd_hash(const char *password, size_t len, int logn, char out[PASSWD_HASH_CAP]) WARN_UNUSED;
/* True when password matches stored (in constant time over the hash). A malformed stored
 * value never matches. */
bool passwd_verify(const char *password, size_t len, const char *stored) WARN_UNUSED;
/* NULL when the password is acceptable, else the reason (in Vietnamese, for the form). */
const char *passwd_weak(const char *password, size_t len);

#endif
