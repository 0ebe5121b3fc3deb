/* VietQR over NAPAS 247: the EMVCo merchant-presented payload a citizen scans,
 * its image, and the bank's signed credit notification. */
#ifndef FEEGATE_ADAPTERS_VIETQR_H
#define FEEGATE_ADAPTERS_VIETQR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "adapters/adapter.h"
#include "lib/strbuf.h"

#define VIETQR_GUID "A000000727"
#define VIETQR_SERVICE "QRIBFTTA" /* transfer to an account */
#define VIETQR_SIG_HEX_SIZE 65
#define VIETQR_MAX_SKEW 300       /* seconds a notification's timestamp may be off */
#define VIETQR_TLV_MAX 99
/* Settlement file (the collection accounts' credits): type is "credit", amounts
 * in VND, transaction_time ISO 8601 with offset. */
#define VIETQR_SETTLEMENT_HEADER "type,transaction_id,account_no,amount,fee,content,transaction_time"

extern const adapter vietqr_adapter;

/* CRC-16/CCITT-FALSE: polynomial 0x1021, initial 0xFFFF, no reflection, no xor. */
uint16_t vietqr_crc16(const void *data, size_t len);

typedef struct vietqr_tlv {
	char tag[3];
	const char *value; /* points into the parsed text, not NUL-terminated */
	size_t len;
} vietqr_tlv;

/* Splits text into ID(2 digits) LENGTH(2 digits) VALUE items. Fails on a
 * non-digit id or length, a value running past the end, or more than cap items. */
bool vietqr_tlv_parse(const char *text, size_t len, vietqr_tlv *out, size_t cap, size_t *n)
	__attribute__((warn_unused_result));
/* Appends one item; the value must be printable ASCII of at most 99 characters. */
bool vietqr_tlv_append(struct strbuf *out, const char *tag, const char *value, size_t len)
	__attribute__((warn_unused_result));

/* The payload for a transfer of amount VND to account number at bank BIN with
 * ref as its content; malloc'ed into *out. */
adapter_rc vietqr_build_payload(const char *bin, const char *account, int64_t amount,
				const char *ref, char **out) __attribute__((warn_unused_result));

typedef struct vietqr_info {
	char bin[16];
	char account[ADAPTER_ACCOUNT_CAP];
	int64_t amount;                    /* 0 when the payload carries none */
	char ref[ADAPTER_REF_CAP];         /* tag 62/08; empty when absent */
} vietqr_info;

/* Checks the CRC and the VietQR structure and extracts the transfer. */
adapter_rc vietqr_parse_payload(const char *payload, vietqr_info *out) __attribute__((warn_unused_result));

/* An SVG document of the QR code for text (libqrencode, level M), malloc'ed. */
adapter_rc vietqr_svg(const char *text, char **out) __attribute__((warn_unused_result));
/* The short name of the Vietnamese bank with this NAPAS BIN (6 digits), or NULL when unknown.
 * The one table of banks' BINs. */
const char *vietqr_bank_name(const char *bin);

/* hex HMAC-SHA256(secret, timestamp + "." + body). */
bool vietqr_webhook_sign(const char *secret, const char *timestamp, const char *body, size_t len,
			 char out[VIETQR_SIG_HEX_SIZE]) __attribute__((warn_unused_result));
/* ADAPTER_BAD_SIGNATURE for a missing, malformed or wrong signature and for a
 * timestamp more than VIETQR_MAX_SKEW seconds from now. */
adapter_rc vietqr_webhook_verify(const char *secret, const char *timestamp, const char *signature,
				 const char *body, size_t len, time_t now) __attribute__((warn_unused_result));

/* Transfer content upper-cased with everything but letters and digits removed
 * (Vietnamese letters are letters and keep their marks; letters of other scripts
 * are dropped). */
void vietqr_normalize(const char *content, char *out, size_t cap);
/* The matching rule is the adapter's: adapter_matches() and adapter_match_candidates(). */

/* ISO 8601 in Vietnam time ("2024-05-01T09:30:00+07:00") and its parser (any
 * offset or Z). */
void vietqr_format_time(time_t t, char out[32]);
bool vietqr_parse_time(const char *s, time_t *out) __attribute__((warn_unused_result));

#endif
