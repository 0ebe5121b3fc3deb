#include "gateway/cli.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/adapter.h"
#include "gateway/reports.h"
#include "ledger/check.h"
#include "ledger/statement.h"
#include "lib/config.h"
#include "lib/mem.h"
#include "lib/pgpool.h"
#include "lib/util.h"

const struct pg_col cli_id_cols[1] = {PG_COL(struct cli_id_row, id, PG_TEXT)};

/* schema_migrations: what a recorded file was, or what was forgotten */
PG_TEXT_ROW(sha256);
PG_TEXT_ROW(version);

PGconn *cli_connect(void)
{
	const char *url = getenv("DATABASE_URL");
	if (!url || !*url) {
		fprintf(stderr, "DATABASE_URL: required\n");
		return NULL;
	}
	char *withtimeout = xasprintf("%s%sconnect_timeout=10", url, strchr(url, '?') ? "&" : "?");
	PGconn *c = PQconnectdb(strstr(url, "://") ? withtimeout : url);
	free(withtimeout);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect to the database: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

static bool exec_ok(PGconn *c, const char *sql)
{
	return pg_exec_blocking(c, sql, stderr);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = xmalloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = '\0';
	fclose(f);
	return buf;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir matching pattern, sorted; returns how many (-1: dir cannot be read). */
static int list_files(const char *dir, const char *pattern, char ***out)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	char **names = NULL;
	int n = 0;
	regex_t re;
	regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (regexec(&re, e->d_name, 0, NULL, 0) == 0) {
			names = xrealloc(names, sizeof(char *) * (size_t)(n + 1));
			names[n++] = xstrdup(e->d_name);
		}
	}
	closedir(d);
	regfree(&re);
	if (n > 0)
		qsort(names, (size_t)n, sizeof(char *), name_cmp);
	*out = names;
	return n;
}

static void free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

enum file_state { FILE_NEW, FILE_SAME, FILE_CHANGED, FILE_ERROR };

/* Runs a statement with text parameters: its result, or NULL (the error printed) unless its
 * status is want. */
static PGresult *exec_params(PGconn *c, const char *sql, int n, const char *const *params, ExecStatusType want)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == want)
		return r;
	fprintf(stderr, "%s", PQresultErrorMessage(r));
	PQclear(r);
	return NULL;
}

/* Whether the file recorded under version was applied, and with this content. */
static enum file_state file_state(PGconn *c, const char *version, const char *hash)
{
	const char *p1[1] = {version};
	PGresult *r = exec_params(c, "SELECT sha256 FROM schema_migrations WHERE version = $1", 1, p1, PGRES_TUPLES_OK);
	struct sha256_row m;
	enum file_state st = !r				     ? FILE_ERROR
			     : PQntuples(r) == 0		     ? FILE_NEW
			     : !PG_ROW(r, 0, sha256_cols, &m) ? FILE_ERROR
			     : strcmp(m.sha256, hash) == 0	     ? FILE_SAME
								     : FILE_CHANGED;
	PQclear(r);
	return st;
}

/* Records, in the caller's transaction, that a file was applied with this content (replacing
 * an older record). */
static bool record_file(PGconn *c, const char *version, const char *name, const char *hash)
{
	const char *p3[3] = {version, name, hash};
	PGresult *r = exec_params(c,
				  "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3) "
				  "ON CONFLICT (version) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()",
				  3, p3, PGRES_COMMAND_OK);
	PQclear(r);
	return r != NULL;
}

/* Runs sql in one transaction with the row that records it. */
static bool apply_file(PGconn *c, const char *version, const char *name, const char *label, const char *sql,
		       const char *hash)
{
	if (!exec_ok(c, "BEGIN"))
		return false;
	if (!exec_ok(c, sql)) {
		fprintf(stderr, "%s failed; nothing of it was applied\n", label);
		exec_ok(c, "ROLLBACK");
		return false;
	}
	if (record_file(c, version, name, hash) && exec_ok(c, "COMMIT")) {
		printf("applied %s\n", label);
		return true;
	}
	exec_ok(c, "ROLLBACK");
	return false;
}

/* A file's content and its hex SHA-256; NULL (and a message) when it cannot be read. */
static char *read_hashed(const char *path, char hash[65])
{
	char *sql = read_file(path);
	if (!sql)
		fprintf(stderr, "cannot read %s\n", path);
	else
		util_sha256_hex(sql, strlen(sql), hash);
	return sql;
}

/* A numbered migration, from history/ (squashed into schema.sql) or from the folder itself. */
struct numbered {
	char *name;	/* NNNN_name.sql, as schema_migrations records it */
	char *label;	/* where it is, relative to the folder */
	char version[5];
	bool history;
};

static int numbered_cmp(const void *a, const void *b)
{
	return strcmp(((const struct numbered *)a)->name, ((const struct numbered *)b)->name);
}

static void free_numbered(struct numbered *m, int n)
{
	for (int i = 0; i < n; i++) {
		free(m[i].name);
		free(m[i].label);
	}
	free(m);
}

/* The numbered migrations of dir/history and dir together, in number order; -1 when dir cannot
 * be read or two files share a number (two branches that each added the next one). */
static int list_numbered(const char *dir, struct numbered **out)
{
	static const char pattern[] = "^[0-9]{4}_[a-z0-9_]+\\.sql$";
	char **top = NULL, **old = NULL;
	char *hdir = xasprintf("%s/history", dir);
	int nt = list_files(dir, pattern, &top);
	int nh = list_files(hdir, pattern, &old);
	free(hdir);
	if (nt < 0) {
		fprintf(stderr, "FEEGATE_MIGRATIONS: cannot open %s\n", dir);
		free_names(old, nh);
		return -1;
	}
	if (nh < 0)
		nh = 0; /* no history/: every numbered migration is in dir */
	int n = nh + nt;
	struct numbered *m = xmalloc(sizeof *m * (size_t)(n + 1));
	for (int i = 0; i < n; i++) {
		bool history = i < nh;
		m[i].name = history ? old[i] : top[i - nh];
		m[i].label = xasprintf("%s%s", history ? "history/" : "", m[i].name);
		m[i].history = history;
		snprintf(m[i].version, sizeof m[i].version, "%.4s", m[i].name);
	}
	free(old);
	free(top);
	qsort(m, (size_t)n, sizeof *m, numbered_cmp);
	for (int i = 1; i < n; i++) {
		if (strcmp(m[i - 1].version, m[i].version) == 0) {
			fprintf(stderr, "migrations %s and %s share the number %s; renumber the later one\n",
				m[i - 1].label, m[i].label, m[i].version);
			free_numbered(m, n);
			return -1;
		}
	}
	*out = m;
	return n;
}

/*
 * A new database (nothing in schema_migrations) is made from schema.sql, the squash of
 * history/, instead of replaying history: schema.sql applied and every history file recorded as
 * applied, in one transaction. Without schema.sql a new database replays history/.
 */
static bool install_schema(PGconn *c, const char *dir, const struct numbered *m, int n)
{
	char *path = xasprintf("%s/schema.sql", dir);
	char hash[65];
	char *sql = read_file(path);
	bool absent = !sql && errno == ENOENT;
	if (sql)
		util_sha256_hex(sql, strlen(sql), hash);
	else if (!absent)
		fprintf(stderr, "cannot read %s\n", path);
	free(path);
	if (!sql)
		return absent;
	PGresult *r = PQexec(c, "SELECT 1 FROM schema_migrations LIMIT 1");
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK, fresh = ok && PQntuples(r) == 0;
	if (!ok)
		fprintf(stderr, "%s", PQresultErrorMessage(r));
	PQclear(r);
	int recorded = 0;
	if (fresh && (ok = exec_ok(c, "BEGIN"))) {
		if (!exec_ok(c, sql)) {
			fprintf(stderr, "schema.sql failed; nothing of it was applied\n");
			ok = false;
		}
		ok = ok && record_file(c, "schema", "schema.sql", hash);
		for (int i = 0; i < n && ok; i++) {
			if (!m[i].history)
				continue;
			char *hpath = xasprintf("%s/%s", dir, m[i].label), hhash[65];
			char *hsql = read_hashed(hpath, hhash);
			ok = hsql && record_file(c, m[i].version, m[i].name, hhash);
			recorded += ok;
			free(hsql);
			free(hpath);
		}
		ok = ok && exec_ok(c, "COMMIT");
		if (!ok)
			exec_ok(c, "ROLLBACK");
		else
			printf("applied schema.sql\nrecorded %d history migration(s) as applied with it\n", recorded);
	}
	free(sql);
	return ok;
}

/* Applies one file unless it was applied with this content; once: a numbered migration, applied
 * once and never again (a changed one only gets a warning). *done counts what was applied. */
static bool migrate_file(PGconn *c, const char *path, const char *version, const char *name, const char *label,
			 bool once, int *done)
{
	char hash[65];
	char *sql = read_hashed(path, hash);
	if (!sql)
		return false;
	bool ok = true;
	switch (file_state(c, version, hash)) {
	case FILE_ERROR:
		ok = false;
		break;
	case FILE_SAME:
		break;
	case FILE_CHANGED:
		if (once) {
			fprintf(stderr, "warning: migration %s changed since it was applied\n", label);
			break;
		}
		/* fall through */
	case FILE_NEW:
		ok = apply_file(c, version, name, label, sql, hash);
		*done += ok;
		break;
	}
	free(sql);
	return ok;
}

/* Forgets the records of function files no longer in the folder: one added again later is
 * applied again, whatever a numbered migration dropped meanwhile. */
static bool forget_removed(PGconn *c, char **fnames, int nf)
{
	size_t len = 1;
	for (int i = 0; i < nf; i++)
		len += strlen("functions/ ") + strlen(fnames[i]);
	char *present = xmalloc(len);
	present[0] = '\0';
	for (int i = 0; i < nf; i++)
		strcat(strcat(strcat(present, i ? " " : ""), "functions/"), fnames[i]);
	const char *p1[1] = {present};
	PGresult *r = exec_params(c,
				  "DELETE FROM schema_migrations WHERE version LIKE 'functions/%' "
				  "AND version <> ALL (string_to_array($1, ' ')) RETURNING version",
				  1, p1, PGRES_TUPLES_OK);
	struct version_row v;
	for (int i = 0; r && i < PQntuples(r) && PG_ROW(r, i, version_cols, &v); i++)
		printf("forgot %s (no longer in the folder)\n", v.version);
	PQclear(r);
	free(present);
	return r != NULL;
}

/*
 * The migrations folder (migrations/README.md): schema.sql, the schema of a new database, which
 * squashes history/NNNN_name.sql; NNNN_name.sql beside it, the migrations since; functions/,
 * the stored functions. Numbered migrations are applied once each, in number order, history's
 * and the later ones alike, and never change once released (a changed one only gets a warning);
 * a new database gets schema.sql in place of history/. Then each function file (one current
 * definition of each function, CREATE OR REPLACE) is applied again whenever its content
 * differs from what was applied, so a change to a function is an edit of one file, not a copy
 * in a new migration.
 */
int cli_migrate(int argc, char **argv)
{
	const char *dir = getenv("FEEGATE_MIGRATIONS");
	if (!dir || !*dir)
		dir = "migrations";
	struct numbered *m = NULL;
	int n = list_numbered(dir, &m);
	if (n < 0)
		return 1;
	char **fnames = NULL;
	char *fdir = xasprintf("%s/functions", dir);
	int nf = list_files(fdir, "^[a-z0-9_]+\\.sql$", &fnames);
	if (nf < 0)
		nf = 0; /* no function files */

	PGconn *c = cli_connect();
	int rc = c ? 0 : 1, applied = 0, refreshed = 0;
	/* One migrator at a time, whichever host runs it. */
	if (rc == 0 && (!exec_ok(c, "SELECT pg_advisory_lock(7420190)") ||
			!exec_ok(c, "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, name text "
				    "NOT NULL, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())") ||
			!install_schema(c, dir, m, n)))
		rc = 1;
	for (int i = 0; i < n && rc == 0; i++) {
		char *path = xasprintf("%s/%s", dir, m[i].label);
		if (!migrate_file(c, path, m[i].version, m[i].name, m[i].label, true, &applied))
			rc = 1;
		free(path);
	}
	for (int i = 0; i < nf && rc == 0; i++) {
		char *path = xasprintf("%s/%s", fdir, fnames[i]);
		char *version = xasprintf("functions/%s", fnames[i]);
		if (!migrate_file(c, path, version, version, version, false, &refreshed))
			rc = 1;
		free(version);
		free(path);
	}
	if (rc == 0 && !forget_removed(c, fnames, nf))
		rc = 1;
	if (rc == 0)
		printf("%d migration(s) and %d function file(s) applied; schema up to date\n", applied, refreshed);
	if (c)
		PQfinish(c);
	free(fdir);
	free_numbered(m, n);
	free_names(fnames, nf);
	return rc;
}

/* ---- option parsing shared by the create commands ---- */

struct opts {
	const char *code, *name, *account, *banks, *webhook_url, *role, *tax_code;
	const char *agencies[CLI_LIST_MAX];
	int nagencies;
};

bool cli_parse_options(int argc, char **argv, const struct cli_option *opts, size_t n, void *out, size_t size,
		       const char *usage)
{
	memset(out, 0, size);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		const struct cli_option *o = NULL;
		for (size_t k = 0; k < n && !o; k++)
			if (strcmp(a, opts[k].name) == 0)
				o = &opts[k];
		if (!o) {
			fprintf(stderr, "unknown option %s\nusage: %s\n", a, usage);
			return false;
		}
		char *field = (char *)out + o->field;
		if (o->kind == CLI_FLAG) {
			*(bool *)field = true;
			continue;
		}
		int *count = o->kind == CLI_LIST ? (int *)((char *)out + o->count) : NULL;
		if (!v || (count && *count == CLI_LIST_MAX)) {
			fprintf(stderr, "%s needs a value\nusage: %s\n", a, usage);
			return false;
		}
		if (count)
			((const char **)field)[(*count)++] = v;
		else
			*(const char **)field = v;
		i++;
	}
	return true;
}

static const struct cli_option opts_table[] = {
	CLI_OPT(struct opts, "--code", code),
	CLI_OPT(struct opts, "--name", name),
	CLI_OPT(struct opts, "--account", account),
	CLI_OPT(struct opts, "--banks", banks),
	CLI_OPT(struct opts, "--webhook-url", webhook_url),
	CLI_OPT(struct opts, "--role", role),
	CLI_OPT(struct opts, "--tax-code", tax_code),
	CLI_LIST_OPT(struct opts, "--agency", agencies, nagencies),
};

/* `create` and its options; false (usage printed) otherwise. */
static bool parse_create(int argc, char **argv, struct opts *o, const char *usage)
{
	if (argc < 1 || strcmp(argv[0], "create") != 0) {
		fprintf(stderr, "usage: %s\n", usage);
		return false;
	}
	return cli_parse_options(argc - 1, argv + 1, opts_table, ARRAY_LEN(opts_table), o, sizeof *o, usage);
}

static bool matches(const char *s, const char *pattern)
{
	regex_t re;
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	bool ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static bool text_len_ok(const char *s, long min, long max)
{
	long n = util_utf8_length(s, strlen(s));
	return n >= min && n <= max;
}

/* Runs a parameterized statement; prints the error and returns NULL on failure. */
static PGresult *run(PGconn *c, const char *sql, int n, const char *const *params, const char *what)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (state && strcmp(state, "23505") == 0)
		fprintf(stderr, "%s already exists\n", what);
	else
		fprintf(stderr, "%s: %s", what, PQresultErrorMessage(r));
	PQclear(r);
	return NULL;
}

int cli_agency(int argc, char **argv)
{
	char all[128], usage[384];
	adapter_names(",", all, sizeof all);
	snprintf(usage, sizeof usage,
		 "feegate agency create --code C --name N --account BIN:NUMBER:HOLDER [--banks %s] "
		 "[--tax-code T] | agency receipts --code C --template T --series S | agency budget-codes ...",
		 all);
	if (argc >= 1 && strcmp(argv[0], "budget-codes") == 0)
		return reports_cli_budget_codes(argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "receipts") == 0)
		return cli_agency_receipts(argc - 1, argv + 1);
	struct opts o;
	if (!parse_create(argc, argv, &o, usage))
		return 2;
	if (!o.code || !matches(o.code, "^[A-Z0-9_]{2,32}$")) {
		fprintf(stderr, "--code: 2 to 32 characters of A-Z, 0-9 and _\n");
		return 2;
	}
	if (!o.name || !text_len_ok(o.name, 1, 255)) {
		fprintf(stderr, "--name: 1 to 255 characters\n");
		return 2;
	}
	char bin[16] = "", number[32] = "", holder[128] = "";
	if (!o.account || sscanf(o.account, "%15[^:]:%31[^:]:%127[^\n]", bin, number, holder) != 3 ||
	    !matches(bin, "^[0-9]{6}$") || !matches(number, "^[0-9A-Z]{1,19}$") || !text_len_ok(holder, 1, 99)) {
		fprintf(stderr, "--account: BIN:NUMBER:HOLDER (6-digit bank BIN, 1-19 digits or capitals, holder name)\n");
		return 2;
	}
	const char *banks = o.banks ? o.banks : all;
	if (!adapter_names_valid(banks)) {
		char names[128];
		adapter_names(", ", names, sizeof names);
		fprintf(stderr, "--banks: a comma-separated list of %s\n", names);
		return 2;
	}
	if (o.tax_code && !matches(o.tax_code, "^[0-9]{10}(-[0-9]{3})?$")) {
		fprintf(stderr, "--tax-code: 10 digits, or 10 digits, '-' and 3 digits (a branch)\n");
		return 2;
	}
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	char *arr = xasprintf("{%s}", banks);
	const char *params[7] = {o.code, o.name, bin, number, holder, arr, o.tax_code};
	PGresult *r = run(c,
			  "INSERT INTO agencies (code, name, account_bin, account_number, account_holder, banks, tax_code) "
			  "VALUES ($1, $2, $3, $4, $5, $6::text[], $7) RETURNING id",
			  7, params, "agency");
	free(arr);
	int rc = 1;
	struct cli_id_row made;
	if (r && PG_ROW(r, 0, cli_id_cols, &made)) {
		printf("agency_id: %s\n%s\n", made.id, o.code);
		rc = 0;
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

int cli_client(int argc, char **argv)
{
	static const char usage[] = "feegate client create --name N --agency CODE [--agency CODE...] [--webhook-url URL]";
	struct opts o;
	if (!parse_create(argc, argv, &o, usage))
		return 2;
	if (!o.name || !text_len_ok(o.name, 1, 255)) {
		fprintf(stderr, "--name: 1 to 255 characters\n");
		return 2;
	}
	if (o.nagencies == 0) {
		fprintf(stderr, "--agency: at least one agency code\n");
		return 2;
	}
	if (o.webhook_url && (!util_is_http_url(o.webhook_url) || strlen(o.webhook_url) > 2000)) {
		fprintf(stderr, "--webhook-url: an absolute http(s) URL\n");
		return 2;
	}
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	char id[37], hash[65];
	util_uuid(id);
	char *key = util_token("fgk_", 32);
	char *secret = o.webhook_url ? util_token("whsec_", 32) : NULL;
	util_sha256_hex(key, strlen(key), hash);
	int rc = 1;
	if (!exec_ok(c, "BEGIN"))
		goto out;
	const char *p[4] = {id, o.name, hash, o.webhook_url};
	const char *pw[5] = {id, o.name, hash, o.webhook_url, secret};
	PGresult *r = run(c,
			  "INSERT INTO clients (id, name, key_hash, webhook_url, webhook_secret) VALUES ($1, $2, $3, $4, $5)",
			  5, o.webhook_url ? pw : (const char *const[]){p[0], p[1], p[2], NULL, NULL}, "client");
	if (!r)
		goto rollback;
	PQclear(r);
	for (int i = 0; i < o.nagencies; i++) {
		const char *pa[2] = {id, o.agencies[i]};
		r = run(c,
			"INSERT INTO client_agencies (client_id, agency_id) SELECT $1, id FROM agencies WHERE code = $2 "
			"RETURNING agency_id",
			2, pa, "client agency");
		if (!r)
			goto rollback;
		bool found = PQntuples(r) == 1;
		PQclear(r);
		if (!found) {
			fprintf(stderr, "--agency: no agency with code %s\n", o.agencies[i]);
			goto rollback;
		}
	}
	if (!exec_ok(c, "COMMIT"))
		goto out;
	printf("client_id: %s\n", id);
	if (secret)
		printf("webhook_secret: %s\n", secret);
	printf("%s\n", key);
	rc = 0;
	goto out;
rollback:
	exec_ok(c, "ROLLBACK");
out:
	free(key);
	free(secret);
	PQfinish(c);
	return rc;
}

/* For the other command files (staff_cli.c): the same connection and statement helpers. */
PGresult *cli_run(PGconn *c, const char *sql, int n, const char *const *params, const char *what)
{
	return run(c, sql, n, params, what);
}

bool cli_exec(PGconn *c, const char *sql)
{
	return exec_ok(c, sql);
}

/* ---- feegate ledger check [--incremental] (ledger/check.c) ---- */

int cli_ledger(int argc, char **argv)
{
	bool incremental = argc == 2 && strcmp(argv[1], "--incremental") == 0;
	if (argc < 1 || strcmp(argv[0], "check") != 0 || (argc == 2 && !incremental) || argc > 2) {
		fprintf(stderr, "usage: feegate ledger check [--incremental]\n");
		return 2;
	}
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	int failed = ledger_check_run(c, incremental, stdout);
	PQfinish(c);
	return failed ? 1 : 0;
}

/* feegate statement import --source S FILE: all or nothing; prints the record, its id last. */
int cli_statement(int argc, char **argv)
{
	const char *usage = "usage: feegate statement import --source " ADAPTER_CHOICES "|" STMT_TREASURY_SOURCE " FILE\n";
	stmt_source source;
	if (argc != 4 || strcmp(argv[0], "import") != 0 || strcmp(argv[1], "--source") != 0 ||
	    !stmt_source_parse(argv[2], &source)) {
		fputs(usage, stderr);
		return 2;
	}
	FILE *f = fopen(argv[3], "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	const char *cap_env = getenv("FEEGATE_MAX_STATEMENT_BYTES");
	long long cap = cap_env && *cap_env ? atoll(cap_env) : 268435456LL;
	struct stmt_import *im = stmt_import_new(source, NULL, cap > 0 ? (size_t)cap : 268435456u);
	char buf[65536];
	size_t n;
	bool fed = true;
	while (fed && (n = fread(buf, 1, sizeof buf, f)) > 0)
		fed = stmt_import_feed(im, buf, n);
	bool read_failed = ferror(f);
	fclose(f);
	if (read_failed) {
		stmt_import_free(im);
		fprintf(stderr, "%s: read error\n", argv[3]);
		return 1;
	}
	PGconn *c = cli_connect();
	if (!c) {
		stmt_import_free(im);
		return 1;
	}
	struct stmt_result res;
	stmt_import_finish(im, c, &res);
	stmt_import_free(im);
	PQfinish(c);
	int rc = 1;
	switch (res.outcome) {
	case STMT_CREATED:
	case STMT_EXISTING:
		printf("%s%s\n%s\n", res.outcome == STMT_EXISTING ? "already imported: " : "", res.record, res.id);
		rc = 0;
		break;
	case STMT_MALFORMED:
		fprintf(stderr, "refused, nothing stored: %s: %s\n", res.field, res.message);
		break;
	case STMT_TOO_LARGE:
	case STMT_FAILED:
		fprintf(stderr, "import failed, nothing stored: %s\n", res.message);
		break;
	}
	free(res.record);
	return rc;
}
