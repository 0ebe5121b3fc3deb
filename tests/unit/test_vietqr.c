#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/vietqr.h"

#define SECRET "vqsecret"
#define NOW ((time_t)1714530660)
/* Built and CRC'd with Python (binascii.crc_hqx, init 0xFFFF) from docs/openapi.yaml. */
#define KNOWN_PAYLOAD                                                                            \
	"00020101021238570010A00000072701270006970436011300110012345670208QRIBFTTA5303704540620" \
	"00005802VN62150811ABC1234567863043920"
#define KNOWN_BODY                                                                        \
	"{\"transaction_id\":\"FT24122000001\",\"account_no\":\"0011001234567\",\"amount\":" \
	"200000,\"content\":\"Nop phi ABC12345678\",\"transaction_time\":"                  \
	"\"2024-05-01T09:31:00+07:00\"}"
#define KNOWN_SIG "99da02db1c5c11a1886e173f7ae97a7345ade3851e1321b22937a1a43fc41b36"

static const adapter_config cfg = { .secret = SECRET };

static void test_crc_check_value(void **state)
{
	assert_int_equal(vietqr_crc16("123456789", 9), 0x29B1);
	assert_int_equal(vietqr_crc16("", 0), 0xFFFF);
	/* The CRC of a payload covers everything up to and including "6304". */
	const char *p = KNOWN_PAYLOAD;
	assert_int_equal(vietqr_crc16(p, strlen(p) - 4), 0x3920);
}

static void test_payload_known_answer(void **state)
{
	adapter_payment pay = {
		.bank_order_ref = "ABC12345678",
		.amount = 200000,
		.account = { .bin = "970436", .number = "0011001234567", .holder = "SO TU PHAP" },
		.created_at = NOW,
		.expires_at = NOW + 900,
	};
	adapter_start s;
	assert_int_equal(adapter_start_payment(&vietqr_adapter, &cfg, &pay, &s), ADAPTER_OK);
	assert_int_equal(s.kind, ADAPTER_START_QR);
	assert_string_equal(s.qr_payload, KNOWN_PAYLOAD);
	adapter_start_free(&s);

	pay.account.bin = "97043";
	assert_int_equal(adapter_start_payment(&vietqr_adapter, &cfg, &pay, &s), ADAPTER_INVALID_INPUT);
	adapter_start_free(&s);
	pay.account.bin = NULL;
	assert_int_equal(adapter_start_payment(&vietqr_adapter, &cfg, &pay, &s), ADAPTER_INVALID_INPUT);
	adapter_start_free(&s);
}

static void test_payload_parse(void **state)
{
	vietqr_info info;
	assert_int_equal(vietqr_parse_payload(KNOWN_PAYLOAD, &info), ADAPTER_OK);
	assert_string_equal(info.bin, "970436");
	assert_string_equal(info.account, "0011001234567");
	assert_int_equal(info.amount, 200000);
	assert_string_equal(info.ref, "ABC12345678");

	/* One changed digit breaks the CRC. */
	char bad[sizeof(KNOWN_PAYLOAD)];
	memcpy(bad, KNOWN_PAYLOAD, sizeof(bad));
	char *amount = strstr(bad, "5406200000");
	amount[4] = '3';
	assert_int_equal(vietqr_parse_payload(bad, &info), ADAPTER_BAD_SIGNATURE);
	/* Lower-case CRC hex is read too. */
	char *b = NULL;
	assert_int_equal(vietqr_build_payload("970436", "12345", 1, "REF1", &b), ADAPTER_OK);
	for (char *c = b + strlen(b) - 4; *c; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	assert_int_equal(vietqr_parse_payload(b, &info), ADAPTER_OK);
	free(b);
	assert_int_equal(vietqr_parse_payload("0002016304FFFF", &info), ADAPTER_BAD_SIGNATURE);
	assert_int_equal(vietqr_parse_payload("garbage", &info), ADAPTER_MALFORMED);
	assert_int_equal(vietqr_parse_payload(NULL, &info), ADAPTER_MALFORMED);
}

static void test_tlv(void **state)
{
	vietqr_tlv items[4];
	size_t n = 0;
	assert_true(vietqr_tlv_parse("0002015802VN", 12, items, 4, &n));
	assert_int_equal(n, 2);
	assert_string_equal(items[1].tag, "58");
	assert_int_equal(items[1].len, 2);
	assert_memory_equal(items[1].value, "VN", 2);
	assert_true(vietqr_tlv_parse("", 0, items, 4, &n));
	assert_int_equal(n, 0);
	assert_false(vietqr_tlv_parse("0005ab", 6, items, 4, &n));   /* runs past the end */
	assert_false(vietqr_tlv_parse("00x1a", 5, items, 4, &n));    /* length not digits */
	assert_false(vietqr_tlv_parse("a001x", 5, items, 4, &n));    /* id not digits */
	assert_false(vietqr_tlv_parse("000", 3, items, 4, &n));      /* truncated header */
	assert_false(vietqr_tlv_parse("00010001000100010001a", 21, items, 4, &n)); /* too many */

	struct strbuf out;
	strbuf_init(&out);
	char value[101];
	memset(value, 'A', sizeof(value));
	assert_true(vietqr_tlv_append(&out, "62", value, 99));
	assert_int_equal(out.len, 103);
	assert_memory_equal(out.data, "6299", 4);
	assert_false(vietqr_tlv_append(&out, "62", value, 100)); /* length > 99 rejected */
	assert_false(vietqr_tlv_append(&out, "6", value, 1));
	assert_false(vietqr_tlv_append(&out, "62", "\xC3\xA9", 2)); /* not ASCII */
	strbuf_free(&out);

	/* 62/08 holds at most 25 characters (EMVCo); a longer reference is refused. */
	char *p = NULL;
	assert_int_equal(vietqr_build_payload("970436", "12345", 1000, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", &p),
			 ADAPTER_INVALID_INPUT);
	assert_null(p);
	assert_int_equal(vietqr_build_payload("970436", "12345", 0, "REF", &p), ADAPTER_INVALID_INPUT);
	assert_int_equal(vietqr_build_payload("970436", "12 45", 10, "REF", &p), ADAPTER_INVALID_INPUT);
}

static void test_svg(void **state)
{
	char *svg = NULL;
	assert_int_equal(adapter_qr_svg(KNOWN_PAYLOAD, &svg), ADAPTER_OK);
	assert_non_null(svg);
	assert_true(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
	assert_non_null(strstr(svg, "<path fill=\"#000\" d=\"M4 4h7v1h-7z")); /* finder pattern */
	assert_true(strcmp(svg + strlen(svg) - 6, "</svg>") == 0);
	free(svg);
}

static adapter_rc verify(const char *ts, const char *sig, const char *body, time_t now, adapter_txn *txn)
{
	adapter_kv headers[] = { { "x-timestamp", ts }, { "X-SIGNATURE", sig } };
	adapter_inbound in = { .body = body, .body_len = strlen(body), .headers = headers,
			       .n_headers = 2, .now = now };
	return adapter_verify_notification(&vietqr_adapter, &cfg, &in, txn);
}

static void test_webhook_signature(void **state)
{
	char sig[VIETQR_SIG_HEX_SIZE];
	assert_true(vietqr_webhook_sign(SECRET, "1714530660", KNOWN_BODY, strlen(KNOWN_BODY), sig));
	assert_string_equal(sig, KNOWN_SIG);

	adapter_txn txn;
	assert_int_equal(verify("1714530660", KNOWN_SIG, KNOWN_BODY, NOW, &txn), ADAPTER_OK);
	assert_true(txn.success);
	assert_string_equal(txn.bank_txn_id, "FT24122000001");
	assert_string_equal(txn.account_no, "0011001234567");
	assert_int_equal(txn.amount, 200000);
	assert_string_equal(txn.content, "Nop phi ABC12345678");
	assert_string_equal(txn.match_text, "NOPPHIABC12345678");
	assert_string_equal(txn.bank_order_ref, "");
	assert_int_equal(txn.bank_time, NOW);

	/* Within and outside the 300 s window, both directions. */
	assert_int_equal(verify("1714530660", KNOWN_SIG, KNOWN_BODY, NOW + 300, &txn), ADAPTER_OK);
	assert_int_equal(verify("1714530660", KNOWN_SIG, KNOWN_BODY, NOW - 300, &txn), ADAPTER_OK);
	assert_int_equal(verify("1714530660", KNOWN_SIG, KNOWN_BODY, NOW + 301, &txn), ADAPTER_BAD_SIGNATURE);
	assert_int_equal(verify("1714530660", KNOWN_SIG, KNOWN_BODY, NOW - 301, &txn), ADAPTER_BAD_SIGNATURE);
	/* The timestamp is signed: moving it breaks the signature. */
	assert_int_equal(verify("1714530661", KNOWN_SIG, KNOWN_BODY, NOW, &txn), ADAPTER_BAD_SIGNATURE);
	/* A tampered body. */
	char body[sizeof(KNOWN_BODY)];
	memcpy(body, KNOWN_BODY, sizeof(body));
	strstr(body, "200000")[0] = '9';
	assert_int_equal(verify("1714530660", KNOWN_SIG, body, NOW, &txn), ADAPTER_BAD_SIGNATURE);
	assert_int_equal(verify("", KNOWN_SIG, KNOWN_BODY, NOW, &txn), ADAPTER_BAD_SIGNATURE);
	assert_int_equal(verify("-1", KNOWN_SIG, KNOWN_BODY, NOW, &txn), ADAPTER_BAD_SIGNATURE);
	assert_int_equal(verify("1714530660", "", KNOWN_BODY, NOW, &txn), ADAPTER_BAD_SIGNATURE);

	/* Headers missing altogether. */
	adapter_inbound in = { .body = KNOWN_BODY, .body_len = strlen(KNOWN_BODY), .now = NOW };
	assert_int_equal(adapter_verify_notification(&vietqr_adapter, &cfg, &in, &txn), ADAPTER_BAD_SIGNATURE);

	/* Signed but not a credit notification. */
	const char *junk = "{\"amount\":5}";
	assert_true(vietqr_webhook_sign(SECRET, "1714530660", junk, strlen(junk), sig));
	assert_int_equal(verify("1714530660", sig, junk, NOW, &txn), ADAPTER_MALFORMED);
}

/* The matching rule as the adapter applies it to a verified credit with this content, amount
 * and account. */
static bool vietqr_matches(const char *content, int64_t amount, const char *account_no, const char *ref,
			   int64_t want_amount, const char *want_account)
{
	adapter_txn txn;
	memset(&txn, 0, sizeof(txn));
	txn.amount = amount;
	snprintf(txn.account_no, sizeof(txn.account_no), "%s", account_no);
	vietqr_normalize(content, txn.match_text, sizeof(txn.match_text));
	return adapter_matches(&vietqr_adapter, &txn, ref, want_amount, want_account);
}

static void test_matching_rule(void **state)
{
	const char *acct = "0011001234567";
	assert_true(vietqr_matches("ABC12345678", 200000, acct, "ABC12345678", 200000, acct));
	assert_true(vietqr_matches("nop phi abc12345678 cam on", 200000, acct, "ABC12345678", 200000, acct));
	assert_true(vietqr_matches("ABC-1234.5678", 200000, acct, "ABC12345678", 200000, acct));
	assert_true(vietqr_matches("MBVCB.123.ABC 12345678.CT tu 0123", 200000, acct, "ABC12345678", 200000, acct));
	assert_false(vietqr_matches("ABC1234567", 200000, acct, "ABC12345678", 200000, acct));
	assert_false(vietqr_matches("ABC12345678", 200001, acct, "ABC12345678", 200000, acct));
	assert_false(vietqr_matches("ABC12345678", 200000, "999", "ABC12345678", 200000, acct));
	assert_false(vietqr_matches("", 200000, acct, "ABC12345678", 200000, acct));
	assert_false(vietqr_matches("anything", 200000, acct, "", 200000, acct));
	/* A Vietnamese letter is a letter: it stays and splits the reference. */
	assert_false(vietqr_matches("ABC1234\xC4\x90" "5678", 200000, acct, "ABC12345678", 200000, acct));
	/* Punctuation outside ASCII (the dong sign) is removed. */
	assert_true(vietqr_matches("ABC1234\xE2\x82\xAB" "5678", 200000, acct, "ABC12345678", 200000, acct));

	char out[64];
	vietqr_normalize("n\xE1\xBB\x99p ph\xC3\xAD \xC4\x91\xE1\xBB\xA3t-1", out, sizeof(out));
	assert_string_equal(out, "N\xE1\xBB\x98PPH\xC3\x8D\xC4\x90\xE1\xBB\xA2T1"); /* NỘPPHÍĐỢT1 */

	/* Through the adapter interface. */
	adapter_txn txn;
	memset(&txn, 0, sizeof(txn));
	txn.amount = 200000;
	strcpy(txn.account_no, acct);
	vietqr_normalize("Nop phi abc12345678", txn.match_text, sizeof(txn.match_text));
	assert_true(adapter_matches(&vietqr_adapter, &txn, "ABC12345678", 200000, acct));
	assert_false(adapter_matches(&vietqr_adapter, &txn, "ABC12345678", 200000, "other"));
	assert_false(adapter_matches(&vietqr_adapter, &txn, "XYZ12345678", 200000, acct));

	/* The same rule as the lookup's candidates: each run of the reference's length. */
	char refs[8][ADAPTER_REF_CAP];
	assert_int_equal(adapter_match_candidates(&vietqr_adapter, &txn, 11, refs, 8), 7);
	assert_string_equal(refs[0], "NOPPHIABC12");
	assert_string_equal(refs[6], "ABC12345678");
	assert_int_equal(adapter_match_candidates(&vietqr_adapter, &txn, 11, refs, 2), 2);
	vietqr_normalize("ABC1234\xC4\x90" "5678", txn.match_text, sizeof(txn.match_text));
	assert_int_equal(adapter_match_candidates(&vietqr_adapter, &txn, 7, refs, 8), 1); /* Đ is no ASCII letter */
	assert_string_equal(refs[0], "ABC1234");
}

static void test_reply_and_unsupported(void **state)
{
	adapter_reply r = adapter_notification_reply(&vietqr_adapter, ADAPTER_UNKNOWN_ORDER);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"status\":\"ok\"}");
	assert_int_equal(adapter_notification_reply(&vietqr_adapter, ADAPTER_REPLAYED).status, 200);
	assert_int_equal(adapter_notification_reply(&vietqr_adapter, ADAPTER_REJECTED).status, 401);
	adapter_request req;
	adapter_refund rf = { .amount = 1 };
	assert_int_equal(adapter_build_refund(&vietqr_adapter, &cfg, &rf, &req), ADAPTER_UNSUPPORTED);
	adapter_request_free(&req);
}

static void test_times(void **state)
{
	char s[32];
	vietqr_format_time(NOW, s);
	assert_string_equal(s, "2024-05-01T09:31:00+07:00");
	time_t t;
	assert_true(vietqr_parse_time("2024-05-01T02:31:00Z", &t));
	assert_int_equal(t, NOW);
	assert_true(vietqr_parse_time("2024-05-01T09:31:00.123+07:00", &t));
	assert_int_equal(t, NOW);
	assert_false(vietqr_parse_time("2024-05-01 09:31:00", &t));
	assert_false(vietqr_parse_time("2024-02-30T09:31:00Z", &t));
}

static bool count_lines(void *ctx, const adapter_settlement_line *line)
{
	(*(int *)ctx)++;
	return true;
}

static void test_settlement(void **state)
{
	const char *file = VIETQR_SETTLEMENT_HEADER "\r\n"
			   "credit,FT24122000001,0011001234567,200000,0,\"Nop phi, ABC12345678\",2024-05-01T09:31:00+07:00\r\n"
			   "TOTAL,20240501,1,200000\r\n";
	int n = 0;
	adapter_error err;
	adapter_settlement_summary sum;
	assert_int_equal(adapter_parse_settlement(&vietqr_adapter, &cfg, file, strlen(file), count_lines, &n, &sum, &err),
			 ADAPTER_OK);
	assert_int_equal(n, 1);
	const char *bad = VIETQR_SETTLEMENT_HEADER "\n"
			  "credit,FT1,001,200000,0,\"unterminated,2024-05-01T09:31:00+07:00\n"
			  "TOTAL,20240501,1,200000\n";
	assert_int_equal(adapter_parse_settlement(&vietqr_adapter, &cfg, bad, strlen(bad), count_lines, &n, &sum, &err),
			 ADAPTER_MALFORMED);
	assert_int_equal(err.line, 2);
}

static void test_bank_names(void **state)
{
	assert_string_equal(vietqr_bank_name("970436"), "Vietcombank");
	assert_string_equal(vietqr_bank_name("970415"), "VietinBank");
	assert_string_equal(vietqr_bank_name("970418"), "BIDV");
	assert_null(vietqr_bank_name("123456"));
	assert_null(vietqr_bank_name(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_check_value),
		cmocka_unit_test(test_payload_known_answer),
		cmocka_unit_test(test_payload_parse),
		cmocka_unit_test(test_tlv),
		cmocka_unit_test(test_svg),
		cmocka_unit_test(test_webhook_signature),
		cmocka_unit_test(test_matching_rule),
		cmocka_unit_test(test_reply_and_unsupported),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_settlement),
		cmocka_unit_test(test_bank_names),
	};
	return cmocka_run_group_tests_name("vietqr", tests, NULL, NULL);
}
