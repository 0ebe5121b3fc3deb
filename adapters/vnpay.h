/* VNPAY 2.1.0: the signed redirect, IPN and return checks, and the merchant API
 * (querydr, refund). banksim uses the same functions for the bank's side. */
#ifndef FEEGATE_ADAPTERS_VNPAY_H
#define FEEGATE_ADAPTERS_VNPAY_H

#include <stdbool.h>
#include <time.h>

#include <jansson.h>

#include "adapters/adapter.h"
#include "adapters/params.h"
#include "lib/strbuf.h"

#define VNPAY_VERSION "2.1.0"
#define VNPAY_HASH_HEX_SIZE 129 /* hex HMAC-SHA512 and its NUL */
#define VNPAY_PAY_PATH "/paymentv2/vpcpay.html"
#define VNPAY_API_PATH "/merchant_webapi/api/transaction"
#define VNPAY_ORDER_INFO_MAX 255
/* Settlement file columns. Amounts and fees are VND x 100 as in every VNPAY
 * message; TransactionType 01 is a payment, 02 a full and 03 a partial refund. */
#define VNPAY_SETTLEMENT_HEADER \
	"TmnCode,TransactionType,TxnRef,TransactionNo,RefundRequestId,RefundTransactionNo,Amount,Fee,PayDate"

extern const adapter vnpay_adapter;

typedef enum vnpay_msg {
	VNPAY_MSG_QUERYDR,
	VNPAY_MSG_REFUND,
	VNPAY_MSG_QUERYDR_RESPONSE,
	VNPAY_MSG_REFUND_RESPONSE,
} vnpay_msg;

/* The text vnp_SecureHash signs: the vnp_* parameters of p except vnp_SecureHash
 * and vnp_SecureHashType, empty ones dropped, sorted by name, name and value
 * PHP-urlencoded, joined k=v with '&'. */
void vnpay_hash_data(const params *p, struct strbuf *out);
bool vnpay_sign_params(const char *secret, const params *p, char out[VNPAY_HASH_HEX_SIZE])
	__attribute__((warn_unused_result));
/* ADAPTER_OK when p carries a valid vnp_SecureHash; ADAPTER_MALFORMED when a
 * vnp_* name is repeated. */
adapter_rc vnpay_verify_params(const char *secret, const params *p) __attribute__((warn_unused_result));
/* Sorts p and returns its query string with vnp_SecureHash appended (malloc'ed). */
char *vnpay_signed_query(const char *secret, params *p) __attribute__((warn_unused_result));

/* The merchant API's '|'-joined text and its signature, over the fields docs/openapi.yaml
 * lists for each message (vnp_-prefixed names in obj; a missing field counts as ""). */
bool vnpay_api_hash_data(vnpay_msg kind, const json_t *obj, struct strbuf *out) __attribute__((warn_unused_result));
bool vnpay_api_sign(const char *secret, vnpay_msg kind, const json_t *obj,
		    char out[VNPAY_HASH_HEX_SIZE]) __attribute__((warn_unused_result));
adapter_rc vnpay_api_verify(const char *secret, vnpay_msg kind, const json_t *obj)
	__attribute__((warn_unused_result));

/* yyyyMMddHHmmss in GMT+7. */
void vnpay_format_date(time_t t, char out[15]);
/* vnp_OrderInfo from free text: ASCII letters, digits and spaces, at most 255. */
void vnpay_order_info(const char *text, char *out, size_t cap);
/* The IPN answer: 200 with {"RspCode","Message"}. */
void vnpay_ipn_reply(adapter_outcome outcome, adapter_reply *out);

#endif
