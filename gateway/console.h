#ifndef FEEGATE_CONSOLE_H
#define FEEGATE_CONSOLE_H
/*
 * The staff console under /console/: server-rendered HTML in Vietnamese, one stylesheet served
 * by the gateway, no script, a strict Content-Security-Policy. Every page checks the session
 * (gateway/session.h), the role (auth_can) and, for an object, its agency (another agency's
 * order is a 404). Every POST carries the session's CSRF token or is refused 403.
 */
#include "lib/http.h"

void console_css(struct http_req *req);
void console_login_page(struct http_req *req);
void console_login(struct http_req *req);
void console_logout(struct http_req *req);
void console_home(struct http_req *req);
void console_orders(struct http_req *req);
void console_order(struct http_req *req);
void console_audit(struct http_req *req);
void console_staff(struct http_req *req);
void console_staff_disable(struct http_req *req);
void console_token_create(struct http_req *req);
void console_token_revoke(struct http_req *req);
void console_orders_export(struct http_req *req);       /* GET /console/orders/export?...&format=csv|xlsx */
void console_cases(struct http_req *req);
void console_case(struct http_req *req);
void console_case_acknowledge(struct http_req *req);
void console_case_resolve(struct http_req *req);
void console_case_approve(struct http_req *req);
void console_statements(struct http_req *req);
void console_statement_upload(struct http_req *req);    /* POST /console/statements, a streamed multipart body */
void console_statement(struct http_req *req);
void console_settlement(struct http_req *req);
void console_settlement_download(struct http_req *req); /* the report's CSV, XLSX or JSON */
void console_refunds(struct http_req *req);
void console_refund_approve(struct http_req *req);
void console_refund_confirm(struct http_req *req);
void console_password_page(struct http_req *req);
void console_password(struct http_req *req);
void console_totp_page(struct http_req *req);
void console_totp(struct http_req *req);
void console_setup_page(struct http_req *req);
void console_setup(struct http_req *req);

#endif
