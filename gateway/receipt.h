#ifndef FEEGATE_RECEIPT_H
#define FEEGATE_RECEIPT_H
/*
 * What a receipt is, independent of where it is stored or shown: its total in Vietnamese
 * words, its canonical form, and its Ed25519 signature (OpenSSL EVP). Used by the gateway's
 * numberer and pages and by `feegate receipt verify`, so signing and verifying share one rule.
 *
 * Canonical form (docs/receipts.md): the receipt object without "signature", "url",
 * "pdf_url" and "adjustments", keys sorted, no whitespace, UTF-8 unescaped, as Python's
 * json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) writes it.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

#define RECEIPT_KEY_ID_SIZE 24    /* "fg-" + 16 hex + NUL, rounded up */
#define RECEIPT_PUBLIC_B64_SIZE 48 /* base64url of 32 bytes is 43 characters */
#define RECEIPT_SIG_B64_SIZE 96    /* base64url of 64 bytes is 86 characters */

struct receipt_key; /* a private signing key, opaque */

/* 200000 -> "Hai trăm nghìn đồng". amount >= 0. Returns false when out is too small. */
bool receipt_amount_words(int64_t amount, char *out, size_t cap) WARN_UNUSED;

/* The canonical form of a receipt object (caller frees), or NULL when it is not an object. */
char *receipt_canonical(const json_t *receipt) WARN_UNUSED;

/* Loads an Ed25519 private key (PEM). On failure returns NULL with the reason in err. */
struct receipt_key *receipt_key_load(const char *path, char *err, size_t errlen) WARN_UNUSED;
/* Writes a new Ed25519 private key as PEM (mode 0600); false when path exists or on error. */
bool receipt_key_generate(const char *path, char *err, size_t errlen) WARN_UNUSED;
void receipt_key_free(struct receipt_key *k);
const char *receipt_key_id(const struct receipt_key *k);      /* "fg-" + 16 hex of sha256(public key) */
const char *receipt_key_public(const struct receipt_key *k);  /* base64url raw public key */

/* Completes a numbered receipt (adds amount_in_words and key_id), signs its canonical form and
 * sets "signature". */
bool receipt_sign(const struct receipt_key *k, json_t *receipt) WARN_UNUSED;
/* True when receipt's "signature" verifies over its canonical form with the base64url raw
 * Ed25519 public key. */
bool receipt_verify(const json_t *receipt, const char *public_b64) WARN_UNUSED;

/* Signs one numbered receipt (body_text: its unsigned JSON) and appends {code, body, key_id,
 * signature} to batch, the argument of feegate_receipts_sign (the body is saved without the
 * signature, which has its own column). */
bool receipt_sign_into(const struct receipt_key *k, const char *code, const char *body_text, json_t *batch) WARN_UNUSED;

/* base64url (padding optional) -> bytes; returns the length, or -1 when malformed or too long. */
long receipt_b64url_decode(const char *in, unsigned char *out, size_t cap) WARN_UNUSED;

#endif
