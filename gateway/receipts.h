#ifndef FEEGATE_RECEIPTS_H
#define FEEGATE_RECEIPTS_H
/*
 * Receipts in the gateway: the numberer (worker 0: numbers, after COMMIT, the payments the
 * ledger recorded since its cursor, then signs them) and the routes that show receipts.
 */
#include <jansson.h>
#include <libpq-fe.h>

#include "lib/http.h"

/* Worker 0: loads FEEGATE_RECEIPT_KEY, publishes its public key, starts the numberer. */
void receipts_start(void);
void receipts_stop(void);

/* GET /v1/orders/{id}/receipt (owning client) */
void receipts_for_order(struct http_req *req);
/* GET /receipts/{code}, /receipts/{code}.pdf, /receipts/{code}.json (public) */
void receipts_public(struct http_req *req);
/* GET /.well-known/feegate-receipt-keys */
void receipts_keys(struct http_req *req);

/* The receipt JSON of a feegate_receipt_get row: the signed body, signature, url, pdf_url,
 * adjustments. */
json_t *receipts_doc(PGresult *res, int row);

#endif
