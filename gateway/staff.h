#ifndef FEEGATE_STAFF_H
#define FEEGATE_STAFF_H
/*
 * Staff identity: roles, e-mail rule, recovery codes, password hashing off the loop, and the
 * admin API for staff and tokens (GET /v1/staff, POST /v1/staff/{id}/disable,
 * POST /v1/staff/{id}/tokens, POST /v1/tokens/{id}/revoke).
 */
#include <stdbool.h>
#include <stddef.h>

#include "lib/http.h"
#include "lib/pgpool.h"
#include "lib/pgrow.h"
#include "lib/util.h"

#define STAFF_RECOVERY_CODES 10

struct staff_recovery {
	char codes[STAFF_RECOVERY_CODES][16];              /* shown once: XXXXX-XXXXX */
	char hashes_literal[STAFF_RECOVERY_CODES * 66 + 4]; /* text[] literal of their SHA-256 */
};

bool staff_role_valid(const char *role) WARN_UNUSED;
bool staff_role_needs_totp(const char *role) WARN_UNUSED; /* finance and admin */
bool staff_email_valid(const char *email) WARN_UNUSED;
void staff_recovery_new(struct staff_recovery *out);
/* SHA-256 hex of a recovery code as typed (spaces and dashes dropped, upper-cased). */
void staff_recovery_hash(const char *typed, char out[65]);

/* Password work on this worker's small hashing pool (FEEGATE_HASH_THREADS threads, a short
 * queue). done(arg, ok) runs on the loop; ok is whether the password matched (verify) or the
 * hash was made into out (hash). false from the call itself: the pool is full (answer 503). */
typedef void (*staff_passwd_fn)(void *arg, bool ok);
bool staff_passwd_verify(const char *password, const char *stored, staff_passwd_fn done, void *arg) WARN_UNUSED;
bool staff_passwd_hash(const char *password, char *out, staff_passwd_fn done, void *arg) WARN_UNUSED;
void staff_shutdown(void);

/* Runs an admin statement of db.c on the request's target (req->params[0]): its parameters are
 * the target, the acting staff's six audit values (audit_params), then up to five extra. */
void staff_admin_query(struct http_req *req, const char *stmt, const char *const *extra, int nextra, pg_done_fn done);
/* A new staff API token: its id, the token (shown once) and the SHA-256 that is stored. */
void staff_token_new(char id[37], char token[80], char hash[65]);

void staff_api_list(struct http_req *req);
void staff_api_disable(struct http_req *req);
void staff_api_token_create(struct http_req *req);
void staff_api_token_revoke(struct http_req *req);

/* staff_list, for the admin API and the console: every staff member as a JSON array */
struct staff_list_row {
	const char *staff;
};
extern const struct pg_col staff_list_cols[1];

#endif
