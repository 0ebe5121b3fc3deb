/* Bearer keys and tokens: hashed, looked up once, cached per worker for a short while (a
 * revoked token or a disabled staff member is refused by every worker within
 * FEEGATE_AUTH_CACHE_TTL_S). Roles and the agency scope of staff are decided here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway/gateway.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/pgrow.h"
#include "lib/metrics.h"

#define CACHE_SLOTS 4096

static struct principal *cache[CACHE_SLOTS];

static void principal_release(void *p)
{
	struct principal *pr = p;
	if (--pr->refs == 0) {
		free(pr->agencies);
		free(pr);
	}
}

static unsigned slot_of(const char *hash)
{
	return (unsigned)strtoul((char[9]){hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7], 0},
				 NULL, 16) % CACHE_SLOTS;
}

void auth_cache_clear(void)
{
	for (int i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i]) {
			principal_release(cache[i]);
			cache[i] = NULL;
		}
	}
}

static const struct {
	const char *role;
	unsigned perms;
} role_perms[] = {
	{"agency", 1u << PERM_VIEW | 1u << PERM_EXPORT},
	{"finance", 1u << PERM_VIEW | 1u << PERM_EXPORT | 1u << PERM_REFUND | 1u << PERM_IMPORT | 1u << PERM_CASES},
	{"admin", 1u << PERM_STAFF | 1u << PERM_AUDIT},
	{"auditor", 1u << PERM_VIEW | 1u << PERM_EXPORT | 1u << PERM_AUDIT},
};

bool auth_can(const struct principal *p, enum perm perm)
{
	if (!p || p->kind != PRINCIPAL_STAFF)
		return false;
	for (size_t i = 0; i < ARRAY_LEN(role_perms); i++)
		if (strcmp(p->role, role_perms[i].role) == 0)
			return (role_perms[i].perms >> perm) & 1u;
	return false;
}

const char *auth_agency_scope(const struct principal *p, char *buf, size_t cap)
{
	if (p->kind == PRINCIPAL_STAFF && strcmp(p->role, "agency") != 0)
		return NULL;
	/* agency staff (and, defensively, anyone else) see only the agencies they are bound to;
	 * one that does not fit in buf is left out, never widened to "all" */
	size_t o = (size_t)snprintf(buf, cap, "{");
	for (int i = 0; i < p->nagencies && o + 24 < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? "," : "", (long long)p->agencies[i].id);
	snprintf(buf + o, cap - o, "}");
	return buf;
}

bool auth_require(struct http_req *req, enum perm perm)
{
	static const char *const why[] = {
		[PERM_VIEW] = "your role may not see this",
		[PERM_EXPORT] = "your role may not export",
		[PERM_REFUND] = "refunds and their confirmations are finance's",
		[PERM_IMPORT] = "imports are finance's",
		[PERM_CASES] = "cases are handled by finance",
		[PERM_STAFF] = "staff and tokens are managed by admins",
		[PERM_AUDIT] = "the audit log is for admins and auditors",
	};
	if (auth_can(req_principal(req), perm))
		return true;
	http_reply_error(req, ERR_FORBIDDEN, NULL, why[perm]);
	return false;
}

/* "id:code,id:code" into p->agencies */
static void parse_agencies(struct principal *p, const char *list)
{
	int n = *list ? 1 : 0;
	for (const char *c = list; *c; c++)
		n += *c == ',';
	p->agencies = xcalloc((size_t)(n ? n : 1), sizeof(struct agency_ref));
	const char *c = list;
	while (*c && p->nagencies < n) {
		struct agency_ref *a = &p->agencies[p->nagencies];
		char *end;
		a->id = strtoll(c, &end, 10);
		if (*end != ':')
			break;
		size_t len = strcspn(end + 1, ",");
		snprintf(a->code, sizeof a->code, "%.*s", (int)(len < 32 ? len : 32), end + 1);
		p->nagencies++;
		c = end + 1 + len;
		if (*c == ',')
			c++;
	}
}

struct principal *auth_staff_principal(const char *id, const char *role, const char *email, const char *agencies)
{
	struct principal *p = xcalloc(1, sizeof *p);
	p->refs = 1;
	p->kind = PRINCIPAL_STAFF;
	p->session = true;
	snprintf(p->id, sizeof p->id, "%s", id);
	snprintf(p->role, sizeof p->role, "%s", role);
	snprintf(p->email, sizeof p->email, "%s", email ? email : "");
	parse_agencies(p, agencies ? agencies : "");
	return p;
}

void auth_attach(struct http_req *req, struct principal *p)
{
	p->refs++;
	req->principal = p;
	req->principal_free = principal_release;
}

void auth_release(struct principal *p)
{
	principal_release(p);
}

const struct principal *req_principal(const struct http_req *req)
{
	return req->principal;
}

struct auth_wait {
	http_handler next;
	enum auth_rule rule;
	char hash[65];
};

static void rate_decided(void *arg, bool allowed, int retry_after_s)
{
	struct http_req *req = arg;
	struct auth_wait *w = req->state;
	http_handler next = w->next;
	enum auth_rule rule = w->rule;
	free(w);
	req->state = NULL;
	req->state_free = NULL;
	const struct principal *p = req_principal(req);
	if (!allowed) {
		char s[16];
		snprintf(s, sizeof s, "%d", retry_after_s);
		http_add_header(req, "Retry-After", s);
		http_reply_error(req, ERR_RATE_LIMITED, NULL, NULL);
		return;
	}
	if ((rule == AUTH_CLIENT && p->kind != PRINCIPAL_CLIENT) || (rule == AUTH_STAFF && p->kind != PRINCIPAL_STAFF)) {
		http_reply_error(req, ERR_FORBIDDEN, NULL,
				 rule == AUTH_CLIENT ? "this route is for portal clients" : "this route is for staff");
		return;
	}
	next(req);
}

/* The principal is the request's from here on; the rate limit (one budget per client or
 * staff member, lib/ratelimit.h) decides before the route's rule. */
static void finish(struct http_req *req, struct principal *p, enum auth_rule rule, http_handler next)
{
	p->refs++;
	req->principal = p;
	req->principal_free = principal_release;
	struct auth_wait *w = xcalloc(1, sizeof *w);
	w->next = next;
	w->rule = rule;
	req->state = w;
	req->state_free = free;
	char key[48];
	snprintf(key, sizeof key, "%c:%s", p->kind == PRINCIPAL_CLIENT ? 'c' : 's', p->id);
	ratelimit_check(gw.ratelimit, key, &p->bucket, rate_decided, req);
}

/* auth: a portal client's key or a staff member's token */
static const struct pg_word principal_kinds[] = {{"client", PRINCIPAL_CLIENT}, {NULL, PRINCIPAL_STAFF}};
struct principal_row {
	int kind; /* enum principal_kind */
	const char *id, *name, *role, *email;
	const char *agencies; /* "id:code,id:code" */
};
static const struct pg_col principal_cols[] = {
	PG_COL_WORD(struct principal_row, kind, principal_kinds),
	PG_COL(struct principal_row, id, PG_TEXT),
	PG_COL(struct principal_row, name, PG_TEXT),
	PG_COL(struct principal_row, role, PG_TEXT),
	PG_COL(struct principal_row, email, PG_TEXT),
	PG_COL(struct principal_row, agencies, PG_TEXT),
};

static struct principal *principal_from_row(PGresult *res, const char *hash)
{
	struct principal_row r;
	if (!PG_ROW(res, 0, principal_cols, &r))
		return NULL;
	struct principal *p = xcalloc(1, sizeof *p);
	p->refs = 1;
	p->kind = (enum principal_kind)r.kind;
	snprintf(p->id, sizeof p->id, "%s", r.id);
	snprintf(p->role, sizeof p->role, "%s", r.role);
	snprintf(p->email, sizeof p->email, "%s", r.email);
	snprintf(p->key_hash, sizeof p->key_hash, "%s", hash);
	parse_agencies(p, r.agencies);
	p->expires_us = util_monotonic_us() + (int64_t)cfg.auth_cache_ttl_s * 1000000;
	return p;
}

static void auth_looked_up(void *arg, PGresult *res, enum pg_status st)
{
	struct http_req *req = arg;
	struct auth_wait *w = req->state;
	http_handler next = w->next;
	enum auth_rule rule = w->rule;
	char hash[65];
	memcpy(hash, w->hash, sizeof hash);
	free(w);
	req->state = NULL;
	req->state_free = NULL;
	if (st != PG_OK) {
		reply_db_failure(req, res, st);
		return;
	}
	if (PQntuples(res) != 1) {
		log_info(req->id, "unknown bearer credential");
		http_reply_error(req, ERR_UNAUTHORIZED, NULL, "the key or token is not valid");
		return;
	}
	struct principal *p = principal_from_row(res, hash);
	if (!p) {
		reply_db_failure(req, res, PG_SQL_ERROR);
		return;
	}
	unsigned slot = slot_of(hash);
	if (cfg.auth_cache_ttl_s > 0) {
		if (cache[slot])
			principal_release(cache[slot]);
		cache[slot] = p;
		p->refs++;
	}
	finish(req, p, rule, next);
	principal_release(p);
}

void auth_run(struct http_req *req, enum auth_rule rule, http_handler next)
{
	const char *h = http_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
		http_reply_error(req, ERR_UNAUTHORIZED, NULL, "send Authorization: Bearer <key or token>");
		return;
	}
	const char *token = h + 7;
	while (*token == ' ')
		token++;
	size_t len = strlen(token);
	while (len && token[len - 1] == ' ')
		len--;
	if (len == 0 || len > 200) {
		http_reply_error(req, ERR_UNAUTHORIZED, NULL, "the key or token is not valid");
		return;
	}
	char hash[65];
	util_sha256_hex(token, len, hash);
	unsigned slot = slot_of(hash);
	struct principal *p = cache[slot];
	if (p && strcmp(p->key_hash, hash) == 0) {
		if (p->expires_us > util_monotonic_us()) {
			static metric_id hits = -1;
			if (hits < 0)
				hits = metrics_counter("feegate_auth_cache_hits_total", NULL,
						       "API keys and staff tokens answered from the worker's cache.");
			metrics_add(hits, 1);
			finish(req, p, rule, next);
			return;
		}
		principal_release(p);
		cache[slot] = NULL;
	}
	struct auth_wait *w = xcalloc(1, sizeof *w);
	w->next = next;
	w->rule = rule;
	memcpy(w->hash, hash, sizeof hash);
	req->state = w;
	req->state_free = free;
	const char *params[1] = {hash};
	pg_query(gw.db, "auth", 1, params, cfg.db_timeout_ms, auth_looked_up, req);
}

