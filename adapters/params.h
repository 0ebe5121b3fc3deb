/* Ordered name/value lists as carried in query strings, with the form encoding
 * of PHP's urlencode()/urldecode(): VNPAY signs that exact text. */
#ifndef FEEGATE_ADAPTERS_PARAMS_H
#define FEEGATE_ADAPTERS_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/strbuf.h"

typedef struct params_pair {
	char *name;
	char *value;
} params_pair;

typedef struct params {
	params_pair *items;
	size_t len;
	size_t cap;
} params;

void params_init(params *p);
void params_free(params *p);
/* Appends copies of name and value (a repeated name is kept twice). True: memory is lib/mem.h's,
 * whose failure aborts (the result lets a builder chain its steps). */
bool params_add(params *p, const char *name, const char *value);
/* Replaces the value of the first pair called name, or appends it; true. */
bool params_set(params *p, const char *name, const char *value);
void params_remove(params *p, const char *name);
/* The value of the first pair called name, or NULL. */
const char *params_get(const params *p, const char *name);
size_t params_count(const params *p, const char *name);
/* Sorts by name, byte-wise (PHP ksort on ASCII names); equal names keep their order. */
void params_sort(params *p);

/* Splits a raw query string ("a=1&b=x+y") on '&' and '=' and decodes both sides
 * as PHP urldecode does. A NULL or empty query gives an empty list. Fails on an
 * encoded NUL byte. */
bool params_parse_query(params *p, const char *query) __attribute__((warn_unused_result));

/* PHP urlencode: A-Z a-z 0-9 - _ . stay, space becomes '+', every other byte %XX
 * with upper-case hex. */
void params_urlencode(struct strbuf *out, const char *s, size_t len);
/* PHP urldecode into out; '+' is a space, a '%' not followed by two hex digits
 * is kept as it is. Fails (returns false) on %00. */
bool params_urldecode(struct strbuf *out, const char *s, size_t len) __attribute__((warn_unused_result));

/* name=value pairs, each side PHP-urlencoded, joined with '&', in list order. */
void params_encode(struct strbuf *out, const params *p);

#endif
