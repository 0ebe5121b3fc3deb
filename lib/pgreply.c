#include "lib/pgreply.h"

#include <string.h>

#include "lib/errors.h"
#include "lib/log.h"

void reply_db_failure(struct http_req *req, PGresult *res, enum pg_status st)
{
	const char *state = pg_sqlstate(res);
	if (st == PG_SQL_ERROR && strncmp(state, "40", 2) == 0) {
		/* deadlock or serialization failure: nothing was changed; the client may retry */
		log_warn(req->id, "database conflict %s; answering 503", state);
		http_reply_error(req, ERR_UNAVAILABLE, NULL, "a concurrent change conflicted with this request; retry");
		return;
	}
	if (st == PG_SQL_ERROR) {
		log_error(req->id, "database error %s: %s", pg_sqlstate(res), res ? PQresultErrorMessage(res) : "");
		http_reply_error(req, ERR_INTERNAL, NULL, NULL);
		return;
	}
	http_reply_error(req, ERR_UNAVAILABLE, NULL,
			 st == PG_TIMEOUT ? "the database did not answer in time; retry later"
					  : "the database is unavailable; retry later");
}
