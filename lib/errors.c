#include "lib/errors.h"

static const struct err_info catalogue[ERR__COUNT] = {
	[ERR_INVALID_JSON] = {400, "invalid_json", "the request body is not valid JSON"},
	[ERR_VALIDATION] = {400, "validation_failed", "a field is invalid"},
	[ERR_UNAUTHORIZED] = {401, "unauthorized", "missing or invalid credentials"},
	[ERR_FORBIDDEN] = {403, "forbidden", "these credentials may not do this"},
	[ERR_NOT_FOUND] = {404, "not_found", "no such resource"},
	[ERR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed", "method not allowed on this resource"},
	[ERR_DUPLICATE_REFERENCE] = {409, "duplicate_reference", "this reference is already used by another order"},
	[ERR_INVALID_STATE] = {409, "invalid_state", "the resource is not in a state that allows this"},
	[ERR_IDEMPOTENCY_IN_USE] = {409, "idempotency_key_in_use",
				    "a request with this Idempotency-Key is still being processed"},
	[ERR_PAYLOAD_TOO_LARGE] = {413, "payload_too_large", "the request body is too large"},
	[ERR_IDEMPOTENCY_REUSED] = {422, "idempotency_key_reused",
				    "this Idempotency-Key was used with a different request body"},
	[ERR_RATE_LIMITED] = {429, "rate_limited", "too many requests; retry later"},
	[ERR_INTERNAL] = {500, "internal_error", "internal error"},
	[ERR_UNAVAILABLE] = {503, "unavailable", "the service is temporarily unavailable; retry later"},
	[ERR_REQUEST_TIMEOUT] = {408, "request_timeout", "the request did not arrive in time"},
	[ERR_HEAD_TOO_LARGE] = {431, "request_header_fields_too_large", "the request head is too large"},
};

const struct err_info *err_lookup(enum err e)
{
	if ((int)e < 0 || e >= ERR__COUNT)
		e = ERR_INTERNAL;
	return &catalogue[e];
}
