#include "gateway/order_validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_ITEMS 100

static bool fail(struct validation_error *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

bool order_amount_valid(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= ADAPTER_AMOUNT_MAX;
}

static bool fail(struct validation_error *e, const char *field, const char *fmt, ...)
{
	e->err = ERR_VALIDATION;
	snprintf(e->field, sizeof e->field, "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	return false;
}

/* A string of min..max characters (code points) with no control characters. */
static bool text_ok(json_t *v, long min, long max)
{
	if (!json_is_string(v))
		return false;
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (strlen(s) != n)
		return false; /* embedded NUL */
	long chars = util_utf8_length(s, n);
	if (chars < min || chars > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool check_text(json_t *body, const char *field, bool required, long min, long max, const char **out,
		       struct validation_error *e)
{
	json_t *v = json_object_get(body, field);
	if (!v || json_is_null(v)) {
		*out = NULL;
		if (required)
			return fail(e, field, "%s is required", field);
		return true;
	}
	if (!json_is_string(v))
		return fail(e, field, "%s must be a string", field);
	if (!text_ok(v, min, max))
		return fail(e, field, "%s must be %ld to %ld characters, without control characters", field, min, max);
	*out = json_string_value(v);
	return true;
}

static bool check_items(json_t *items, int64_t amount, struct validation_error *e)
{
	if (!json_is_array(items))
		return fail(e, "items", "items must be an array of {code, name, amount}");
	size_t n = json_array_size(items);
	if (n == 0 || n > MAX_ITEMS)
		return fail(e, "items", "items must hold 1 to %d entries", MAX_ITEMS);
	int64_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *it = json_array_get(items, i);
		if (!json_is_object(it))
			return fail(e, "items", "items[%zu] must be an object {code, name, amount}", i);
		const char *key;
		json_t *val;
		json_object_foreach(it, key, val)
		{
			if (strcmp(key, "code") && strcmp(key, "name") && strcmp(key, "amount"))
				return fail(e, "items", "items[%zu] has an unknown field \"%.40s\"", i, key);
		}
		if (!text_ok(json_object_get(it, "code"), 1, 64))
			return fail(e, "items", "items[%zu].code must be a string of 1 to 64 characters", i);
		if (!text_ok(json_object_get(it, "name"), 1, 255))
			return fail(e, "items", "items[%zu].name must be a string of 1 to 255 characters", i);
		json_t *a = json_object_get(it, "amount");
		if (!order_amount_valid(a))
			return fail(e, "items", "items[%zu].amount must be " ORDER_AMOUNT_RULE, i, ORDER_AMOUNT_LIMIT);
		sum += json_integer_value(a);
	}
	if (sum != amount)
		return fail(e, "items", "the items' amounts add up to %lld, not to the order amount %lld", (long long)sum,
			    (long long)amount);
	return true;
}

static bool check_payer(json_t *payer, struct validation_error *e)
{
	static const struct {
		const char *name;
		long max;
	} fields[] = {{"name", 255}, {"id_number", 32}, {"email", 254}, {"phone", 20}};
	if (!json_is_object(payer))
		return fail(e, "payer", "payer must be an object {name, id_number, email, phone}");
	const char *key;
	json_t *val;
	json_object_foreach(payer, key, val)
	{
		size_t f;
		for (f = 0; f < ARRAY_LEN(fields); f++) {
			if (strcmp(key, fields[f].name) == 0)
				break;
		}
		if (f == ARRAY_LEN(fields))
			return fail(e, "payer", "payer has an unknown field \"%.40s\"", key);
		if (json_is_null(val))
			continue;
		if (!text_ok(val, 1, fields[f].max))
			return fail(e, "payer", "payer.%s must be a string of 1 to %ld characters", key, fields[f].max);
		const char *s = json_string_value(val);
		if (strcmp(key, "email") == 0) {
			const char *at = strchr(s, '@');
			if (!at || at == s || !at[1] || strchr(at + 1, '@') || strchr(s, ' '))
				return fail(e, "payer", "payer.email is not an e-mail address");
		} else if (strcmp(key, "phone") == 0) {
			for (const char *p = s; *p; p++) {
				if (!((*p >= '0' && *p <= '9') || (p == s && *p == '+') || *p == ' '))
					return fail(e, "payer", "payer.phone may hold only digits, spaces and a leading +");
			}
		}
	}
	return true;
}

static bool check_metadata(json_t *md, struct validation_error *e)
{
	if (!json_is_object(md))
		return fail(e, "metadata", "metadata must be an object");
	if (json_object_size(md) > 10)
		return fail(e, "metadata", "metadata may hold at most 10 keys");
	const char *key;
	json_t *val;
	json_object_foreach(md, key, val)
	{
		long klen = util_utf8_length(key, strlen(key));
		if (klen < 1 || klen > 40)
			return fail(e, "metadata", "metadata keys must be 1 to 40 characters");
		if (json_is_string(val)) {
			if (util_utf8_length(json_string_value(val), json_string_length(val)) > 500)
				return fail(e, "metadata", "metadata.%.40s is longer than 500 characters", key);
		} else if (!json_is_number(val) && !json_is_boolean(val)) {
			return fail(e, "metadata", "metadata.%.40s must be a string, a number or a boolean", key);
		}
	}
	return true;
}

bool order_validate(json_t *body, struct order_input *out, struct validation_error *e)
{
	static const char *const known[] = {"reference", "agency",     "description", "amount",
					    "currency",  "items",      "procedure",   "payer",
					    "return_url", "expires_in", "metadata"};
	memset(out, 0, sizeof *out);
	if (!json_is_object(body))
		return fail(e, NULL, "the body must be a JSON object");
	const char *key;
	json_t *val;
	json_object_foreach(body, key, val)
	{
		size_t k;
		for (k = 0; k < ARRAY_LEN(known); k++) {
			if (strcmp(key, known[k]) == 0)
				break;
		}
		if (k == ARRAY_LEN(known))
			return fail(e, key, "unknown field \"%.40s\"", key);
	}
	if (!check_text(body, "reference", true, 1, 64, &out->reference, e))
		return false;
	if (!check_text(body, "agency", true, 1, 32, &out->agency, e))
		return false;
	if (!check_text(body, "description", true, 1, 255, &out->description, e))
		return false;

	json_t *amount = json_object_get(body, "amount");
	if (!amount || json_is_null(amount))
		return fail(e, "amount", "amount is required");
	if (!json_is_integer(amount))
		return fail(e, "amount", "amount must be an integer number of VND");
	if (!order_amount_valid(amount))
		return fail(e, "amount", "amount must be " ORDER_AMOUNT_RULE, ORDER_AMOUNT_LIMIT);
	out->amount = json_integer_value(amount);

	json_t *currency = json_object_get(body, "currency");
	if (currency && !json_is_null(currency) &&
	    (!json_is_string(currency) || strcmp(json_string_value(currency), "VND") != 0))
		return fail(e, "currency", "currency must be \"VND\"");

	json_t *items = json_object_get(body, "items");
	if (items && !json_is_null(items)) {
		if (!check_items(items, out->amount, e))
			return false;
		out->items = items;
	}
	if (!check_text(body, "procedure", false, 1, 64, &out->procedure, e))
		return false;
	json_t *payer = json_object_get(body, "payer");
	if (payer && !json_is_null(payer)) {
		if (!check_payer(payer, e))
			return false;
		out->payer = payer;
	}
	if (!check_text(body, "return_url", true, 1, 2000, &out->return_url, e))
		return false;
	if (!util_is_http_url(out->return_url))
		return fail(e, "return_url", "return_url must be an absolute http or https URL");

	json_t *exp = json_object_get(body, "expires_in");
	out->expires_in = 900;
	if (exp && !json_is_null(exp)) {
		if (!json_is_integer(exp) || json_integer_value(exp) < 60 || json_integer_value(exp) > 86400)
			return fail(e, "expires_in", "expires_in must be an integer number of seconds, 60 to 86400");
		out->expires_in = (int)json_integer_value(exp);
	}
	json_t *md = json_object_get(body, "metadata");
	if (md && !json_is_null(md)) {
		if (!check_metadata(md, e))
			return false;
		out->metadata = md;
	}
	return true;
}

bool idempotency_key_valid(const char *key)
{
	size_t n = strlen(key);
	if (n < 1 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (key[i] < 0x20 || key[i] > 0x7e)
			return false;
	}
	return true;
}
