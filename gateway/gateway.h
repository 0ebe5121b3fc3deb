#ifndef FEEGATE_GATEWAY_H
#define FEEGATE_GATEWAY_H
/* What one worker process owns: its loop, its database pool, its Redis connection. */
#include <stdbool.h>
#include <stdint.h>

#include "lib/http.h"
#include "lib/pgpool.h"
#include "lib/pgreply.h"
#include "lib/ratelimit.h"
#include "lib/redis.h"

struct gateway {
	struct event_base *base;
	struct pg_pool *db;
	struct redis *redis;
	struct ratelimit *ratelimit; /* per-client budgets (FEEGATE_RATE_LIMIT_*) */
	int worker; /* 0..FEEGATE_WORKERS-1; worker 0 also runs the background sweepers */
	bool draining;
};
extern struct gateway gw;

/* Who may call a route. */
enum auth_rule { AUTH_NONE, AUTH_CLIENT, AUTH_STAFF, AUTH_ANY };

enum principal_kind { PRINCIPAL_CLIENT, PRINCIPAL_STAFF };

struct agency_ref {
	int64_t id;
	char code[33];
};

struct principal {
	int refs;
	enum principal_kind kind;
	char id[37];
	char role[16];      /* staff: agency | finance | admin | auditor */
	char email[255];    /* staff: the audit log's label for the actor */
	bool session;       /* staff signed in to the console (else a bearer token) */
	int nagencies;      /* clients: the agencies they may bill; agency staff: the ones they see */
	struct agency_ref *agencies;
	char key_hash[65];
	int64_t expires_us; /* cache expiry */
	struct rl_bucket bucket; /* this worker's rate-limit bucket: decides when Redis cannot */
};

/* What a staff member may do. Roles are sets of these (the one table is in auth.c); every
 * route asks auth_can, and scopes its rows with auth_agency_scope. */
enum perm {
	PERM_VIEW,   /* collections, cases, statements, reports, ledger: within the agency scope */
	PERM_EXPORT, /* download reports and exports: within the agency scope */
	PERM_REFUND, /* create and confirm refunds */
	PERM_IMPORT, /* import bank files and treasury statements */
	PERM_CASES,  /* acknowledge, resolve and approve cases */
	PERM_STAFF,  /* staff and tokens */
	PERM_AUDIT,  /* read the audit log */
};
bool auth_can(const struct principal *p, enum perm perm) WARN_UNUSED;
/* NULL when p sees every agency; else a PostgreSQL bigint[] literal of the agencies it is bound
 * to ("{3}"), written into buf. SQL reads it as ($n::bigint[] IS NULL OR agency_id = ANY($n)). */
#define AUTH_SCOPE_CAP 512
const char *auth_agency_scope(const struct principal *p, char *buf, size_t cap);
/* auth_can for the request's principal; answers 403 and returns false when it may not. */
bool auth_require(struct http_req *req, enum perm perm) WARN_UNUSED;
/* A staff principal from its fields (agencies as "id:code,id:code"), one reference held by
 * the caller; auth_attach gives req its own reference (the console's sessions use these). */
struct principal *auth_staff_principal(const char *id, const char *role, const char *email, const char *agencies);
void auth_attach(struct http_req *req, struct principal *p);
void auth_release(struct principal *p);

/* Authenticates req per rule, then calls next(req) with req->principal set, or answers
 * 401/403/503 itself. */
void auth_run(struct http_req *req, enum auth_rule rule, http_handler next);
const struct principal *req_principal(const struct http_req *req);
void auth_cache_clear(void);


/* Handlers */
void orders_create(struct http_req *req);
void orders_get(struct http_req *req);
void orders_list(struct http_req *req);
void orders_cancel(struct http_req *req);
void checkout_page(struct http_req *req);
void checkout_choose(struct http_req *req);
void checkout_transfer_again(struct http_req *req); /* the open transfer again (the QR page's refresh) */
void checkout_status(struct http_req *req);
#define CHECKOUT_REF_LEN 12 /* every attempt's bank_order_ref: "FG" and 10 letters or digits */
void checkout_new_ref(char out[CHECKOUT_REF_LEN + 1]);
void bank_return(struct http_req *req);
void bank_notification(struct http_req *req);
void refunds_create(struct http_req *req);
void refunds_list(struct http_req *req);
void refunds_confirm(struct http_req *req);
void refunds_approve(struct http_req *req); /* POST /v1/refund-approvals/{id}/approve */
void ledger_accounts(struct http_req *req);  /* GET /v1/ledger/accounts */
void ledger_account(struct http_req *req);   /* GET /v1/ledger/accounts/{id} */
void ops_healthz(struct http_req *req);
void ops_readyz(struct http_req *req);
void ops_metrics(struct http_req *req);

/* 200000 -> "200.000 ₫" */
void format_vnd(int64_t amount, char *out, size_t cap);


/* Group-committed intake (intake.c). */
enum intake_outcome {
	INTAKE_CREATED,
	INTAKE_REPLAY,
	INTAKE_DUPLICATE,
	INTAKE_KEY_REUSED,
	INTAKE_KEY_IN_USE,
	INTAKE_UNAVAILABLE,
	INTAKE_FAILED
};
struct intake_result {
	enum intake_outcome outcome;
	int status;
	const char *body;     /* stored answer on replay */
	const char *order_id; /* created or existing order */
};
typedef void (*intake_done_fn)(void *arg, const struct intake_result *r);
/* Queues one order row (steals row) for the next batch. */
void intake_submit(json_t *row, intake_done_fn done, void *arg);
int intake_pending(void);
void intake_init(void);
void intake_shutdown(void);

#endif
