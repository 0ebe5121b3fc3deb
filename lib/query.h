#ifndef FEEGATE_QUERY_H
#define FEEGATE_QUERY_H
/*
 * The query-string rule of every route, in one place: a route names the parameters it takes
 * and their types; anything else (an unknown name, a repeated name, a bad value, an encoded
 * NUL or control character, invalid UTF-8) is answered 400 validation_failed naming the
 * parameter in `field`, before the handler does any work. List routes add QUERY_LIST, the
 * contract's list rule: `limit` 1-500 (default 50) and an opaque `cursor`.
 */
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "lib/http.h"
#include "lib/util.h"

enum query_type {
	Q_TEXT,   /* 1..max characters (max 0: 255) */
	Q_INT,    /* decimal integer in [min, max] */
	Q_DATE,   /* YYYY-MM-DD, a real calendar date */
	Q_CHOICE, /* one of choices, "a|b|c" */
	Q_UUID,   /* canonical 8-4-4-4-12 hex */
	Q_CURSOR, /* the next_cursor of a previous page: 1-200 of [A-Za-z0-9._:=-] */
	Q_LIMIT,  /* page size 1-500, default 50 */
};

struct query_field {
	const char *name;
	enum query_type type;
	const char *choices; /* Q_CHOICE only */
	int64_t min, max;    /* Q_INT bounds; Q_TEXT max characters */
};

#define QUERY_LIST {"limit", Q_LIMIT, NULL, 0, 0}, {"cursor", Q_CURSOR, NULL, 0, 0}
#define QUERY_MAX_FIELDS 24
#define QUERY_DEFAULT_LIMIT 50
#define QUERY_MAX_LIMIT 500

/* Values in the order of the route's fields: value[i] is the decoded text or NULL when the
 * parameter was not given; num[i] its number (Q_INT, Q_LIMIT: the default when absent). */
struct query {
	int n;
	const struct query_field *fields;
	char *value[QUERY_MAX_FIELDS];
	int64_t num[QUERY_MAX_FIELDS];
};

/* Checks req's query string against fields. True with *out filled; false when it has
 * already answered 400 (out is then empty). Free with query_free either way. */
bool query_parse(struct http_req *req, const struct query_field *fields, int n, struct query *out) WARN_UNUSED;
/* The answer to a cursor that is no next_cursor of a previous page (a route checks its meaning). */
#define QUERY_BAD_CURSOR "cursor must be the next_cursor of a previous page"
void query_reply_bad_cursor(struct http_req *req);
/* The value of the named field, or NULL when absent (the name must be one of the route's). */
const char *query_get(const struct query *q, const char *name);
int64_t query_num(const struct query *q, const char *name);
void query_free(struct query *q);

/* For a list small enough to read whole (an order's refunds, the ledger accounts): the page of
 * all (an array, stolen) that q's limit and cursor ask for, as {"data", "next_cursor"}; the
 * cursor is the offset of the next page ("o:N"). NULL when the cursor is not one of ours. */
json_t *query_page_array(json_t *all, const struct query *q);
/* A keyset page's next_cursor: when rows (a JSON array) holds limit rows, its last row's key
 * (a number as its decimal text), else JSON null. A new reference. */
json_t *query_next_cursor(const json_t *rows, int limit, const char *key);
/* A route that takes the list rule's parameters alone (QUERY_LIST): checks them and keeps them
 * in req->state for query_reply_page; false when it has answered 400. */
bool query_parse_list(struct http_req *req) WARN_UNUSED;
/* Replies the page query_parse_list asked for of the JSON array in array_text. */
void query_reply_page(struct http_req *req, const char *array_text);

/* The checker without a request, for tests and the CLI: NULL when raw is acceptable, else a
 * message, with *field set to the parameter at fault. */
const char *query_check(const char *raw, const struct query_field *fields, int n, struct query *out,
			const char **field);

#endif
