/* Receipts: the total in Vietnamese words, the canonical form, Ed25519 signing and verifying. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/receipt.h"

static void words_are(int64_t amount, const char *expected)
{
	char out[512];
	assert_true(receipt_amount_words(amount, out, sizeof out));
	assert_string_equal(out, expected);
}

static void test_amount_words(void **state)
{
	words_are(0, "Không đồng");
	words_are(1000, "Một nghìn đồng");
	words_are(1000005, "Một triệu không trăm linh năm đồng");
	words_are(21500000, "Hai mươi mốt triệu năm trăm nghìn đồng");
	words_are(100000000000LL, "Một trăm tỷ đồng");
	words_are(200000, "Hai trăm nghìn đồng");
	words_are(15, "Mười lăm đồng");
	words_are(25, "Hai mươi lăm đồng");
	words_are(105, "Một trăm linh năm đồng");
	words_are(1001000000LL, "Một tỷ không trăm linh một triệu đồng");
	words_are(310011, "Ba trăm mười nghìn không trăm mười một đồng");
	char tiny[8];
	assert_false(receipt_amount_words(1000, tiny, sizeof tiny));
	assert_false(receipt_amount_words(-1, tiny, sizeof tiny));
}

static void test_canonical(void **state)
{
	json_t *r = json_pack("{s:s, s:i, s:s, s:s, s:[], s:{s:s, s:s}, s:s}", "code", "R1", "amount", 200000, "payer_name",
			      "Nguyễn Văn An", "signature", "x", "adjustments", "agency", "name", "Cục", "code", "XNC",
			      "url", "http://x/y");
	char *c = receipt_canonical(r);
	assert_non_null(c);
	assert_string_equal(c, "{\"agency\":{\"code\":\"XNC\",\"name\":\"Cục\"},\"amount\":200000,\"code\":\"R1\","
			       "\"payer_name\":\"Nguyễn Văn An\"}");
	free(c);
	json_decref(r);
	assert_null(receipt_canonical(NULL));
}

static void test_sign_verify_tamper_rotate(void **state)
{
	char dir[] = "/tmp/feegate-receipt-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char p1[256], p2[256], err[256];
	snprintf(p1, sizeof p1, "%s/k1.pem", dir);
	snprintf(p2, sizeof p2, "%s/k2.pem", dir);
	assert_true(receipt_key_generate(p1, err, sizeof err));
	assert_false(receipt_key_generate(p1, err, sizeof err)); /* never overwrites a key */
	assert_true(receipt_key_generate(p2, err, sizeof err));
	struct receipt_key *k1 = receipt_key_load(p1, err, sizeof err);
	struct receipt_key *k2 = receipt_key_load(p2, err, sizeof err);
	assert_non_null(k1);
	assert_non_null(k2);
	assert_string_not_equal(receipt_key_id(k1), receipt_key_id(k2));
	assert_int_equal(strlen(receipt_key_public(k1)), 43);

	json_t *r = json_pack("{s:s, s:i, s:s}", "code", "R2", "amount", 21500000, "payer_name", "Trần Thị Bình");
	assert_true(receipt_sign(k1, r));
	assert_string_equal(json_string_value(json_object_get(r, "amount_in_words")),
			    "Hai mươi mốt triệu năm trăm nghìn đồng");
	assert_string_equal(json_string_value(json_object_get(r, "key_id")), receipt_key_id(k1));
	assert_true(receipt_verify(r, receipt_key_public(k1)));
	assert_false(receipt_verify(r, receipt_key_public(k2))); /* another key */

	/* fields outside the canonical form may change */
	json_object_set_new(r, "url", json_string("http://elsewhere/"));
	assert_true(receipt_verify(r, receipt_key_public(k1)));
	/* a tampered field may not */
	json_object_set_new(r, "amount", json_integer(21500001));
	assert_false(receipt_verify(r, receipt_key_public(k1)));

	/* rotation: receipts of the old key still verify with its published public key */
	json_t *r2 = json_pack("{s:s, s:i}", "code", "R3", "amount", 1000);
	assert_true(receipt_sign(k2, r2));
	assert_true(receipt_verify(r2, receipt_key_public(k2)));
	json_object_set_new(r, "amount", json_integer(21500000));
	assert_true(receipt_verify(r, receipt_key_public(k1)));
	json_decref(r);
	json_decref(r2);
	receipt_key_free(k1);
	receipt_key_free(k2);
	unlink(p1);
	unlink(p2);
	rmdir(dir);
}

static void test_b64url(void **state)
{
	unsigned char out[8];
	assert_int_equal(receipt_b64url_decode("aGk", out, sizeof out), 2);
	assert_memory_equal(out, "hi", 2);
	assert_int_equal(receipt_b64url_decode("a*b", out, sizeof out), -1);
	assert_int_equal(receipt_b64url_decode("AAAAAAAAAAAAAAAA", out, sizeof out), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_amount_words),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_sign_verify_tamper_rotate),
		cmocka_unit_test(test_b64url),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
