#include "ledger/statement.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "ledger/camt053.h"
#include "lib/mem.h"
#include "lib/pgrow.h"

bool stmt_source_parse(const char *name, stmt_source *out)
{
	*out = adapter_find(name);
	return *out || (name && strcmp(name, STMT_TREASURY_SOURCE) == 0);
}

const char *stmt_source_name(stmt_source s)
{
	return s ? s->name : STMT_TREASURY_SOURCE;
}

struct stmt_import {
	stmt_source source;
	char staff[37];
	size_t max_bytes;
	size_t len;
	char *who[6];     /* the audit row's actor, label, role, request id, ip, user agent */
	FILE *spool;      /* the bytes so far, in an unlinked temporary file */
	EVP_MD_CTX *sha;
	bool too_large, io_failed;
};

struct stmt_import *stmt_import_new(stmt_source source, const char *staff, size_t max_bytes)
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

void stmt_import_set_actor(struct stmt_import *im, const char *const who[6])
{
	for (size_t i = 0; i < ARRAY_LEN(im->who); i++) {
		free(im->who[i]);
		im->who[i] = who[i] ? xstrdup(who[i]) : NULL;
	}
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
	for (size_t i = 0; i < ARRAY_LEN(im->who); i++)
		free(im->who[i]);
	free(im);
}

/* ---- COPY of the lines into statement_staging, in PostgreSQL's binary format ---- */

/* The binary COPY format: a signature, flags and an empty header extension; per row the field
 * count, then each field as a length (-1 for NULL) and its bytes; integers in network order;
 * timestamptz as microseconds since 2000-01-01 UTC. The server then parses nothing but UTF-8. */
static const char copy_signature[11] = "PGCOPY\n\377\r\n";
#define COPY_FIELDS 12
#define PG_EPOCH 946684800 /* 2000-01-01T00:00:00Z in Unix time */

/* The spooled file is mapped whole; the pages the parser has left behind are given back every
 * RELEASE_STEP bytes, so the importer's memory does not grow with the file. */
#define RELEASE_STEP (4u << 20)

struct copier {
	PGconn *conn;
	stmt_source source;
	const char *map;      /* the spooled file */
	size_t map_len;
	const char *cursor;   /* the start of physical line cursor_line */
	size_t cursor_line;
	size_t released;      /* bytes from map given back to the kernel */
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

static void copy_put(struct copier *c, const void *s, size_t len)
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

static void copy_be(struct copier *c, uint64_t v, size_t bytes)
{
	unsigned char b[8];
	for (size_t i = 0; i < bytes; i++)
		b[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	copy_put(c, b, bytes);
}

static void copy_text(struct copier *c, const char *s)
{
	size_t len = strlen(s);
	copy_be(c, (uint32_t)len, 4);
	copy_put(c, s, len);
}

static void copy_int8(struct copier *c, int64_t v)
{
	copy_be(c, 8, 4);
	copy_be(c, (uint64_t)v, 8);
}

/* at: Unix seconds, or 0 for NULL */
static void copy_time(struct copier *c, time_t at)
{
	if (at <= 0) {
		copy_be(c, UINT32_MAX, 4); /* -1: NULL */
		return;
	}
	copy_int8(c, ((int64_t)at - PG_EPOCH) * 1000000);
}

static void copy_row(struct copier *c, int64_t line, const char *kind, const char *bank, const char *ref,
		     const char *txn, const char *refund_ref, const char *refund_txn, int64_t amount, int64_t fee,
		     time_t at, const char *account, const char *content)
{
	copy_be(c, COPY_FIELDS, 2);
	copy_be(c, 4, 4);
	copy_be(c, (uint32_t)line, 4);
	copy_text(c, kind);
	copy_text(c, bank);
	copy_text(c, ref);
	copy_text(c, txn);
	copy_text(c, refund_ref);
	copy_text(c, refund_txn);
	copy_int8(c, amount);
	copy_int8(c, fee);
	copy_time(c, at);
	copy_text(c, account);
	copy_text(c, content);
}

/* The parser has read every line before line (its records begin on physical lines): give back
 * the pages before it. */
static void release_before(struct copier *c, size_t line)
{
	const char *end = c->map + c->map_len;
	while (c->cursor_line < line && c->cursor < end) {
		const char *nl = memchr(c->cursor, '\n', (size_t)(end - c->cursor));
		c->cursor = nl ? nl + 1 : end;
		c->cursor_line++;
	}
	size_t done = (size_t)(c->cursor - c->map);
	if (done - c->released < RELEASE_STEP)
		return;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t upto = done / page * page;
	if (upto > c->released && madvise((char *)c->map + c->released, upto - c->released, MADV_DONTNEED) == 0)
		c->released = upto;
}

static bool settlement_line(void *ctx, const adapter_settlement_line *l)
{
	struct copier *c = ctx;
	release_before(c, l->line_no);
	const char *kind = l->kind == ADAPTER_SETTLE_REFUND ? "refund" : c->source->transfer ? "credit" : "payment";
	copy_row(c, (int64_t)l->line_no, kind, stmt_source_name(c->source), l->bank_order_ref, l->bank_txn_id,
		 l->refund_ref, l->refund_txn_id, l->amount, l->fee, l->at, l->account_no, l->content);
	return !c->failed;
}

static bool camt_line(void *ctx, const struct camt_line *l)
{
	struct copier *c = ctx;
	struct tm tm = {0};
	time_t booked = 0;
	if (l->booked[0] && strptime(l->booked, "%Y-%m-%d", &tm))
		booked = timegm(&tm); /* the booking day, at 00:00 UTC */
	copy_row(c, l->line, l->credit ? "credit" : "debit", "treasury", "", l->ref, "", "", l->amount, 0, booked, "",
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

/* the statement's record (feegate_statement_json), and whether this import created it */
struct record_row {
	bool r_created;
	const char *r_record;
};
static const struct pg_col record_cols[] = {PG_COL(struct record_row, r_record, PG_TEXT)};
static const struct pg_col imported_cols[] = {
	PG_COL(struct record_row, r_created, PG_BOOL),
	PG_COL(struct record_row, r_record, PG_TEXT),
};

static void record_from(const char *record, struct stmt_result *out)
{
	out->record = xstrdup(record);
	const char *id = strstr(out->record, "\"id\" : \"");
	size_t skip = 8;
	if (!id) {
		id = strstr(out->record, "\"id\":\"");
		skip = 6;
	}
	if (id)
		snprintf(out->id, sizeof(out->id), "%.36s", id + skip);
}

/* The import's audit row, in the caller's transaction (or as a statement of its own). */
static bool audit_import(struct stmt_import *im, PGconn *conn, const char *statement_id, struct stmt_result *out)
{
	bool cli = !im->who[2];
	const char *p[8] = {im->who[0], cli ? "command line" : im->who[1], cli ? "operator" : im->who[2], statement_id,
			    im->who[3], im->who[4], im->who[5], stmt_source_name(im->source)};
	PGresult *r = PQexecParams(conn,
				   "SELECT feegate_audit($1::uuid, $2, $3, 'statement.import', $4, 'ok', $5, $6, $7, $8)",
				   8, NULL, p, NULL, NULL, 0);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		snprintf(out->message, sizeof(out->message), "database: %s", PQresultErrorMessage(r));
	PQclear(r);
	return ok;
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
		snprintf(out->field, sizeof(out->field), !im->source ? "Document" : "line 1");
		snprintf(out->message, sizeof(out->message), "the file is empty");
		goto done;
	}
	map = mmap(NULL, im->len, PROT_READ, MAP_PRIVATE, fileno(im->spool), 0);
	if (map == MAP_FAILED) {
		snprintf(out->message, sizeof(out->message), "could not map the spooled file");
		goto done;
	}
	madvise(map, im->len, MADV_SEQUENTIAL);

	/* The joins of a million lines want memory on the server (this connection is the import's
	 * own; temp_buffers only takes before the session's first temporary table). */
	PQclear(PQexec(conn, "SET temp_buffers = '256MB'"));
	PQclear(PQexec(conn, "SET work_mem = '256MB'"));
	PQclear(PQexec(conn, "SET jit = off")); /* compiling the matching's plan costs more than it saves */

	/* The same bytes again: the first import's record, nothing changed. */
	const char *p1[1] = {sha};
	r = PQexecParams(conn, "SELECT feegate_statement_json(s) AS r_record FROM statements s WHERE s.sha256 = $1", 1,
			 NULL, p1, NULL, NULL, 0);
	struct record_row rec;
	if (PQresultStatus(r) != PGRES_TUPLES_OK || (PQntuples(r) == 1 && !PG_ROW(r, 0, record_cols, &rec))) {
		snprintf(out->message, sizeof(out->message), "database: %s", PQresultErrorMessage(r));
		goto done;
	}
	if (PQntuples(r) == 1) {
		record_from(rec.r_record, out);
		if (!audit_import(im, conn, out->id, out)) {
			free(out->record);
			out->record = NULL;
			goto done;
		}
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
	    !exec_ok(conn, "COPY statement_staging FROM STDIN (FORMAT binary)", PGRES_COPY_IN, out))
		goto done;

	c = xcalloc(1, sizeof(*c));
	c->conn = conn;
	c->source = im->source;
	c->map = map;
	c->map_len = im->len;
	c->cursor = map;
	c->cursor_line = 1;
	copy_put(c, copy_signature, sizeof(copy_signature));
	copy_be(c, 0, 4); /* flags */
	copy_be(c, 0, 4); /* header extension length */
	char account[64] = "", day[11] = "";
	int64_t lines = 0, total = 0;
	bool parsed;
	if (!im->source) {
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
		const adapter *a = im->source;
		adapter_config cfg = {0};
		cfg.merchant_id = a && a->env_merchant_id ? getenv(a->env_merchant_id) : NULL;
		if (cfg.merchant_id && !*cfg.merchant_id)
			cfg.merchant_id = NULL;
		adapter_settlement_summary sum;
		adapter_error err;
		/* one pass: a file refused at its trailer ends the COPY with an error, storing nothing */
		parsed = a && adapter_stream_settlement(a, &cfg, map, im->len, settlement_line, c, &sum, &err) == ADAPTER_OK;
		if (!parsed && !c->failed) {
			snprintf(out->field, sizeof(out->field), "line %zu", err.line ? err.line : (size_t)1);
			snprintf(out->message, sizeof(out->message), "%s", err.message);
		}
		snprintf(day, sizeof(day), "%.4s-%.2s-%.2s", sum.business_day, sum.business_day + 4, sum.business_day + 6);
		lines = sum.lines;
		total = sum.total;
	}
	copy_be(c, UINT16_MAX, 2); /* the trailer: -1 */
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

	if (!im->source) {
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
	struct record_row imported;
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || !PG_ROW(r, 0, imported_cols, &imported)) {
		snprintf(out->message, sizeof(out->message), "database: %s", PQresultErrorMessage(r));
		goto done;
	}
	bool created = imported.r_created;
	record_from(imported.r_record, out);
	PQclear(r);
	r = NULL;
	if (!audit_import(im, conn, out->id, out) || !exec_ok(conn, "COMMIT", PGRES_COMMAND_OK, out)) {
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
