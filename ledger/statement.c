#include "ledger/statement.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "adapters/adapter.h"
#include "ledger/camt053.h"
#include "lib/mem.h"

static const char *const source_names[] = {"vnpay", "momo", "vietqr", "camt053"};

bool stmt_source_parse(const char *name, enum stmt_source *out)
{
	for (size_t i = 0; name && i < ARRAY_LEN(source_names); i++) {
		if (strcmp(name, source_names[i]) == 0) {
			*out = (enum stmt_source)i;
			return true;
		}
	}
	return false;
}

const char *stmt_source_name(enum stmt_source s)
{
	return source_names[s];
}

struct stmt_import {
	enum stmt_source source;
	char staff[37];
	size_t max_bytes;
	size_t len;
	FILE *spool;      /* the bytes so far, in an unlinked temporary file */
	EVP_MD_CTX *sha;
	bool too_large, io_failed;
};

struct stmt_import *stmt_import_new(enum stmt_source source, const char *staff, size_t max_bytes)
{
	struct stmt_import *im = xcalloc(1, sizeof(*im));
	im->source = source;
	if (staff)
		snprintf(im->staff, sizeof(im->staff), "%s", staff);
	im->max_bytes = max_bytes;
	im->spool = tmpfile();
	im->sha = EVP_MD_CTX_new();
	if (!im->spool || !im->sha || EVP_DigestInit_ex(im->sha, EVP_sha256(), NULL) != 1)
		im->io_failed = true;
	return im;
}

bool stmt_import_feed(struct stmt_import *im, const void *data, size_t len)
{
	if (im->too_large || im->io_failed)
		return false;
	if (len > im->max_bytes - im->len) {
		im->too_large = true;
		return false;
	}
	if (fwrite(data, 1, len, im->spool) != len || EVP_DigestUpdate(im->sha, data, len) != 1) {
		im->io_failed = true;
		return false;
	}
	im->len += len;
	return true;
}

void stmt_import_free(struct stmt_import *im)
{
	if (!im)
		return;
	if (im->spool)
		fclose(im->spool);
	EVP_MD_CTX_free(im->sha);
	free(im);
}

/* ---- COPY of the lines into statement_staging ---- */

struct copier {
	PGconn *conn;
	enum stmt_source source;
	char buf[64 * 1024]; /* rows are sent in blocks of about this size */
	size_t n;
	bool failed;
	char error[200];
};

static void copy_flush(struct copier *c)
{
	if (c->n && !c->failed && PQputCopyData(c->conn, c->buf, (int)c->n) != 1) {
		c->failed = true;
		snprintf(c->error, sizeof(c->error), "COPY failed: %s", PQerrorMessage(c->conn));
	}
	c->n = 0;
}

static void copy_put(struct copier *c, const char *s, size_t len)
{
	if (c->n + len > sizeof(c->buf))
		copy_flush(c);
	if (len > sizeof(c->buf)) {
		c->failed = true;
		return;
	}
	memcpy(c->buf + c->n, s, len);
	c->n += len;
}

/* One text-format COPY field: backslash, tab, newline and CR escaped. */
static void copy_field(struct copier *c, const char *s, bool last)
{
	char tmp[2 * 512 + 2];
	size_t n = 0;
	for (; *s && n < sizeof(tmp) - 3; s++) {
		char e = *s == '\\' ? '\\' : *s == '\t' ? 't' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : 0;
		if (e) {
			tmp[n++] = '\\';
			tmp[n++] = e;
		} else {
			tmp[n++] = *s;
		}
	}
	tmp[n++] = last ? '\n' : '\t';
	copy_put(c, tmp, n);
}

static void copy_int(struct copier *c, int64_t v, bool last)
{
	char t[24];
	snprintf(t, sizeof(t), "%lld", (long long)v);
	copy_field(c, t, last);
}

static void copy_row(struct copier *c, int64_t line, const char *kind, const char *bank, const char *ref,
		     const char *txn, const char *refund_ref, const char *refund_txn, int64_t amount, int64_t fee,
		     const char *at, const char *account, const char *content)
{
	copy_int(c, line, false);
	copy_field(c, kind, false);
	copy_field(c, bank, false);
	copy_field(c, ref, false);
	copy_field(c, txn, false);
	copy_field(c, refund_ref, false);
	copy_field(c, refund_txn, false);
	copy_int(c, amount, false);
	copy_int(c, fee, false);
	if (at && *at)
		copy_field(c, at, false);
	else
		copy_put(c, "\\N\t", 3);
	copy_field(c, account, false);
	copy_field(c, content, true);
}

static bool settlement_line(void *ctx, const adapter_settlement_line *l)
{
	struct copier *c = ctx;
	char at[32] = "";
	struct tm tm;
	if (l->at > 0 && gmtime_r(&l->at, &tm))
		strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S+00", &tm);
	const char *kind = l->kind == ADAPTER_SETTLE_REFUND ? "refund" : c->source == STMT_VIETQR ? "credit" : "payment";
	copy_row(c, (int64_t)l->line_no, kind, stmt_source_name(c->source), l->bank_order_ref, l->bank_txn_id,
		 l->refund_ref, l->refund_txn_id, l->amount, l->fee, at, l->account_no, l->content);
	return !c->failed;
}

static bool camt_line(void *ctx, const struct camt_line *l)
{
	struct copier *c = ctx;
	copy_row(c, l->line, l->credit ? "credit" : "debit", "treasury", "", l->ref, "", "", l->amount, 0, l->booked, "",
		 l->remittance);
	return !c->failed;
}

/* ---- finish ---- */

static bool exec_ok(PGconn *conn, const char *sql, ExecStatusType want, struct stmt_result *out)
{
	PGresult *r = PQexec(conn, sql);
	bool ok = PQresultStatus(r) == want;
	if (!ok)
		snprintf(out->message, sizeof(out->message), "database: %s", PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

static void record_from(PGresult *r, int col, struct stmt_result *out)
{
	out->record = xstrdup(PQgetvalue(r, 0, col));
	const char *id = strstr(out->record, "\"id\" : \"");
	size_t skip = 8;
	if (!id) {
		id = strstr(out->record, "\"id\":\"");
		skip = 6;
	}
	if (id)
		snprintf(out->id, sizeof(out->id), "%.36s", id + skip);
}

void stmt_import_finish(struct stmt_import *im, PGconn *conn, struct stmt_result *out)
{
	memset(out, 0, sizeof(*out));
	out->outcome = STMT_FAILED;
	void *map = MAP_FAILED;
	bool in_tx = false;
	struct copier *c = NULL;
	PGresult *r = NULL;
	char sha[65];
	unsigned char digest[32];
	unsigned int dlen = 0;

	if (im->too_large) {
		out->outcome = STMT_TOO_LARGE;
		snprintf(out->message, sizeof(out->message), "the file is over %zu bytes", im->max_bytes);
		goto done;
	}
	if (im->io_failed || fflush(im->spool) != 0 || EVP_DigestFinal_ex(im->sha, digest, &dlen) != 1 || dlen != 32) {
		snprintf(out->message, sizeof(out->message), "could not spool the file");
		goto done;
	}
	util_hex(digest, 32, sha);
	if (im->len == 0) {
		out->outcome = STMT_MALFORMED;
		snprintf(out->field, sizeof(out->field), im->source == STMT_CAMT053 ? "Document" : "line 1");
		snprintf(out->message, sizeof(out->message), "the file is empty");
		goto done;
	}
	map = mmap(NULL, im->len, PROT_READ, MAP_PRIVATE, fileno(im->spool), 0);
	if (map == MAP_FAILED) {
		snprintf(out->message, sizeof(out->message), "could not map the spooled file");
		goto done;
	}
	madvise(map, im->len, MADV_SEQUENTIAL);

	/* The same bytes again: the first import's record, nothing changed. */
	const char *p1[1] = {sha};
	r = PQexecParams(conn, "SELECT feegate_statement_json(s) FROM statements s WHERE s.sha256 = $1", 1, NULL, p1,
			 NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(out->message, sizeof(out->message), "database: %s", PQresultErrorMessage(r));
		goto done;
	}
	if (PQntuples(r) == 1) {
		record_from(r, 0, out);
		out->outcome = STMT_EXISTING;
		goto done;
	}
	PQclear(r);
	r = NULL;

	if (!exec_ok(conn, "BEGIN", PGRES_COMMAND_OK, out))
		goto done;
	in_tx = true;
	if (!exec_ok(conn,
		     "CREATE TEMP TABLE IF NOT EXISTS statement_staging (line int, kind text, bank text, "
		     "bank_order_ref text, bank_txn_id text, refund_ref text, refund_txn_id text, amount bigint, "
		     "fee bigint, at timestamptz, account_no text, content text) ON COMMIT DELETE ROWS",
		     PGRES_COMMAND_OK, out) ||
	    !exec_ok(conn, "TRUNCATE statement_staging", PGRES_COMMAND_OK, out) ||
	    !exec_ok(conn, "COPY statement_staging FROM STDIN", PGRES_COPY_IN, out))
		goto done;

	c = xcalloc(1, sizeof(*c));
	c->conn = conn;
	c->source = im->source;
	char account[64] = "", day[11] = "";
	int64_t lines = 0, total = 0;
	bool parsed;
	if (im->source == STMT_CAMT053) {
		struct camt_summary sum;
		struct camt_error err;
		parsed = camt053_parse(map, im->len, camt_line, c, &sum, &err);
		if (!parsed && !c->failed) {
			snprintf(out->field, sizeof(out->field), "%s", err.path);
			snprintf(out->message, sizeof(out->message), "%s", err.message);
		}
		snprintf(account, sizeof(account), "%s", sum.account);
		snprintf(day, sizeof(day), "%s", sum.business_date);
		lines = sum.lines;
		total = sum.total;
	} else {
		const adapter *a = adapter_find(stmt_source_name(im->source));
		adapter_config cfg = {0};
		cfg.merchant_id = a && a->env_merchant_id ? getenv(a->env_merchant_id) : NULL;
		if (cfg.merchant_id && !*cfg.merchant_id)
			cfg.merchant_id = NULL;
		adapter_settlement_summary sum;
		adapter_error err;
		parsed = a && adapter_parse_settlement(a, &cfg, map, im->len, settlement_line, c, &sum, &err) == ADAPTER_OK;
		if (!parsed && !c->failed) {
			snprintf(out->field, sizeof(out->field), "line %zu", err.line ? err.line : (size_t)1);
			snprintf(out->message, sizeof(out->message), "%s", err.message);
		}
		snprintf(day, sizeof(day), "%.4s-%.2s-%.2s", sum.business_day, sum.business_day + 4, sum.business_day + 6);
		lines = sum.lines;
		total = sum.total;
	}
	copy_flush(c);
	if (c->failed || !parsed) {
		/* end the COPY with an error, so the transaction can be rolled back */
		if (c->failed)
			snprintf(out->message, sizeof(out->message), "%s", c->error);
		else
			out->outcome = STMT_MALFORMED;
		PQputCopyEnd(conn, "refused");
		PGresult *e;
		while ((e = PQgetResult(conn)) != NULL)
			PQclear(e);
		goto done;
	}
	if (PQputCopyEnd(conn, NULL) != 1) {
		snprintf(out->message, sizeof(out->message), "COPY failed: %s", PQerrorMessage(conn));
		goto done;
	}
	r = PQgetResult(conn);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(out->message, sizeof(out->message), "COPY failed: %s", PQresultErrorMessage(r));
		goto done;
	}
	PQclear(r);
	r = NULL;

	if (im->source == STMT_CAMT053) {
		const char *pa[1] = {account};
		r = PQexecParams(conn, "SELECT 1 FROM agencies WHERE account_number = $1", 1, NULL, pa, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(out->message, sizeof(out->message), "database: %s", PQresultErrorMessage(r));
			goto done;
		}
		if (PQntuples(r) == 0) {
			out->outcome = STMT_MALFORMED;
			snprintf(out->field, sizeof(out->field), "Document/BkToCstmrStmt/Stmt[1]/Acct");
			snprintf(out->message, sizeof(out->message), "account %.40s is no agency's collection account",
				 account);
			goto done;
		}
		PQclear(r);
		r = NULL;
	}

	char lines_s[24], total_s[24];
	snprintf(lines_s, sizeof(lines_s), "%lld", (long long)lines);
	snprintf(total_s, sizeof(total_s), "%lld", (long long)total);
	const char *pi[7] = {stmt_source_name(im->source), sha, account, day, lines_s, total_s,
			     im->staff[0] ? im->staff : NULL};
	r = PQexecParams(conn,
			 "SELECT r_created, r_record FROM feegate_statement_import($1, $2, $3, $4::date, $5::int, "
			 "$6::bigint, $7::uuid)",
			 7, NULL, pi, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		snprintf(out->message, sizeof(out->message), "database: %s", PQresultErrorMessage(r));
		goto done;
	}
	bool created = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	record_from(r, 1, out);
	PQclear(r);
	r = NULL;
	if (!exec_ok(conn, "COMMIT", PGRES_COMMAND_OK, out)) {
		free(out->record);
		out->record = NULL;
		in_tx = false;
		goto done;
	}
	in_tx = false;
	out->outcome = created ? STMT_CREATED : STMT_EXISTING;
done:
	if (r)
		PQclear(r);
	if (in_tx) {
		PGresult *rb = PQexec(conn, "ROLLBACK");
		PQclear(rb);
	}
	free(c);
	if (map != MAP_FAILED)
		munmap(map, im->len);
}
