/* The receipt PDF: renders, and carries the signed receipt JSON for offline verification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/receipt_pdf.h"

static void test_render_and_extract(void **state)
{
	json_t *doc = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:{s:s, s:s}, s:s, s:[{s:s, s:i}], s:s}", "code",
				"R0123456789ABCDEF01234567", "template", "01BLP0-001", "series", "FG-E", "number", 42,
				"amount", 200000, "amount_in_words", "Hai trăm nghìn đồng", "agency", "name",
				"Cục Quản lý Xuất nhập cảnh", "tax_code", "0100100079", "payer_name", "Nguyễn Văn An",
				"items", "name", "Hộ chiếu", "amount", 200000, "signature", "c2lnbmF0dXJl");
	unsigned char *pdf = NULL;
	size_t len = 0;
	assert_true(receipt_pdf_render(doc, true, "http://127.0.0.1:8080/receipts/R0123456789ABCDEF01234567", &pdf, &len));
	assert_true(len > 1000);
	assert_memory_equal(pdf, "%PDF", 4);
	const char *keep = getenv("RECEIPT_PDF_OUT");
	if (keep) {
		FILE *f = fopen(keep, "wb");
		fwrite(pdf, 1, len, f);
		fclose(f);
	}
	char *json = receipt_pdf_extract(pdf, len);
	assert_non_null(json);
	json_t *back = json_loads(json, 0, NULL);
	assert_true(json_equal(back, doc));
	json_decref(back);
	free(json);
	assert_null(receipt_pdf_extract((const unsigned char *)"%PDF-1.5 nothing", 16));
	free(pdf);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_and_extract),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
