/*
 * Receipt commands: keygen, verify (JSON or PDF, offline against published keys), backfill
 * (receipts for payments made before receipts existed), export (a day's receipts in JSON or
 * XML with the fields of a Vietnamese fee e-receipt), and `agency receipts` (a new series).
 * Blocking libpq and I/O are fine here: no event loop runs.
 */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/cli.h"
#include "gateway/receipt.h"
#include "gateway/receipt_pdf.h"
#include "lib/mem.h"
#include "lib/pgrow.h"
#include "lib/util.h"

static const char usage[] =
	"feegate receipt keygen FILE\n"
	"       feegate receipt verify FILE [--keys FILE|URL]\n"
	"       feegate receipt backfill\n"
	"       feegate receipt export --date YYYY-MM-DD [--agency CODE] --format json|xml [--out FILE]";

/* SELECT key_id, public_key FROM receipt_keys */
struct key_row {
	const char *key_id, *public_key;
};
static const struct pg_col key_cols[] = {
	PG_COL(struct key_row, key_id, PG_TEXT),
	PG_COL(struct key_row, public_key, PG_TEXT),
};

/* feegate_receipts_backfill, feegate_receipts_sign: how many rows */
struct count_row {
	int64_t n;
};
static const struct pg_col count_cols[] = {PG_COL(struct count_row, n, PG_INT64)};

/* the receipts to sign, and a day's signed receipts */
struct receipt_row {
	const char *code, *body, *signature;
};
static const struct pg_col unsigned_cols[] = {
	PG_COL(struct receipt_row, code, PG_TEXT),
	PG_COL(struct receipt_row, body, PG_TEXT),
};
static const struct pg_col signed_cols[] = {
	PG_COL(struct receipt_row, body, PG_TEXT),
	PG_COL(struct receipt_row, signature, PG_TEXT),
};

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 65536, n = 0;
	unsigned char *buf = xmalloc(cap + 1);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* GET url (http or https, certificates verified) -> body, or NULL. */
static char *http_get(const char *url)
{
	char host[256], path[1024] = "/";
	int port;
	bool tls = strncmp(url, "https://", 8) == 0;
	const char *rest = url + (tls ? 8 : strncmp(url, "http://", 7) == 0 ? 7 : 0);
	if (rest == url || sscanf(rest, "%255[^/:]", host) != 1)
		return NULL;
	const char *p = rest + strlen(host);
	port = tls ? 443 : 80;
	if (*p == ':')
		port = atoi(p + 1);
	const char *slash = strchr(p, '/');
	if (slash)
		snprintf(path, sizeof path, "%s", slash);
	char *target = xasprintf("%s:%d", host, port);
	SSL_CTX *ctx = NULL;
	BIO *bio;
	if (tls) {
		ctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_default_verify_paths(ctx);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		bio = BIO_new_ssl_connect(ctx);
		SSL *ssl;
		BIO_get_ssl(bio, &ssl);
		SSL_set_tlsext_host_name(ssl, host);
		SSL_set1_host(ssl, host);
		BIO_set_conn_hostname(bio, target);
	} else {
		bio = BIO_new_connect(target);
	}
	free(target);
	char *body = NULL;
	if (bio && BIO_do_connect(bio) == 1) {
		BIO_printf(bio, "GET %s HTTP/1.0\r\nHost: %s\r\nAccept: application/json\r\nConnection: close\r\n\r\n", path, host);
		size_t cap = 65536, n = 0;
		char *buf = xmalloc(cap + 1);
		int got;
		while ((got = BIO_read(bio, buf + n, (int)(cap - n))) > 0) {
			n += (size_t)got;
			if (n == cap) {
				cap *= 2;
				buf = xrealloc(buf, cap + 1);
			}
		}
		buf[n] = '\0';
		char *sep = strstr(buf, "\r\n\r\n");
		if (strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 9, "200", 3) == 0 && sep)
			body = xstrdup(sep + 4);
		free(buf);
	}
	BIO_free_all(bio);
	SSL_CTX_free(ctx);
	return body;
}

/* {"keys": [{key_id, public_key}]} from --keys, or the database's receipt_keys. */
static json_t *load_keys(const char *source)
{
	if (source) {
		char *text = NULL;
		if (strncmp(source, "http://", 7) == 0 || strncmp(source, "https://", 8) == 0) {
			text = http_get(source);
		} else {
			size_t n;
			text = (char *)slurp(source, &n);
		}
		json_t *j = text ? json_loads(text, 0, NULL) : NULL;
		free(text);
		json_t *keys = json_incref(json_object_get(j, "keys"));
		json_decref(j);
		return json_is_array(keys) ? keys : NULL;
	}
	PGconn *c = cli_connect();
	if (!c)
		return NULL;
	PGresult *r = PQexec(c, "SELECT key_id, public_key FROM receipt_keys");
	json_t *keys = NULL;
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		keys = json_array();
		struct key_row k;
		for (int i = 0; i < PQntuples(r) && PG_ROW(r, i, key_cols, &k); i++)
			json_array_append_new(keys, json_pack("{s:s, s:s}", "key_id", k.key_id, "public_key", k.public_key));
	} else {
		fprintf(stderr, "%s", PQresultErrorMessage(r));
	}
	PQclear(r);
	PQfinish(c);
	return keys;
}

static int cmd_verify(int argc, char **argv)
{
	const char *file = NULL, *keys_from = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
			keys_from = argv[++i];
		else if (!file && argv[i][0] != '-')
			file = argv[i];
		else {
			fprintf(stderr, "usage: %s\n", usage);
			return 2;
		}
	}
	if (!file) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	size_t len;
	unsigned char *data = slurp(file, &len);
	if (!data) {
		fprintf(stderr, "cannot read %s\n", file);
		return 2;
	}
	char *text = len > 4 && memcmp(data, "%PDF", 4) == 0 ? receipt_pdf_extract(data, len) : xstrdup((char *)data);
	free(data);
	json_t *receipt = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (!json_is_object(receipt)) {
		fprintf(stderr, "%s holds no receipt JSON\n", file);
		printf("invalid\n");
		json_decref(receipt);
		return 1;
	}
	json_t *keys = load_keys(keys_from);
	if (!keys) {
		fprintf(stderr, "cannot read the published receipt keys%s%s\n", keys_from ? " from " : "",
			keys_from ? keys_from : "");
		json_decref(receipt);
		return 2;
	}
	const char *key_id = json_string_value(json_object_get(receipt, "key_id"));
	const char *public_key = NULL;
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k)
	{
		if (key_id && strcmp(key_id, json_string_value(json_object_get(k, "key_id")) ?: "") == 0)
			public_key = json_string_value(json_object_get(k, "public_key"));
	}
	int rc = 1;
	if (!public_key)
		printf("invalid: key %s is not among the published keys\n", key_id ? key_id : "(none)");
	else if (!receipt_verify(receipt, public_key))
		printf("invalid: the signature does not match the receipt\n");
	else {
		printf("valid: receipt %s, %s %s no. %lld, %lld VND, signed by %s\n",
		       json_string_value(json_object_get(receipt, "code")), json_string_value(json_object_get(receipt, "template")),
		       json_string_value(json_object_get(receipt, "series")),
		       (long long)json_integer_value(json_object_get(receipt, "number")),
		       (long long)json_integer_value(json_object_get(receipt, "amount")), key_id);
		rc = 0;
	}
	json_decref(keys);
	json_decref(receipt);
	return rc;
}

static int cmd_keygen(int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	char err[256];
	if (!receipt_key_generate(argv[0], err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	struct receipt_key *k = receipt_key_load(argv[0], err, sizeof err);
	if (!k) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("%s\n", receipt_key_id(k));
	receipt_key_free(k);
	return 0;
}

static bool exec_ok(PGconn *c, PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "%s", PQresultErrorMessage(r));
	return ok;
}

/* Numbers the old payments, then signs every unsigned receipt when FEEGATE_RECEIPT_KEY is set
 * (else the running gateway signs them at its next tick). */
static int cmd_backfill(void)
{
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	long total = 0;
	int rc = 0;
	for (;;) {
		PGresult *r = PQexec(c, "SELECT feegate_receipts_backfill(500) AS n");
		struct count_row done;
		if (!exec_ok(c, r) || !PG_ROW(r, 0, count_cols, &done)) {
			PQclear(r);
			rc = 1;
			break;
		}
		long n = (long)done.n;
		PQclear(r);
		total += n;
		if (n == 0)
			break;
	}
	const char *key_path = getenv("FEEGATE_RECEIPT_KEY");
	long signed_n = 0;
	if (rc == 0 && key_path && *key_path) {
		char err[256];
		struct receipt_key *k = receipt_key_load(key_path, err, sizeof err);
		if (!k) {
			fprintf(stderr, "FEEGATE_RECEIPT_KEY: %s\n", err);
			PQfinish(c);
			return 1;
		}
		const char *kp[2] = {receipt_key_id(k), receipt_key_public(k)};
		PQclear(PQexecParams(c, "INSERT INTO receipt_keys (key_id, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
				     2, NULL, kp, NULL, NULL, 0));
		for (;;) {
			PGresult *r = PQexec(c, "SELECT code, body::text AS body FROM receipts WHERE signature IS NULL "
						"ORDER BY ledger_seq LIMIT 500");
			if (!exec_ok(c, r) || PQntuples(r) == 0) {
				PQclear(r);
				break;
			}
			json_t *batch = json_array();
			struct receipt_row row;
			for (int i = 0; i < PQntuples(r) && PG_ROW(r, i, unsigned_cols, &row); i++) {
				if (!receipt_sign_into(k, row.code, row.body, batch))
					fprintf(stderr, "cannot sign receipt %s\n", row.code);
			}
			PQclear(r);
			char *payload = json_dumps(batch, JSON_COMPACT);
			json_decref(batch);
			const char *sp[1] = {payload};
			PGresult *s = PQexecParams(c, "SELECT feegate_receipts_sign($1::json) AS n", 1, NULL, sp, NULL, NULL, 0);
			free(payload);
			struct count_row done;
			long n = exec_ok(c, s) && PG_ROW(s, 0, count_cols, &done) ? (long)done.n : 0;
			PQclear(s);
			signed_n += n;
			if (n == 0)
				break;
		}
		receipt_key_free(k);
	}
	PQfinish(c);
	if (rc == 0) {
		printf("signed: %ld\n", signed_n);
		printf("%ld\n", total);
	}
	return rc;
}

static void xml_text(FILE *out, const char *tag, const char *s)
{
	fprintf(out, "<%s>", tag);
	for (const char *p = s ? s : ""; *p; p++) {
		switch (*p) {
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '&': fputs("&amp;", out); break;
		case '"': fputs("&quot;", out); break;
		default: fputc(*p, out);
		}
	}
	fprintf(out, "</%s>", tag);
}

static const char *js(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* One receipt in the XML form. Element names follow the vocabulary of the e-receipt data
 * format of Circular 78/2021 (KHMSBLai template, KHBLai series, SBLai number, ...); the file
 * is the data the agency's own receipt software signs and sends, not a signed statutory file. */
static void xml_receipt(FILE *out, const json_t *r, const char *signature)
{
	char num[32];
	fputs("<BLai><TTChung>", out);
	xml_text(out, "KHMSBLai", js(r, "template"));
	xml_text(out, "KHBLai", js(r, "series"));
	snprintf(num, sizeof num, "%07lld", (long long)json_integer_value(json_object_get(r, "number")));
	xml_text(out, "SBLai", num);
	xml_text(out, "NLap", js(r, "issued_at"));
	xml_text(out, "DVTTe", "VND");
	xml_text(out, "MaTraCuu", js(r, "code"));
	fputs("</TTChung><NDBLai><NThu>", out);
	const json_t *ag = json_object_get(r, "agency");
	xml_text(out, "Ten", js(ag, "name"));
	xml_text(out, "MST", js(ag, "tax_code"));
	xml_text(out, "MaDV", js(ag, "code"));
	fputs("</NThu><NNop>", out);
	xml_text(out, "Ten", js(r, "payer_name"));
	fputs("</NNop><DSKThu>", out);
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(r, "items"), i, it)
	{
		char a[32];
		fputs("<KThu>", out);
		xml_text(out, "Ma", js(it, "code"));
		xml_text(out, "Ten", js(it, "name"));
		snprintf(a, sizeof a, "%lld", (long long)json_integer_value(json_object_get(it, "amount")));
		xml_text(out, "STien", a);
		fputs("</KThu>", out);
	}
	char total[32];
	snprintf(total, sizeof total, "%lld", (long long)json_integer_value(json_object_get(r, "amount")));
	fputs("</DSKThu>", out);
	xml_text(out, "TgTTTBSo", total);
	xml_text(out, "TgTTTBChu", js(r, "amount_in_words"));
	xml_text(out, "HTTToan", js(r, "bank"));
	xml_text(out, "MGDich", js(r, "bank_txn_id"));
	xml_text(out, "TGTToan", js(r, "paid_at"));
	xml_text(out, "MaTTuc", js(r, "procedure"));
	xml_text(out, "MaHSo", js(r, "reference"));
	fputs("</NDBLai><CKSCong>", out);
	xml_text(out, "MaKhoa", js(r, "key_id"));
	xml_text(out, "ChuKy", signature);
	fputs("</CKSCong></BLai>\n", out);
}

static int cmd_export(int argc, char **argv)
{
	const char *date = NULL, *agency = NULL, *format = NULL, *out_path = NULL;
	for (int i = 0; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--date") == 0)
			date = argv[i + 1];
		else if (strcmp(argv[i], "--agency") == 0)
			agency = argv[i + 1];
		else if (strcmp(argv[i], "--format") == 0)
			format = argv[i + 1];
		else if (strcmp(argv[i], "--out") == 0)
			out_path = argv[i + 1];
		else
			date = NULL, i = argc;
	}
	regex_t re;
	regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", REG_EXTENDED | REG_NOSUB);
	bool date_ok = date && regexec(&re, date, 0, NULL, 0) == 0;
	regfree(&re);
	if (argc % 2 || !date_ok || !format || (strcmp(format, "json") && strcmp(format, "xml"))) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	bool xml = strcmp(format, "xml") == 0;
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	FILE *out = out_path ? fopen(out_path, "w") : stdout;
	if (!out) {
		fprintf(stderr, "cannot write %s\n", out_path);
		PQfinish(c);
		return 1;
	}
	/* a cursor: memory does not grow with the day's receipts */
	const char *params[2] = {date, agency};
	PQclear(PQexec(c, "BEGIN"));
	PGresult *r = PQexecParams(
		c,
		"DECLARE day CURSOR FOR SELECT rc.body::text AS body, rc.signature FROM receipts rc JOIN agencies a ON a.id = "
		"(SELECT o.agency_id FROM orders o WHERE o.id = rc.order_id) "
		"WHERE rc.signature IS NOT NULL AND rc.issued_at >= ($1::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh') "
		"AND rc.issued_at < (($1::date + 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh') "
		"AND ($2::text IS NULL OR a.code = $2::text) ORDER BY rc.series_id, rc.year, rc.number",
		2, NULL, params, NULL, NULL, 0);
	int rc = exec_ok(c, r) ? 0 : 1;
	PQclear(r);
	if (xml)
		fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DSBLai NgayLap=\"%s\">\n", date);
	else
		fprintf(out, "{\"date\":\"%s\",\"receipts\":[", date);
	long count = 0;
	while (rc == 0) {
		r = PQexec(c, "FETCH 500 FROM day");
		if (!exec_ok(c, r)) {
			rc = 1;
			PQclear(r);
			break;
		}
		int n = PQntuples(r);
		struct receipt_row row;
		for (int i = 0; i < n && PG_ROW(r, i, signed_cols, &row); i++) {
			json_t *body = json_loads(row.body, 0, NULL);
			if (!body)
				continue;
			if (xml) {
				xml_receipt(out, body, row.signature);
			} else {
				json_object_set_new(body, "signature", json_string(row.signature));
				char *s = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
				fprintf(out, "%s%s", count ? "," : "", s);
				free(s);
			}
			json_decref(body);
			count++;
		}
		PQclear(r);
		if (n == 0)
			break;
	}
	PQclear(PQexec(c, "COMMIT"));
	fprintf(out, xml ? "</DSBLai>\n" : "]}\n");
	if (out != stdout && fclose(out) != 0)
		rc = 1;
	PQfinish(c);
	if (rc == 0 && out_path)
		printf("%ld\n", count);
	return rc;
}

int cli_receipt(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "keygen") == 0)
		return cmd_keygen(argc - 1, argv + 1);
	if (argc == 1 && strcmp(argv[0], "backfill") == 0)
		return cmd_backfill();
	if (argc >= 1 && strcmp(argv[0], "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	fprintf(stderr, "usage: %s\n", usage);
	return 2;
}

/* feegate agency receipts --code C --template T --series S: the agency's series from now on
 * (the previous one stays, inactive, with its numbers). */
int cli_agency_receipts(int argc, char **argv)
{
	static const char u[] = "feegate agency receipts --code C --template T --series S";
	const char *code = NULL, *tmpl = NULL, *series = NULL;
	for (int i = 0; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--code") == 0)
			code = argv[i + 1];
		else if (strcmp(argv[i], "--template") == 0)
			tmpl = argv[i + 1];
		else if (strcmp(argv[i], "--series") == 0)
			series = argv[i + 1];
	}
	if (argc % 2 || !code || !tmpl || !series) {
		fprintf(stderr, "usage: %s\n", u);
		return 2;
	}
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	const char *params[3] = {code, tmpl, series};
	PGresult *r = PQexecParams(
		c,
		"WITH a AS (SELECT id FROM agencies WHERE code = $1), "
		"off AS (UPDATE receipt_series s SET active = false FROM a WHERE s.agency_id = a.id AND s.active "
		"AND (s.template, s.series) <> ($2, $3) RETURNING s.id) "
		"INSERT INTO receipt_series (agency_id, template, series, active) SELECT a.id, $2, $3, true FROM a "
		"WHERE (SELECT count(*) FROM off) >= 0 "
		"ON CONFLICT (agency_id, template, series) DO UPDATE SET active = true RETURNING id",
		3, NULL, params, NULL, NULL, 0);
	int rc = 1;
	struct cli_id_row made;
	if (!exec_ok(c, r))
		;
	else if (PQntuples(r) == 0)
		fprintf(stderr, "no agency %s\n", code);
	else if (PG_ROW(r, 0, cli_id_cols, &made)) {
		printf("series_id: %s\n%s %s\n", made.id, tmpl, series);
		rc = 0;
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}
