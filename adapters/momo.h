/* MoMo payment gateway v2 (captureWallet): create, IPN and redirect checks,
 * query and refund. banksim uses the same functions for the wallet's side. */
#ifndef FEEGATE_ADAPTERS_MOMO_H
#define FEEGATE_ADAPTERS_MOMO_H

#include <stdbool.h>

#include <jansson.h>

#include "adapters/adapter.h"
#include "lib/strbuf.h"

#define MOMO_CREATE_PATH "/v2/gateway/api/create"
#define MOMO_QUERY_PATH "/v2/gateway/api/query"
#define MOMO_REFUND_PATH "/v2/gateway/api/refund"
#define MOMO_SIG_HEX_SIZE 65 /* hex HMAC-SHA256 and its NUL */
/* Settlement file columns: type is payment or refund; a refund line names the
 * payment (orderId, transId) and the refund (refundOrderId, refundTransId);
 * amounts in VND; responseTime in Unix milliseconds. */
#define MOMO_SETTLEMENT_HEADER \
	"partnerCode,type,orderId,transId,refundOrderId,refundTransId,amount,fee,responseTime"

extern const adapter momo_adapter;

typedef enum momo_msg {
	MOMO_MSG_CREATE,
	MOMO_MSG_CREATE_RESPONSE,
	MOMO_MSG_QUERY,
	MOMO_MSG_QUERY_RESPONSE, /* signed like the IPN */
	MOMO_MSG_REFUND,
	MOMO_MSG_REFUND_RESPONSE,
	MOMO_MSG_IPN,            /* also the redirect's query parameters */
} momo_msg;

/* "create", "ipn", "query-response"...; false for an unknown name. */
bool momo_msg_from_name(const char *name, momo_msg *out) __attribute__((warn_unused_result));

/* k=v&... over the keys of kind in MoMo's order; accessKey is access_key, every
 * other value is obj's field as raw text ("" when missing). */
bool momo_signature_data(momo_msg kind, const char *access_key, const json_t *obj, struct strbuf *out)
	__attribute__((warn_unused_result));
bool momo_sign(const char *secret, const char *access_key, momo_msg kind, const json_t *obj,
	       char out[MOMO_SIG_HEX_SIZE]) __attribute__((warn_unused_result));
/* Checks obj's "signature" field. */
adapter_rc momo_verify(const char *secret, const char *access_key, momo_msg kind, const json_t *obj)
	__attribute__((warn_unused_result));
/* Whether a resultCode means the wallet has not finished. */
bool momo_result_pending(int64_t result_code);
/* The IPN answer: 204 once applied or replayed, 401 bad signature, 400 wrong amount. */
void momo_ipn_reply(adapter_outcome outcome, adapter_reply *out);

#endif
