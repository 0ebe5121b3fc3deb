#ifndef FEEGATE_ERRORS_H
#define FEEGATE_ERRORS_H
/* The error catalogue of docs/openapi.yaml: every error a client sees comes from this table. */

enum err {
	ERR_INVALID_JSON,
	ERR_VALIDATION,
	ERR_UNAUTHORIZED,
	ERR_FORBIDDEN,
	ERR_NOT_FOUND,
	ERR_METHOD_NOT_ALLOWED,
	ERR_DUPLICATE_REFERENCE,
	ERR_INVALID_STATE,
	ERR_IDEMPOTENCY_IN_USE,
	ERR_PAYLOAD_TOO_LARGE,
	ERR_IDEMPOTENCY_REUSED,
	ERR_RATE_LIMITED,
	ERR_INTERNAL,
	ERR_UNAVAILABLE,
	ERR_REQUEST_TIMEOUT,
	ERR_HEAD_TOO_LARGE,
	ERR__COUNT
};

struct err_info {
	int status;
	const char *code;
	const char *message; /* default message */
};

const struct err_info *err_lookup(enum err e);

#endif
