/*
 * Operator commands for staff: `feegate staff create|disable`, `feegate token create|revoke`,
 * `feegate audit verify`. Each change is audited in its own transaction, with the command line
 * as the actor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/cli.h"
#include "gateway/staff.h"
#include "lib/config.h"
#include "lib/mem.h"
#include "lib/passwd.h"
#include "lib/totp.h"
#include "lib/util.h"

#define CLI_ACTOR "command line"

struct staff_opts {
	const char *name, *role, *email, *label, *id;
	const char *agencies[CLI_LIST_MAX];
	int nagencies;
	bool password_stdin, enrol_totp;
};

static const struct cli_option staff_options[] = {
	CLI_FLAG_OPT(struct staff_opts, "--password-stdin", password_stdin),
	CLI_FLAG_OPT(struct staff_opts, "--enrol-totp", enrol_totp),
	CLI_OPT(struct staff_opts, "--name", name),
	CLI_OPT(struct staff_opts, "--role", role),
	CLI_OPT(struct staff_opts, "--email", email),
	CLI_OPT(struct staff_opts, "--label", label),
	CLI_OPT(struct staff_opts, "--id", id),
	CLI_LIST_OPT(struct staff_opts, "--agency", agencies, nagencies),
};

static bool parse(int argc, char **argv, struct staff_opts *o, const char *usage)
{
	return cli_parse_options(argc, argv, staff_options, ARRAY_LEN(staff_options), o, sizeof *o, usage);
}

static bool audit(PGconn *c, const char *action, const char *object, const char *detail)
{
	const char *p[3] = {action, object, detail};
	PGresult *r = cli_run(c,
			      "SELECT feegate_audit(NULL, '" CLI_ACTOR "', 'operator', $1, $2, 'ok', '', '', '', $3)", 3,
			      p, "audit row");
	PQclear(r);
	return r != NULL;
}

/* Reads one line (the password) from stdin, without its line end. */
static char *read_password(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (n <= 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

/* Makes an API token for staff_id in the open transaction; returns it (caller frees). */
static char *token_insert(PGconn *c, const char *staff_id, const char *label)
{
	char id[37], hash[65];
	util_uuid(id);
	char *token = util_token("fgs_", 32);
	util_sha256_hex(token, strlen(token), hash);
	const char *p[4] = {id, staff_id, hash, label ? label : ""};
	PGresult *r = cli_run(c, "INSERT INTO staff_tokens (id, staff_id, token_hash, label) VALUES ($1, $2, $3, $4)", 4, p,
			      "token");
	if (!r || !audit(c, "token.create", id, staff_id)) {
		PQclear(r);
		free(token);
		return NULL;
	}
	PQclear(r);
	return token;
}

static int staff_create(struct staff_opts *o)
{
	if (!o->name || util_utf8_length(o->name, strlen(o->name)) < 1 || util_utf8_length(o->name, strlen(o->name)) > 255) {
		fprintf(stderr, "--name: 1 to 255 characters\n");
		return 2;
	}
	if (!o->role || !staff_role_valid(o->role)) {
		fprintf(stderr, "--role: agency, finance, admin or auditor\n");
		return 2;
	}
	bool is_agency = strcmp(o->role, "agency") == 0;
	if (is_agency != (o->nagencies >= 1)) {
		fprintf(stderr, "--agency: one or more for role agency, none for the other roles\n");
		return 2;
	}
	if (o->email && !staff_email_valid(o->email)) {
		fprintf(stderr, "--email: an e-mail address\n");
		return 2;
	}
	if ((o->password_stdin || o->enrol_totp) && !o->email) {
		fprintf(stderr, "--password-stdin and --enrol-totp need --email (the sign-in name)\n");
		return 2;
	}
	char hash[PASSWD_HASH_CAP] = "";
	if (o->password_stdin) {
		char *pw = read_password();
		const char *weak = pw ? passwd_weak(pw, strlen(pw)) : "no password on stdin";
		if (weak) {
			fprintf(stderr, "--password-stdin: %s\n", weak);
			free(pw);
			return 2;
		}
		int logn = getenv("FEEGATE_PASSWORD_LOG_N") ? atoi(getenv("FEEGATE_PASSWORD_LOG_N")) : PASSWD_LOG_N;
		bool ok = passwd_hash(pw, strlen(pw), logn, hash);
		free(pw);
		if (!ok) {
			fprintf(stderr, "cannot hash the password\n");
			return 1;
		}
	}
	char totp[TOTP_SECRET_B32] = "";
	struct staff_recovery rec;
	if (o->enrol_totp) {
		totp_new_secret(totp);
		staff_recovery_new(&rec);
	}
	char setup[64] = "", setup_hash[65] = "";
	if (o->email && !o->password_stdin) {
		char *t = util_token("", 24);
		snprintf(setup, sizeof setup, "%s", t);
		free(t);
		util_sha256_hex(setup, strlen(setup), setup_hash);
	}
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	int rc = 1;
	char *token = NULL;
	char id[37];
	util_uuid(id);
	if (!cli_exec(c, "BEGIN"))
		goto out;
	const char *p[8] = {id, o->name, o->role, o->email, *hash ? hash : NULL, *totp ? totp : NULL,
			    o->enrol_totp ? rec.hashes_literal : "{}", *setup_hash ? setup_hash : NULL};
	PGresult *r = cli_run(c,
			      "INSERT INTO staff (id, name, role, email, password_hash, totp_secret, recovery_hashes, "
			      "setup_hash, setup_expires_at) VALUES ($1, $2, $3, lower($4), $5, $6, $7::text[], $8, "
			      "CASE WHEN $8::text IS NULL THEN NULL ELSE now() + interval '72 hours' END)",
			      8, p, "staff member (that e-mail)");
	if (!r)
		goto rollback;
	PQclear(r);
	for (int i = 0; i < o->nagencies; i++) {
		const char *pa[2] = {id, o->agencies[i]};
		r = cli_run(c,
			    "INSERT INTO staff_agencies (staff_id, agency_id) SELECT $1, id FROM agencies WHERE code = $2 "
			    "RETURNING agency_id",
			    2, pa, "staff agency");
		if (!r)
			goto rollback;
		bool found = PQntuples(r) == 1;
		PQclear(r);
		if (!found) {
			fprintf(stderr, "--agency: no agency with code %s\n", o->agencies[i]);
			goto rollback;
		}
	}
	if (!audit(c, "staff.create", id, o->role))
		goto rollback;
	token = token_insert(c, id, "initial");
	if (!token)
		goto rollback;
	if (!cli_exec(c, "COMMIT"))
		goto out;
	printf("staff_id: %s\n", id);
	if (*totp) {
		printf("totp_secret: %s\n", totp);
		for (int i = 0; i < STAFF_RECOVERY_CODES; i++)
			printf("recovery_code: %s\n", rec.codes[i]);
	}
	if (*setup) {
		const char *base = getenv("FEEGATE_PUBLIC_URL");
		printf("setup_url: %s/console/setup/%s\n", base && *base ? base : "", setup);
	}
	printf("%s\n", token);
	rc = 0;
	goto out;
rollback:
	cli_exec(c, "ROLLBACK");
out:
	free(token);
	PQfinish(c);
	return rc;
}

static int staff_disable(struct staff_opts *o)
{
	if (!o->id && !o->email) {
		fprintf(stderr, "usage: feegate staff disable --id ID | --email E\n");
		return 2;
	}
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	int rc = 1;
	if (!cli_exec(c, "BEGIN"))
		goto out;
	const char *p[2] = {o->id, o->email};
	PGresult *r = cli_run(c,
			      "UPDATE staff SET disabled_at = coalesce(disabled_at, now()) WHERE "
			      "($1::text IS NOT NULL AND id::text = $1) OR ($2::text IS NOT NULL AND email = lower($2)) "
			      "RETURNING id::text",
			      2, p, "staff");
	if (!r)
		goto rollback;
	struct cli_id_row found;
	if (PQntuples(r) != 1 || !PG_ROW(r, 0, cli_id_cols, &found)) {
		fprintf(stderr, "no such staff member\n");
		PQclear(r);
		goto rollback;
	}
	char id[37];
	snprintf(id, sizeof id, "%s", found.id);
	PQclear(r);
	if (!audit(c, "staff.disable", id, "") || !cli_exec(c, "COMMIT"))
		goto rollback;
	printf("disabled %s\n", id);
	rc = 0;
	goto out;
rollback:
	cli_exec(c, "ROLLBACK");
out:
	PQfinish(c);
	return rc;
}

int cli_staff(int argc, char **argv)
{
	static const char usage[] = "feegate staff create --name N --role agency|finance|admin|auditor [--email E] "
				    "[--agency CODE]... [--password-stdin] [--enrol-totp] | staff disable --id ID | --email E";
	struct staff_opts o;
	if (argc < 1 || !parse(argc - 1, argv + 1, &o, usage)) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	if (strcmp(argv[0], "create") == 0)
		return staff_create(&o);
	if (strcmp(argv[0], "disable") == 0)
		return staff_disable(&o);
	fprintf(stderr, "usage: %s\n", usage);
	return 2;
}

int cli_token(int argc, char **argv)
{
	static const char usage[] = "feegate token create --email E [--label L] | token revoke --id TOKEN_ID";
	struct staff_opts o;
	if (argc < 1 || !parse(argc - 1, argv + 1, &o, usage)) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	bool create = strcmp(argv[0], "create") == 0;
	if ((create && !o.email) || (!create && (strcmp(argv[0], "revoke") != 0 || !o.id))) {
		fprintf(stderr, "usage: %s\n", usage);
		return 2;
	}
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	int rc = 1;
	char *token = NULL;
	if (!cli_exec(c, "BEGIN"))
		goto out;
	if (create) {
		const char *p[1] = {o.email};
		PGresult *r = cli_run(c, "SELECT id::text FROM staff WHERE email = lower($1) AND disabled_at IS NULL", 1, p,
				      "staff");
		struct cli_id_row found;
		if (!r || PQntuples(r) != 1 || !PG_ROW(r, 0, cli_id_cols, &found)) {
			fprintf(stderr, "no active staff member with that e-mail\n");
			PQclear(r);
			goto rollback;
		}
		char id[37];
		snprintf(id, sizeof id, "%s", found.id);
		PQclear(r);
		token = token_insert(c, id, o.label);
		if (!token)
			goto rollback;
	} else {
		const char *p[1] = {o.id};
		PGresult *r = cli_run(c,
				      "UPDATE staff_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id::text = $1 "
				      "RETURNING id",
				      1, p, "token");
		bool found = r && PQntuples(r) == 1;
		PQclear(r);
		if (!found) {
			fprintf(stderr, "no such token\n");
			goto rollback;
		}
		if (!audit(c, "token.revoke", o.id, ""))
			goto rollback;
	}
	if (!cli_exec(c, "COMMIT"))
		goto out;
	printf("%s\n", create ? token : "revoked");
	rc = 0;
	goto out;
rollback:
	cli_exec(c, "ROLLBACK");
out:
	free(token);
	PQfinish(c);
	return rc;
}

/* ---- feegate audit verify ---- */

/* Every chain row beside its predecessor and the hash its audit row should have. */
static const char chain_sql[] =
	"SELECT c.seq, c.audit_id, c.prev_hash, c.hash, coalesce(lag(c.hash) OVER w, repeat('0', 64)) AS before_hash, "
	"coalesce(lag(c.seq) OVER w, 0) AS before_seq, a.id IS NULL AS missing, "
	"CASE WHEN a.id IS NULL THEN '' ELSE feegate_audit_hash(c.prev_hash, a) END AS rehash "
	"FROM audit_chain c LEFT JOIN audit_log a ON a.id = c.audit_id WINDOW w AS (ORDER BY c.seq) ORDER BY c.seq";

struct chain_row {
	int64_t seq;
	const char *audit_id, *prev_hash, *hash;
	const char *before_hash; /* the previous chain row's hash (zeros for the first) */
	int64_t before_seq;
	bool missing;            /* its audit row is gone */
	const char *rehash;      /* the hash its audit row has now */
};
static const struct pg_col chain_cols[] = {
	PG_COL(struct chain_row, seq, PG_INT64),
	PG_COL(struct chain_row, audit_id, PG_TEXT),
	PG_COL(struct chain_row, prev_hash, PG_TEXT),
	PG_COL(struct chain_row, hash, PG_TEXT),
	PG_COL(struct chain_row, before_hash, PG_TEXT),
	PG_COL(struct chain_row, before_seq, PG_INT64),
	PG_COL(struct chain_row, missing, PG_BOOL),
	PG_COL(struct chain_row, rehash, PG_TEXT),
};

int cli_audit(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "verify") != 0) {
		fprintf(stderr, "usage: feegate audit verify\n");
		return 2;
	}
	PGconn *c = cli_connect();
	if (!c)
		return 1;
	/* Link what has committed but is not chained yet (this run is a chainer like any other). */
	PGresult *r = cli_run(c, "SELECT feegate_audit_chain(1000000)", 0, NULL, "chaining");
	PQclear(r);
	cli_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	int bad = 0;
	long rows = 0;
	if (!PQsendQuery(c, chain_sql) || !PQsetSingleRowMode(c)) {
		printf("ERROR audit chain: %s", PQerrorMessage(c));
		PQfinish(c);
		return 1;
	}
	while ((r = PQgetResult(c)) != NULL) {
		struct chain_row ch;
		if (PQresultStatus(r) == PGRES_SINGLE_TUPLE && !PG_ROW(r, 0, chain_cols, &ch)) {
			printf("ERROR audit chain: unexpected columns\n");
			bad++;
		} else if (PQresultStatus(r) == PGRES_SINGLE_TUPLE) {
			const char *why = NULL;
			if (ch.seq != ch.before_seq + 1)
				why = "gap in the sequence before it";
			else if (strcmp(ch.prev_hash, ch.before_hash) != 0)
				why = "does not link to the previous row";
			else if (ch.missing)
				why = "its audit row is missing";
			else if (strcmp(ch.hash, ch.rehash) != 0)
				why = "its fields do not match its hash (the row was changed)";
			if (why) {
				if (bad < 50)
					printf("FAIL  audit row %s (chain seq %lld): %s\n", ch.audit_id, (long long)ch.seq, why);
				bad++;
			}
			rows++;
		} else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			printf("ERROR audit chain: %s", PQresultErrorMessage(r));
			bad++;
		}
		PQclear(r);
	}
	r = cli_run(c,
		    "SELECT a.id FROM audit_log a WHERE a.at < now() - interval '1 minute' "
		    "AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.audit_id = a.id) ORDER BY a.id LIMIT 50",
		    0, NULL, "unchained rows");
	if (r) {
		struct cli_id_row u;
		for (int i = 0; i < PQntuples(r) && PG_ROW(r, i, cli_id_cols, &u); i++, bad++)
			printf("FAIL  audit row %s: not in the chain\n", u.id);
		PQclear(r);
	} else {
		bad++;
	}
	cli_exec(c, "COMMIT");
	PQfinish(c);
	if (bad)
		printf("audit verify: %d problem(s)\n", bad);
	else
		printf("audit verify: ok, %ld rows chained\n", rows);
	return bad ? 1 : 0;
}
