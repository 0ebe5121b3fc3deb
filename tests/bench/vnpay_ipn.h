/*
 * Signed VNPAY payment notifications (IPN) for the load generator's flow scenario, built as
 * tests/bench/vnpay_ipn.py builds them and as docs/openapi.yaml says: hex HMAC-SHA512 with the hash
 * secret over the vnp_* parameters except vnp_SecureHash and vnp_SecureHashType, empty ones
 * dropped, sorted by name, name and value each encoded as PHP's urlencode does (spaces as +),
 * joined k=v with &.
 *
 * Written apart from the gateway's adapters/vnpay.c on purpose, so that the benchmark does not
 * sign with the code it measures; tests/unit/test_loadgen.c checks that both agree, and that
 * the result is byte for byte what vnpay_ipn.py prints.
 *
 * Every function writes into a buffer of the caller's and fails (false) rather than cut text.
 */
#ifndef FEEGATE_BENCH_VNPAY_IPN_H
#define FEEGATE_BENCH_VNPAY_IPN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define IPN_MAX_PARAMS 32

struct ipn_param {
	const char *name;
	const char *value;
};

/* A successful payment as the bank notifies it. */
struct ipn_payment {
	const char *tmn_code;       /* vnp_TmnCode: the merchant's terminal */
	const char *txn_ref;        /* vnp_TxnRef: the attempt's bank_order_ref */
	const char *amount;         /* vnp_Amount: VND x 100, as the pay URL carries it */
	const char *transaction_no; /* vnp_TransactionNo: the bank's id, unique per payment */
	const char *bank_tran_no;   /* vnp_BankTranNo */
	time_t paid_at;             /* vnp_PayDate, written in GMT+7 */
};

/* PHP's urlencode(s): letters, digits and -_. kept, space as +, every other byte as %XX. */
bool ipn_php_urlencode(const char *s, char *out, size_t cap) __attribute__((warn_unused_result));

/*
 * The value of parameter `name` in the query of `url` (after its '?'), percent-decoded with +
 * as a space. False when it is absent or empty, badly encoded, or does not fit.
 */
bool ipn_url_param(const char *url, const char *name, char *out, size_t cap) __attribute__((warn_unused_result));

/* The signed query string of fields (see the top of this file), ending &vnp_SecureHash=... */
bool ipn_signed_query(const char *secret, const struct ipn_param *fields, size_t n, char *out, size_t cap)
	__attribute__((warn_unused_result));

/* The query string of a successful IPN for p, with the fields vnpay_ipn.py sends. */
bool ipn_success_query(const char *secret, const struct ipn_payment *p, char *out, size_t cap)
	__attribute__((warn_unused_result));

#endif
