#include "gateway/staff.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/audit.h"
#include "gateway/gateway.h"
#include "gateway/session.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/passwd.h"
#include "lib/totp.h"
#include "lib/workpool.h"

static const char *const roles[] = {"agency", "finance", "admin", "auditor"};

bool staff_role_valid(const char *role)
{
	for (size_t i = 0; i < ARRAY_LEN(roles); i++)
		if (strcmp(role, roles[i]) == 0)
			return true;
	return false;
}

bool staff_role_needs_totp(const char *role)
{
	return strcmp(role, "finance") == 0 || strcmp(role, "admin") == 0;
}

bool staff_email_valid(const char *e)
{
	size_t n = strlen(e);
	const char *at = strchr(e, '@');
	if (n < 3 || n > 254 || !at || at == e || !at[1] || strchr(at + 1, '@'))
		return false;
	for (const char *c = e; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == '<' || *c == '>' || *c == '"' || *c == 0x7f)
			return false;
	return true;
}

void staff_recovery_hash(const char *typed, char out[65])
{
	char norm[32];
	size_t o = 0;
	for (const char *c = typed; *c && o + 1 < sizeof norm; c++)
		if (isalnum((unsigned char)*c))
			norm[o++] = (char)toupper((unsigned char)*c);
	norm[o] = '\0';
	util_sha256_hex(norm, o, out);
}

void staff_recovery_new(struct staff_recovery *out)
{
	size_t o = (size_t)snprintf(out->hashes_literal, sizeof out->hashes_literal, "{");
	for (int i = 0; i < STAFF_RECOVERY_CODES; i++) {
		unsigned char raw[7];
		char b32[16];
		util_random(raw, sizeof raw);
		totp_base32_encode(raw, sizeof raw, b32, sizeof b32);
		snprintf(out->codes[i], sizeof out->codes[i], "%.5s-%.5s", b32, b32 + 5);
		char h[65];
		staff_recovery_hash(out->codes[i], h);
		o += (size_t)snprintf(out->hashes_literal + o, sizeof out->hashes_literal - o, "%s%s", i ? "," : "", h);
	}
	snprintf(out->hashes_literal + o, sizeof out->hashes_literal - o, "}");
}

/* ---- hashing off the loop ---- */

static struct workpool *pool;

struct passwd_job {
	char *password;
	char *stored; /* verify: the stored hash */
	char *out;    /* hash: where the new hash goes (PASSWD_HASH_CAP) */
	bool ok;
	staff_passwd_fn done;
	void *arg;
};

static void job_work(void *p)
{
	struct passwd_job *j = p;
	size_t len = strlen(j->password);
	if (j->out)
		j->ok = passwd_hash(j->password, len, cfg.password_log_n, j->out);
	else
		j->ok = passwd_verify(j->password, len, j->stored);
}

static void job_done(void *p)
{
	struct passwd_job *j = p;
	OPENSSL_cleanse(j->password, strlen(j->password));
	free(j->password);
	free(j->stored);
	j->done(j->arg, j->ok);
	free(j);
}

static bool submit(const char *password, const char *stored, char *out, staff_passwd_fn done, void *arg)
{
	/* two jobs per thread waiting at most: beyond that, sign-in is overloaded and says so */
	if (!pool)
		pool = workpool_new(gw.base, cfg.hash_threads, cfg.hash_threads * 3);
	struct passwd_job *j = xcalloc(1, sizeof *j);
	j->password = xstrdup(password);
	j->stored = stored ? xstrdup(stored) : NULL;
	j->out = out;
	j->done = done;
	j->arg = arg;
	if (workpool_submit(pool, job_work, job_done, j))
		return true;
	OPENSSL_cleanse(j->password, strlen(j->password));
	free(j->password);
	free(j->stored);
	free(j);
	return false;
}

bool staff_passwd_verify(const char *password, const char *stored, staff_passwd_fn done, void *arg)
{
	/* no stored hash (unknown e-mail, or no password set yet): hash against a dummy so the
	 * answer takes as long as a real one */
	static const char dummy[] = "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	return submit(password, stored && *stored ? stored : dummy, NULL, done, arg);
}

bool staff_passwd_hash(const char *password, char *out, staff_passwd_fn done, void *arg)
{
	return submit(password, NULL, out, done, arg);
}

void staff_shutdown(void)
{
	workpool_free(pool);
	pool = NULL;
}

/* ---- admin API: staff and tokens ---- */

const struct pg_col staff_list_cols[1] = {PG_COL(struct staff_list_row, staff, PG_TEXT)};

static void staff_listed(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	struct staff_list_row r;
	if (!PG_ROW(res, 0, staff_list_cols, &r)) {
		reply_db_failure(req, res, PG_SQL_ERROR);
		return;
	}
	json_t *body = json_object();
	json_object_set_new(body, "data", json_loads(r.staff, 0, NULL));
	json_object_set_new(body, "next_cursor", json_null());
	http_reply_json(req, 200, body);
}

void staff_api_list(struct http_req *req)
{
	if (!auth_require(req, PERM_STAFF))
		return;
	pg_query(gw.db, "staff_list", 0, NULL, cfg.db_timeout_ms, staff_listed, req);
}

struct admin_state {
	bool disable; /* staff_disable: end the member's console sessions too */
	char id[37];
	char token[80]; /* token_create: the new token, answered once */
};

static void admin_done(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct admin_state *s = req->state;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, NULL);
		return;
	}
	if (s->disable)
		session_end_staff(req->params[0]);
	if (s->token[0])
		http_reply_json(req, 201, json_pack("{s:s,s:s,s:s}", "id", s->id, "staff_id", req->params[0], "token", s->token));
	else
		http_reply_json(req, 200, json_pack("{s:s,s:s}", "id", req->params[0], "state", "done"));
}

void staff_admin_query(struct http_req *req, const char *stmt, const char *const *extra, int nextra, pg_done_fn done)
{
	const char *params[12] = {req->params[0]};
	char ip[AUDIT_IP_CAP];
	audit_params(req, NULL, params + 1, ip);
	for (int i = 0; i < nextra && i < 5; i++)
		params[7 + i] = extra[i];
	pg_query(gw.db, stmt, 7 + nextra, params, cfg.db_timeout_ms, done, req);
}

void staff_token_new(char id[37], char token[80], char hash[65])
{
	util_uuid(id);
	char *t = util_token("fgs_", 32);
	snprintf(token, 80, "%s", t);
	free(t);
	util_sha256_hex(token, strlen(token), hash);
}

static void admin_run(struct http_req *req, const char *stmt, const char *const *extra, int nextra)
{
	staff_admin_query(req, stmt, extra, nextra, admin_done);
}

static bool admin_target(struct http_req *req)
{
	if (!auth_require(req, PERM_STAFF))
		return false;
	if (!util_uuid_valid(req->params[0])) {
		http_reply_error(req, ERR_NOT_FOUND, NULL, NULL);
		return false;
	}
	struct admin_state *s = xcalloc(1, sizeof *s);
	req->state = s;
	req->state_free = free;
	return true;
}

void staff_api_disable(struct http_req *req)
{
	if (!admin_target(req))
		return;
	((struct admin_state *)req->state)->disable = true;
	admin_run(req, "staff_disable", NULL, 0);
}

void staff_api_token_revoke(struct http_req *req)
{
	if (admin_target(req))
		admin_run(req, "token_revoke", NULL, 0);
}

void staff_api_token_create(struct http_req *req)
{
	if (!admin_target(req))
		return;
	struct admin_state *s = req->state;
	const char *label = "";
	json_t *body = NULL;
	if (req->body_len > 0) {
		body = http_parse_json_body(req, cfg.max_json_depth);
		if (!body)
			return;
		json_t *l = json_object_get(body, "label");
		if (!json_is_object(body) || (l && (!json_is_string(l) || json_string_length(l) > 100))) {
			json_decref(body);
			http_reply_error(req, ERR_VALIDATION, "label", "label: a string of at most 100 characters");
			return;
		}
		label = l ? json_string_value(l) : "";
	}
	char hash[65];
	staff_token_new(s->id, s->token, hash);
	const char *extra[3] = {s->id, hash, label};
	admin_run(req, "token_create", extra, 3);
	json_decref(body);
}
