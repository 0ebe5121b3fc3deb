#ifndef FEEGATE_LEDGER_ACCOUNTS_H
#define FEEGATE_LEDGER_ACCOUNTS_H
/*
 * The ledger. Its data and its rules are SQL, in migrations/functions/ledger.sql: accounts
 * (feegate_account_id), posting a transfer with its two entries (feegate_post, the batch
 * writers feegate_ledger_write and feegate_ledger_flush_with), balances, and the hash chain
 * that links each transfer to the one before. The C beside it here: the read API (this
 * header), the invariants and the chain walk of `feegate ledger check` (check.h), bank
 * statements and their import (statement.h, camt053.h), and settlement reports (report.h).
 */
#include "lib/http.h"

void ledger_accounts(struct http_req *req); /* GET /v1/ledger/accounts */
void ledger_account(struct http_req *req);  /* GET /v1/ledger/accounts/{id}, a page of its entries */

#endif
