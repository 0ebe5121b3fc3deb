/* `banksim sign ...`: prints what the adapters' C computes for given inputs,
 * so tests/system/test_signatures.py can hold it against digests computed in
 * Python from docs/openapi.yaml alone. */
#include "tools/banksim/banksim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/momo.h"
#include "adapters/vietqr.h"
#include "adapters/vnpay.h"

static const char sign_usage[] =
	"usage: banksim sign vnpay params SECRET k=v...     vnp_SecureHash of query parameters\n"
	"       banksim sign vnpay hashdata k=v...          the text that hash signs\n"
	"       banksim sign vnpay querydr|refund|querydr-response|refund-response SECRET k=v...\n"
	"       banksim sign vnpay encode TEXT               PHP urlencode of TEXT\n"
	"       banksim sign vnpay orderinfo TEXT            vnp_OrderInfo made from TEXT\n"
	"       banksim sign momo create|create-response|query|query-response|refund|\n"
	"                         refund-response|ipn SECRET accessKey=... k=v...\n"
	"       banksim sign vietqr webhook SECRET TIMESTAMP BODY\n"
	"       banksim sign vietqr payload BIN ACCOUNT AMOUNT REF\n"
	"       banksim sign vietqr crc TEXT                 CRC-16/CCITT-FALSE, 4 upper-case hex\n"
	"       banksim sign vietqr normalize TEXT           transfer content as matched\n"
	"       banksim sign start BANK k=v...               what the adapter sends to start a payment:\n"
	"            keys bank_url merchant_id access_key secret ipn_url return_url\n"
	"            ref amount description ip created expires bin account\n"
	"Each prints its result alone on the last line.\n";

static int usage_error(void)
{
	fputs(sign_usage, stderr);
	return 2;
}

static bool split_kv(const char *arg, char **name, const char **value)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return false;
	*name = strndup(arg, (size_t)(eq - arg));
	*value = eq + 1;
	return *name != NULL;
}

static bool args_to_params(int argc, char **argv, params *p)
{
	for (int i = 0; i < argc; i++) {
		char *name;
		const char *value;
		if (!split_kv(argv[i], &name, &value))
			return false;
		bool ok = params_add(p, name, value);
		free(name);
		if (!ok)
			return false;
	}
	return true;
}

static json_t *args_to_json(int argc, char **argv, const char **access_key)
{
	json_t *obj = json_object();
	for (int i = 0; obj && i < argc; i++) {
		char *name;
		const char *value;
		if (!split_kv(argv[i], &name, &value)) {
			json_decref(obj);
			return NULL;
		}
		if (access_key && strcmp(name, "accessKey") == 0)
			*access_key = value;
		else
			json_object_set_new(obj, name, json_string(value));
		free(name);
	}
	return obj;
}

static int sign_vnpay(int argc, char **argv)
{
	if (argc < 2)
		return usage_error();
	const char *what = argv[0];
	if (strcmp(what, "encode") == 0 || strcmp(what, "orderinfo") == 0) {
		if (argc != 2)
			return usage_error();
		if (strcmp(what, "orderinfo") == 0) {
			char info[VNPAY_ORDER_INFO_MAX + 1];
			vnpay_order_info(argv[1], info, sizeof(info));
			printf("%s\n", info);
			return 0;
		}
		struct strbuf b;
		strbuf_init(&b);
		params_urlencode(&b, argv[1], strlen(argv[1]));
		printf("%s\n", b.data ? b.data : "");
		strbuf_free(&b);
		return 0;
	}
	if (strcmp(what, "hashdata") == 0 || strcmp(what, "params") == 0) {
		bool hash = strcmp(what, "params") == 0;
		params p;
		params_init(&p);
		int rc = 2;
		if (!args_to_params(argc - (hash ? 2 : 1), argv + (hash ? 2 : 1), &p))
			goto vnp_done;
		if (hash) {
			char out[VNPAY_HASH_HEX_SIZE];
			if (!vnpay_sign_params(argv[1], &p, out))
				goto vnp_done;
			printf("%s\n", out);
		} else {
			struct strbuf b;
			strbuf_init(&b);
			vnpay_hash_data(&p, &b);
			printf("%s\n", b.data ? b.data : "");
			strbuf_free(&b);
		}
		rc = 0;
vnp_done:
		params_free(&p);
		return rc == 0 ? 0 : usage_error();
	}
	vnpay_msg kind;
	if (strcmp(what, "querydr") == 0)
		kind = VNPAY_MSG_QUERYDR;
	else if (strcmp(what, "refund") == 0)
		kind = VNPAY_MSG_REFUND;
	else if (strcmp(what, "querydr-response") == 0)
		kind = VNPAY_MSG_QUERYDR_RESPONSE;
	else if (strcmp(what, "refund-response") == 0)
		kind = VNPAY_MSG_REFUND_RESPONSE;
	else
		return usage_error();
	json_t *obj = args_to_json(argc - 2, argv + 2, NULL);
	char out[VNPAY_HASH_HEX_SIZE];
	bool ok = obj && vnpay_api_sign(argv[1], kind, obj, out);
	json_decref(obj);
	if (!ok)
		return usage_error();
	printf("%s\n", out);
	return 0;
}

static int sign_momo(int argc, char **argv)
{
	momo_msg kind;
	if (argc < 2 || !momo_msg_from_name(argv[0], &kind))
		return usage_error();
	const char *access_key = "";
	json_t *obj = args_to_json(argc - 2, argv + 2, &access_key);
	char out[MOMO_SIG_HEX_SIZE];
	bool ok = obj && momo_sign(argv[1], access_key, kind, obj, out);
	json_decref(obj);
	if (!ok)
		return usage_error();
	printf("%s\n", out);
	return 0;
}

static int sign_vietqr(int argc, char **argv)
{
	if (argc < 2)
		return usage_error();
	if (strcmp(argv[0], "webhook") == 0 && argc == 4) {
		char out[VIETQR_SIG_HEX_SIZE];
		if (!vietqr_webhook_sign(argv[1], argv[2], argv[3], strlen(argv[3]), out))
			return usage_error();
		printf("%s\n", out);
		return 0;
	}
	if (strcmp(argv[0], "payload") == 0 && argc == 5) {
		int64_t amount;
		char *payload = NULL;
		if (!util_parse_int64(argv[3], &amount) ||
		    vietqr_build_payload(argv[1], argv[2], amount, argv[4], &payload) != ADAPTER_OK)
			return usage_error();
		printf("%s\n", payload);
		free(payload);
		return 0;
	}
	if (strcmp(argv[0], "crc") == 0 && argc == 2) {
		printf("%04X\n", vietqr_crc16(argv[1], strlen(argv[1])));
		return 0;
	}
	if (strcmp(argv[0], "normalize") == 0 && argc == 2) {
		char out[ADAPTER_CONTENT_CAP];
		vietqr_normalize(argv[1], out, sizeof(out));
		printf("%s\n", out);
		return 0;
	}
	return usage_error();
}

/* Runs an adapter's start with the given config and payment, and prints the
 * redirect URL, the request to send (method and URL, then the body) or the QR
 * payload. */
static int sign_start(int argc, char **argv)
{
	if (argc < 1)
		return usage_error();
	const adapter *a = adapter_find(argv[0]);
	params p;
	params_init(&p);
	adapter_start st;
	memset(&st, 0, sizeof(st));
	int rc = 2;
	if (!a || !args_to_params(argc - 1, argv + 1, &p))
		goto done;
	adapter_config cfg = {
		.bank_url = params_get(&p, "bank_url"),
		.merchant_id = params_get(&p, "merchant_id"),
		.access_key = params_get(&p, "access_key"),
		.secret = params_get(&p, "secret"),
		.ipn_url = params_get(&p, "ipn_url"),
		.return_url = params_get(&p, "return_url"),
	};
	int64_t amount = 0, created = 0, expires = 0;
	if (!util_parse_int64(params_get(&p, "amount"), &amount) ||
	    !util_parse_int64(params_get(&p, "created"), &created) ||
	    !util_parse_int64(params_get(&p, "expires"), &expires))
		goto done;
	adapter_payment pay = {
		.bank_order_ref = params_get(&p, "ref"),
		.amount = amount,
		.description = params_get(&p, "description"),
		.client_ip = params_get(&p, "ip"),
		.created_at = (time_t)created,
		.expires_at = (time_t)expires,
		.account = { .bin = params_get(&p, "bin"), .number = params_get(&p, "account") },
	};
	adapter_rc arc = adapter_start_payment(a, &cfg, &pay, &st);
	if (arc != ADAPTER_OK) {
		fprintf(stderr, "banksim sign start: %s\n", adapter_rc_name(arc));
		goto done;
	}
	switch (st.kind) {
	case ADAPTER_START_REDIRECT: printf("%s\n", st.redirect_url); break;
	case ADAPTER_START_CALL: printf("%s %s\n%s\n", st.call.method, st.call.url, st.call.body); break;
	case ADAPTER_START_QR: printf("%s\n", st.qr_payload); break;
	}
	rc = 0;
done:
	adapter_start_free(&st);
	params_free(&p);
	return rc == 0 ? 0 : usage_error();
}

int sign_main(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "--help") == 0) {
		fputs(sign_usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	if (strcmp(argv[0], "vnpay") == 0)
		return sign_vnpay(argc - 1, argv + 1);
	if (strcmp(argv[0], "momo") == 0)
		return sign_momo(argc - 1, argv + 1);
	if (strcmp(argv[0], "vietqr") == 0)
		return sign_vietqr(argc - 1, argv + 1);
	if (strcmp(argv[0], "start") == 0)
		return sign_start(argc - 1, argv + 1);
	return usage_error();
}
