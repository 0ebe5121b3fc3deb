#ifndef FEEGATE_PGREPLY_H
#define FEEGATE_PGREPLY_H
/* The answer to a request whose query failed in the pool: 503 for unavailable, a timeout or a
 * serialization conflict (nothing changed, the client may retry), 500 for any other SQL error
 * (logged with its SQLSTATE). */
#include "lib/http.h"
#include "lib/pgpool.h"

void reply_db_failure(struct http_req *req, PGresult *res, enum pg_status st);

#endif
