#ifndef FEEGATE_REFUNDS_H
#define FEEGATE_REFUNDS_H
#include <stdint.h>
#include <time.h>

struct refund_to_send {
	const char *refund_id, *refund_ref, *bank, *bank_order_ref, *bank_txn_id, *reason, *created_by;
	int64_t amount, paid;
	time_t attempt_created;
};

/* refund_json: the refund after the bank's verdict was recorded, or NULL when it stays pending
 * (no answer, or a bank without a refund API). Valid only during the call. */
typedef void (*refund_sent_fn)(void *arg, const char *refund_json);

void refund_send(const struct refund_to_send *r, refund_sent_fn done, void *arg);

#endif
