#ifndef FEEGATE_GATEWAY_RECONCILE_H
#define FEEGATE_GATEWAY_RECONCILE_H
/* Reconciliation routes (staff): statements and cases. */
#include "lib/http.h"

void statements_import(struct http_req *req); /* POST /v1/statements?source=S (finance) */
void statements_list(struct http_req *req);   /* GET /v1/statements */
void statements_get(struct http_req *req);    /* GET /v1/statements/{id}: its lines' outcomes */
void exceptions_list(struct http_req *req);   /* GET /v1/exceptions */
void cases_acknowledge(struct http_req *req); /* POST /v1/exceptions/{id}/acknowledge */
void cases_resolve(struct http_req *req);     /* POST /v1/exceptions/{id}/resolve */
void cases_approve(struct http_req *req);     /* POST /v1/exceptions/{id}/approve */

#endif
