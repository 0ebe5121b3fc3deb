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
#include "lib/pgpool.h"

/* The read API's answers, for a request its caller has let through: scope is the agencies it
 * sees (a bigint[] literal, NULL for all), db the pool to ask. */
void ledger_accounts_reply(struct http_req *req, struct pg_pool *db, const char *scope); /* the accounts */
void ledger_account_reply(struct http_req *req, struct pg_pool *db, const char *scope);  /* one, a page of its entries */

#endif
