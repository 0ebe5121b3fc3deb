#ifndef FEEGATE_NOTIFY_H
#define FEEGATE_NOTIFY_H
/* Applying what a bank says about a payment: from its notification or from a status query. */
#include <jansson.h>

#include "adapters/adapter.h"

typedef void (*notify_done_fn)(void *arg, adapter_outcome outcome, const char *order_id, const char *order_status);

void notify_init(void);
int notify_pending(void);
void notify_flush(void);
/* The batch item for a verified transaction; source is "notification" or "query". */
json_t *notify_item(const char *bank, const adapter_txn *txn, const char *raw, size_t raw_len, const char *source);
/* Applies item (stolen) in the next batch; done gets the outcome after COMMIT. */
void notify_apply(json_t *item, notify_done_fn done, void *arg);

#endif
