#ifndef FEEGATE_SESSION_H
#define FEEGATE_SESSION_H
/*
 * Console sessions, held in Redis only (key "session:<SHA-256 of the cookie's id>"), so that
 * losing Redis signs everybody out and loses nothing else. The cookie (fg_session) is
 * HttpOnly, SameSite=Strict, Path=/console, and Secure when the request came over TLS. A
 * session ends after FEEGATE_SESSION_IDLE_S without a request, FEEGATE_SESSION_MAX_S after
 * sign-in, or at sign-out (deleted server-side). Each carries its CSRF token.
 */
#include <stdbool.h>
#include <stdint.h>

#include "lib/http.h"

#define SESSION_COOKIE "fg_session"
#define SESSION_LOGIN_COOKIE "fg_login" /* the sign-in form's CSRF token, before a session */

struct session {
	char key[80];        /* the Redis key */
	char csrf[48];
	char staff_id[37];
	char role[16];
	char email[255];
	char name[256];
	char agencies[512];  /* "id:code,..." */
	bool must_enrol;     /* finance/admin without TOTP yet: only the enrolment page opens */
	int64_t created;     /* unix seconds */
};

/* done(req, s): s is NULL without a (live) session; it is valid during the call only. */
typedef void (*session_fn)(struct http_req *req, struct session *s);
void session_load(struct http_req *req, session_fn done);
/* Creates a session for s's identity fields (key and csrf are filled in), sets the cookie;
 * done(req, s) with s NULL when Redis did not take it. */
void session_create(struct http_req *req, struct session *s, session_fn done);
/* Rewrites a session after a change (must_enrol cleared), keeping its deadline. */
void session_save(const struct session *s);
void session_end(struct http_req *req, const struct session *s);
/* Ends every session of a staff member (disabled by an admin through the gateway). */
void session_end_staff(const char *staff_id);

/* The value of a cookie of the request, or NULL (into buf). */
const char *session_cookie(struct http_req *req, const char *name, char *buf, size_t cap);
void session_set_cookie(struct http_req *req, const char *name, const char *value, int max_age_s);
/* Whether req arrived over TLS (an OpenSSL bufferevent under its connection): the hook the TLS
 * listener needs nothing more than to exist for Secure cookies. */
bool session_request_tls(struct http_req *req);

#endif
