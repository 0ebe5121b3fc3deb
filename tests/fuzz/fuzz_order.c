/* POST /v1/orders bodies: the depth check, the JSON parser and every field rule. */
#include <jansson.h>

#include "gateway/order_validate.h"
#include "lib/http.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!http_json_depth_ok((const char *)data, size, 32))
		return 0;
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!body)
		return 0;
	struct order_input in;
	struct validation_error e;
	if (order_validate(body, &in, &e))
		(void)in.amount;
	json_decref(body);
	return 0;
}
