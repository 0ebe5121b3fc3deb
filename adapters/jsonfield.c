#include "adapters/jsonfield.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapters/adapter.h"
#include "lib/util.h"

bool jsonfield_text(const json_t *obj, const char *key, struct strbuf *out)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return true;
	if (json_is_string(v)) {
		strbuf_append(out, json_string_value(v), json_string_length(v));
		return true;
	}
	if (json_is_integer(v)) {
		strbuf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return true;
	}
	if (json_is_boolean(v)) {
		strbuf_puts(out, json_is_true(v) ? "true" : "false");
		return true;
	}
	return false;
}

bool jsonfield_copy(const json_t *obj, const char *key, char *dst, size_t cap)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v))
			goto fail; /* embedded NUL */
		return adapter_copy(dst, cap, json_string_value(v));
	}
	if (json_is_integer(v)) {
		int n = snprintf(dst, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (n < 0 || (size_t)n >= cap)
			goto fail;
		return true;
	}
fail:
	if (cap)
		dst[0] = '\0';
	return false;
}

bool jsonfield_int64(const json_t *obj, const char *key, int64_t *out)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return true;
	}
	if (json_is_string(v))
		return util_parse_int64(json_string_value(v), out);
	return false;
}

json_t *jsonfield_parse_object(const char *body, size_t len)
{
	if (!body)
		return NULL;
	json_error_t err;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	if (root && !json_is_object(root)) {
		json_decref(root);
		return NULL;
	}
	return root;
}

char *jsonfield_dump(const json_t *obj, size_t *len)
{
	char *s = json_dumps(obj, JSON_COMPACT);
	if (s && len)
		*len = strlen(s);
	return s;
}
