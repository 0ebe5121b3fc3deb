/* Reading the fields of bank JSON messages the way their signatures see them. */
#ifndef FEEGATE_ADAPTERS_JSONFIELD_H
#define FEEGATE_ADAPTERS_JSONFIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/strbuf.h"

/* Appends the field as signed text: a string as is, an integer in decimal,
 * true/false, and "" when missing or null. False for a real, object or array. */
bool jsonfield_text(const json_t *obj, const char *key, struct strbuf *out) __attribute__((warn_unused_result));
/* The field's text copied into dst[cap]; false when missing, not text or too long. */
bool jsonfield_copy(const json_t *obj, const char *key, char *dst, size_t cap) __attribute__((warn_unused_result));
/* An integer field, or a string holding only a decimal integer. */
bool jsonfield_int64(const json_t *obj, const char *key, int64_t *out) __attribute__((warn_unused_result));
/* Parses a response body as a JSON object (duplicate keys rejected); NULL if it is not one. */
json_t *jsonfield_parse_object(const char *body, size_t len);
/* Serialises obj compactly (malloc'ed), NULL on failure. */
char *jsonfield_dump(const json_t *obj, size_t *len);

#endif
