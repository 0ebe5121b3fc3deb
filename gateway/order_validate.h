#ifndef FEEGATE_ORDER_VALIDATE_H
#define FEEGATE_ORDER_VALIDATE_H
/* The field rules of POST /v1/orders (docs/openapi.yaml), pure so the unit tests can reach them. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "adapters/adapter.h"
#include "lib/errors.h"
#include "lib/util.h"

struct order_input {
	const char *reference;
	const char *agency;
	const char *description;
	int64_t amount;
	const char *procedure; /* NULL when absent */
	const char *return_url;
	int expires_in;   /* seconds */
	json_t *items;    /* borrowed from the parsed body; NULL when absent */
	json_t *payer;
	json_t *metadata;
};

struct validation_error {
	enum err err;
	char field[48];
	char message[200];
};

/* Checks every rule except "agency is one this client may bill" (needs the caller). */
bool order_validate(json_t *body, struct order_input *out, struct validation_error *e) WARN_UNUSED;

/* An amount of money a request may name (an order, an item, a refund): an integer number of VND
 * from 1 to ADAPTER_AMOUNT_MAX, the one limit every bank's adapter applies too. */
bool order_amount_valid(const json_t *v) WARN_UNUSED;
#define ORDER_AMOUNT_RULE "an integer number of VND, 1 to %lld"
#define ORDER_AMOUNT_LIMIT ((long long)ADAPTER_AMOUNT_MAX)

/* Idempotency-Key: 1-255 printable ASCII. */
bool idempotency_key_valid(const char *key) WARN_UNUSED;

#endif
