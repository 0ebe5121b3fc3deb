/* GET /v1/ledger/accounts and /v1/ledger/accounts/{id}: what the ledger holds, for staff (the
 * statements accounts_list and account_get in gateway/db.c). The caller has checked who may
 * ask and passes its agency scope. */
#include "ledger/accounts.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/config.h"
#include "lib/mem.h"
#include "lib/pgreply.h"
#include "lib/pgrow.h"
#include "lib/query.h"

/* accounts_list */
struct accounts_row {
	const char *accounts; /* a JSON array */
};
static const struct pg_col accounts_cols[] = {PG_COL(struct accounts_row, accounts, PG_TEXT)};

static void accounts_listed(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct accounts_row r;
	if (st == PG_OK && !PG_ROW(res, 0, accounts_cols, &r))
		st = PG_SQL_ERROR;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	query_reply_page(req, r.accounts);
}

void ledger_accounts_reply(struct http_req *req, struct pg_pool *db, const char *scope)
{
	if (!query_parse_list(req))
		return;
	const char *params[1] = {scope};
	pg_query(db, "accounts_list", 1, params, cfg.db_timeout_ms, accounts_listed, req);
}

struct page {
	int limit;
};

/* account_get */
struct account_row {
	const char *account, *entries; /* JSON: the account, a page of its entries */
};
static const struct pg_col account_cols[] = {
	PG_COL(struct account_row, account, PG_TEXT),
	PG_COL(struct account_row, entries, PG_TEXT),
};

static void account_got(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct page *pg = req->state;
	struct account_row r;
	if (st == PG_OK && PQntuples(res) == 1 && !PG_ROW(res, 0, account_cols, &r))
		st = PG_SQL_ERROR;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such account");
		return;
	}
	json_t *acct = json_loads(r.account, 0, NULL);
	json_t *entries = json_loads(r.entries, 0, NULL);
	json_object_set_new(acct, "entries", entries);
	json_object_set_new(acct, "next_cursor", query_next_cursor(entries, pg->limit, "id"));
	http_reply_json(req, 200, acct);
}

static const struct query_field account_query[] = {{"from", Q_DATE, NULL, 0, 0}, {"to", Q_DATE, NULL, 0, 0}, QUERY_LIST};

void ledger_account_reply(struct http_req *req, struct pg_pool *db, const char *scope)
{
	struct query q;
	if (!query_parse(req, account_query, (int)ARRAY_LEN(account_query), &q))
		return;
	char *id_end, *end;
	long long id = strtoll(req->params[0], &id_end, 10);
	bool id_ok = *req->params[0] != '\0' && *id_end == '\0' && id > 0;
	long long c = 0;
	long limit = (long)query_num(&q, "limit");
	const char *cursor = query_get(&q, "cursor");
	char from[11] = "", to[11] = "";
	if (query_get(&q, "from"))
		snprintf(from, sizeof from, "%s", query_get(&q, "from"));
	if (query_get(&q, "to"))
		snprintf(to, sizeof to, "%s", query_get(&q, "to"));
	if (cursor) {
		c = strtoll(cursor, &end, 10);
		if (*end || c <= 0) {
			query_free(&q);
			query_reply_bad_cursor(req);
			return;
		}
	}
	query_free(&q);
	if (!id_ok) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, "no such account");
		return;
	}
	struct page *pg = xcalloc(1, sizeof *pg);
	pg->limit = (int)limit;
	req->state = pg;
	req->state_free = free;
	char id_s[24], c_s[24], l_s[24];
	snprintf(id_s, sizeof id_s, "%lld", id);
	snprintf(c_s, sizeof c_s, "%lld", c);
	snprintf(l_s, sizeof l_s, "%ld", limit);
	const char *params[6] = {id_s, scope, c ? c_s : NULL, l_s, from[0] ? from : NULL, to[0] ? to : NULL};
	pg_query(db, "account_get", 6, params, cfg.db_timeout_ms, account_got, req);
}
