#ifndef FEEGATE_DB_H
#define FEEGATE_DB_H
/* Every SQL statement the gateway runs, prepared on each pooled connection by name. */
#include "lib/pgpool.h"

/* Column order of ORDER_COLUMNS, read by order_from_row(). */
enum order_col {
	OC_ID, OC_REFERENCE, OC_AGENCY, OC_DESCRIPTION, OC_AMOUNT, OC_CURRENCY, OC_STATUS, OC_ITEMS,
	OC_PROCEDURE, OC_PAYER, OC_METADATA, OC_CHECKOUT_TOKEN, OC_RETURN_URL, OC_CREATED_MS,
	OC_EXPIRES_MS, OC_ATTEMPTS, OC__COUNT
};

extern const struct pg_statement db_statements[];
extern const int db_statement_count;

#endif
