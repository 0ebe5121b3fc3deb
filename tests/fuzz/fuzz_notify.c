/* Each bank's notification: parsing and signature verification. The first byte picks the
 * bank; with its high bit set the input is signed correctly first (the known test secret),
 * so the fuzzer also reaches everything after a good signature. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/adapter.h"
#include "adapters/momo.h"
#include "adapters/params.h"
#include "adapters/vietqr.h"
#include "adapters/vnpay.h"
#include "lib/strbuf.h"
#include "tests/fuzz/fuzz.h"

#define SECRET "fuzz-secret"
#define ACCESS "fuzz-access"
#define NOW ((time_t)1767225600)

static adapter_config cfg = {.merchant_id = "FEEGATE01", .access_key = ACCESS, .secret = SECRET};

static void verify(const char *bank, const adapter_inbound *in)
{
	adapter_txn txn;
	adapter_rc rc = adapter_verify_notification(adapter_find(bank), &cfg, in, &txn);
	/* an accepted notification names a possible amount, and a success its bank transaction */
	if (rc == ADAPTER_OK && (txn.amount < 0 || txn.amount > ADAPTER_AMOUNT_MAX))
		abort();
	if (rc == ADAPTER_OK && txn.success && !txn.bank_txn_id[0])
		abort();
}

static void vnpay_case(char *text, bool sign)
{
	char *query = NULL;
	if (sign) {
		params p;
		params_init(&p);
		if (params_parse_query(&p, text))
			query = vnpay_signed_query(SECRET, &p);
		params_free(&p);
	}
	adapter_inbound in = {.query = query ? query : text, .now = NOW};
	verify("vnpay", &in);
	free(query);
}

static void momo_case(char *text, size_t len, bool sign)
{
	char *body = NULL;
	if (sign) {
		json_t *obj = json_loadb(text, len, 0, NULL);
		char sig[MOMO_SIG_HEX_SIZE];
		if (json_is_object(obj) && momo_sign(SECRET, ACCESS, MOMO_MSG_IPN, obj, sig)) {
			json_object_set_new(obj, "signature", json_string(sig));
			body = json_dumps(obj, JSON_COMPACT);
		}
		json_decref(obj);
	}
	adapter_inbound in = {.body = body ? body : text, .body_len = body ? strlen(body) : len, .now = NOW};
	verify("momo", &in);
	free(body);
}

static void vietqr_case(char *text, size_t len, bool sign)
{
	char ts[24], sig[VIETQR_SIG_HEX_SIZE] = "";
	snprintf(ts, sizeof ts, "%lld", (long long)NOW);
	if (sign && !vietqr_webhook_sign(SECRET, ts, text, len, sig))
		return;
	adapter_kv headers[2] = {{"X-Timestamp", ts}, {"X-Signature", sig}};
	adapter_inbound in = {.body = text, .body_len = len, .headers = headers, .n_headers = 2, .now = NOW};
	verify("vietqr", &in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool sign = data[0] & 0x80;
	char *text = fuzz_cstr(data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		vnpay_case(text, sign);
		break;
	case 1:
		momo_case(text, size - 1, sign);
		break;
	default:
		vietqr_case(text, size - 1, sign);
		break;
	}
	free(text);
	return 0;
}
