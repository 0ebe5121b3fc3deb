#include "adapters/vietqr.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qrencode.h>

#include "adapters/csv.h"
#include "adapters/jsonfield.h"
#include "lib/mem.h"
#include "lib/util.h"

#define VIETQR_TLV_ITEMS 32

uint16_t vietqr_crc16(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint16_t crc = 0xFFFF;
	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)(p[i] << 8);
		for (int bit = 0; bit < 8; bit++)
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

static bool two_digits(const char *s, int *out)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return false;
	*out = (s[0] - '0') * 10 + (s[1] - '0');
	return true;
}

bool vietqr_tlv_parse(const char *text, size_t len, vietqr_tlv *out, size_t cap, size_t *n)
{
	size_t pos = 0, count = 0;
	while (pos < len) {
		int id, vlen;
		if (len - pos < 4 || !two_digits(text + pos, &id) || !two_digits(text + pos + 2, &vlen))
			return false;
		if ((size_t)vlen > len - pos - 4 || count == cap)
			return false;
		out[count].tag[0] = text[pos];
		out[count].tag[1] = text[pos + 1];
		out[count].tag[2] = '\0';
		out[count].value = text + pos + 4;
		out[count].len = (size_t)vlen;
		count++;
		pos += 4 + (size_t)vlen;
	}
	*n = count;
	return true;
}

bool vietqr_tlv_append(struct strbuf *out, const char *tag, const char *value, size_t len)
{
	if (strlen(tag) != 2 || !isdigit((unsigned char)tag[0]) || !isdigit((unsigned char)tag[1]) ||
	    len > VIETQR_TLV_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (value[i] < 0x20 || value[i] > 0x7E)
			return false;
	strbuf_printf(out, "%s%02zu", tag, len);
	strbuf_append(out, value, len);
	return true;
}

static bool all_alnum(const char *s, size_t min, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]))
			return false;
	return true;
}

static bool all_digits(const char *s, size_t min, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

adapter_rc vietqr_build_payload(const char *bin, const char *account, int64_t amount,
				const char *ref, char **out)
{
	adapter_rc rc = ADAPTER_INVALID_INPUT;
	struct strbuf bank, merchant, extra, payload;
	strbuf_init(&bank);
	strbuf_init(&merchant);
	strbuf_init(&extra);
	strbuf_init(&payload);
	char amount_text[24];
	*out = NULL;
	if (!all_digits(bin, 6, 6) || !all_alnum(account, 1, 19) || !all_alnum(ref, 1, 25) ||
	    amount < 1 || amount > ADAPTER_AMOUNT_MAX)
		goto done;
	snprintf(amount_text, sizeof(amount_text), "%" PRId64, amount);
	if (!vietqr_tlv_append(&bank, "00", bin, strlen(bin)) ||
	    !vietqr_tlv_append(&bank, "01", account, strlen(account)) ||
	    !vietqr_tlv_append(&merchant, "00", VIETQR_GUID, strlen(VIETQR_GUID)) ||
	    !vietqr_tlv_append(&merchant, "01", bank.data, bank.len) ||
	    !vietqr_tlv_append(&merchant, "02", VIETQR_SERVICE, strlen(VIETQR_SERVICE)) ||
	    !vietqr_tlv_append(&extra, "08", ref, strlen(ref)) ||
	    !vietqr_tlv_append(&payload, "00", "01", 2) ||
	    !vietqr_tlv_append(&payload, "01", "12", 2) ||
	    !vietqr_tlv_append(&payload, "38", merchant.data, merchant.len) ||
	    !vietqr_tlv_append(&payload, "53", "704", 3) ||
	    !vietqr_tlv_append(&payload, "54", amount_text, strlen(amount_text)) ||
	    !vietqr_tlv_append(&payload, "58", "VN", 2) ||
	    !vietqr_tlv_append(&payload, "62", extra.data, extra.len))
		goto done;
	strbuf_puts(&payload, "6304");
	strbuf_printf(&payload, "%04X", vietqr_crc16(payload.data, payload.len));
	*out = strbuf_take(&payload);
	rc = ADAPTER_OK;
done:
	strbuf_free(&bank);
	strbuf_free(&merchant);
	strbuf_free(&extra);
	strbuf_free(&payload);
	return rc;
}

static const vietqr_tlv *tlv_find(const vietqr_tlv *items, size_t n, const char *tag)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(items[i].tag, tag) == 0)
			return &items[i];
	return NULL;
}

static bool tlv_is(const vietqr_tlv *t, const char *value)
{
	return t && t->len == strlen(value) && memcmp(t->value, value, t->len) == 0;
}

static bool tlv_copy(const vietqr_tlv *t, char *dst, size_t cap)
{
	if (!t || t->len >= cap)
		return false;
	memcpy(dst, t->value, t->len);
	dst[t->len] = '\0';
	return true;
}

adapter_rc vietqr_parse_payload(const char *payload, vietqr_info *out)
{
	vietqr_tlv top[VIETQR_TLV_ITEMS], merchant[VIETQR_TLV_ITEMS], bank[VIETQR_TLV_ITEMS],
		extra[VIETQR_TLV_ITEMS];
	size_t n_top, n_merchant, n_bank, n_extra;
	memset(out, 0, sizeof(*out));
	size_t len = payload ? strlen(payload) : 0;
	if (len < 8 || !vietqr_tlv_parse(payload, len, top, VIETQR_TLV_ITEMS, &n_top) || n_top < 2)
		return ADAPTER_MALFORMED;
	/* 00 first, 63 last with the CRC of everything before its value. */
	const vietqr_tlv *crc = &top[n_top - 1];
	if (!tlv_is(&top[0], "01") || strcmp(top[0].tag, "00") != 0 || strcmp(crc->tag, "63") != 0 ||
	    crc->len != 4)
		return ADAPTER_MALFORMED;
	char want[5], got[5];
	snprintf(want, sizeof(want), "%04X", vietqr_crc16(payload, (size_t)(crc->value - payload)));
	memcpy(got, crc->value, 4);
	got[4] = '\0';
	for (int i = 0; i < 4; i++)
		got[i] = (char)toupper((unsigned char)got[i]);
	if (strcmp(want, got) != 0)
		return ADAPTER_BAD_SIGNATURE;

	const vietqr_tlv *m = tlv_find(top, n_top, "38");
	if (!m || !vietqr_tlv_parse(m->value, m->len, merchant, VIETQR_TLV_ITEMS, &n_merchant) ||
	    !tlv_is(tlv_find(merchant, n_merchant, "00"), VIETQR_GUID) ||
	    !tlv_is(tlv_find(merchant, n_merchant, "02"), VIETQR_SERVICE))
		return ADAPTER_MALFORMED;
	const vietqr_tlv *b = tlv_find(merchant, n_merchant, "01");
	if (!b || !vietqr_tlv_parse(b->value, b->len, bank, VIETQR_TLV_ITEMS, &n_bank) ||
	    !tlv_copy(tlv_find(bank, n_bank, "00"), out->bin, sizeof(out->bin)) ||
	    !tlv_copy(tlv_find(bank, n_bank, "01"), out->account, sizeof(out->account)))
		return ADAPTER_MALFORMED;
	if (!tlv_is(tlv_find(top, n_top, "53"), "704") || !tlv_is(tlv_find(top, n_top, "58"), "VN"))
		return ADAPTER_MALFORMED;
	const vietqr_tlv *a = tlv_find(top, n_top, "54");
	if (a) {
		char text[24];
		if (!tlv_copy(a, text, sizeof(text)) || !all_digits(text, 1, 13) ||
		    !util_parse_int64(text, &out->amount))
			return ADAPTER_MALFORMED;
	}
	const vietqr_tlv *e = tlv_find(top, n_top, "62");
	if (e) {
		if (!vietqr_tlv_parse(e->value, e->len, extra, VIETQR_TLV_ITEMS, &n_extra))
			return ADAPTER_MALFORMED;
		const vietqr_tlv *r = tlv_find(extra, n_extra, "08");
		if (r && !tlv_copy(r, out->ref, sizeof(out->ref)))
			return ADAPTER_MALFORMED;
	}
	return ADAPTER_OK;
}

adapter_rc vietqr_svg(const char *text, char **out)
{
	const int quiet = 4;
	*out = NULL;
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (!qr)
		return ADAPTER_INVALID_INPUT;
	struct strbuf svg;
	strbuf_init(&svg);
	int size = qr->width + 2 * quiet;
	strbuf_printf(&svg,
		    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
		    "height=\"%d\" shape-rendering=\"crispEdges\">"
		    "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
		    size, size, size * 8, size * 8, size, size);
	for (int y = 0; y < qr->width; y++) {
		int x = 0;
		while (x < qr->width) {
			if (!(qr->data[y * qr->width + x] & 1)) {
				x++;
				continue;
			}
			int run = 1;
			while (x + run < qr->width && (qr->data[y * qr->width + x + run] & 1))
				run++;
			strbuf_printf(&svg, "M%d %dh%dv1h-%dz", x + quiet, y + quiet, run, run);
			x += run;
		}
	}
	strbuf_puts(&svg, "\"/></svg>");
	QRcode_free(qr);
	*out = strbuf_take(&svg);
	return ADAPTER_OK;
}

/* NAPAS 247 bank identification numbers (the BIN in tag 38/01/00 of a VietQR code). */
static const struct {
	const char bin[7];
	const char *name;
} napas_banks[] = {
	{"970400", "Saigonbank"},     {"970403", "Sacombank"},     {"970405", "Agribank"},
	{"970406", "DongA Bank"},     {"970407", "Techcombank"},   {"970408", "GPBank"},
	{"970409", "BacABank"},       {"970410", "Standard Chartered"}, {"970412", "PVcomBank"},
	{"970414", "OceanBank"},      {"970415", "VietinBank"},    {"970416", "ACB"},
	{"970418", "BIDV"},           {"970419", "NCB"},           {"970421", "VRB"},
	{"970422", "MB Bank"},        {"970423", "TPBank"},        {"970424", "Shinhan Bank"},
	{"970425", "ABBANK"},         {"970426", "MSB"},           {"970427", "VietABank"},
	{"970428", "Nam A Bank"},     {"970429", "SCB"},           {"970430", "PGBank"},
	{"970431", "Eximbank"},       {"970432", "VPBank"},        {"970433", "Vietbank"},
	{"970434", "Indovina Bank"},  {"970436", "Vietcombank"},   {"970437", "HDBank"},
	{"970438", "BaoViet Bank"},   {"970439", "Public Bank Vietnam"}, {"970440", "SeABank"},
	{"970441", "VIB"},            {"970442", "Hong Leong Bank"}, {"970443", "SHB"},
	{"970446", "Co-opBank"},      {"970448", "OCB"},           {"970449", "LPBank"},
	{"970452", "KienlongBank"},   {"970454", "BVBank"},        {"970457", "Woori Bank"},
	{"970458", "UOB Vietnam"},
};

const char *vietqr_bank_name(const char *bin)
{
	for (size_t i = 0; bin && i < sizeof napas_banks / sizeof napas_banks[0]; i++) {
		if (strcmp(napas_banks[i].bin, bin) == 0)
			return napas_banks[i].name;
	}
	return NULL;
}

adapter_rc adapter_qr_svg(const char *payload, char **svg)
{
	return vietqr_svg(payload, svg);
}

const char *adapter_bin_bank_name(const char *bin)
{
	return vietqr_bank_name(bin);
}

bool vietqr_webhook_sign(const char *secret, const char *timestamp, const char *body, size_t len,
			 char out[VIETQR_SIG_HEX_SIZE])
{
	return util_sign_timestamped(secret, timestamp, body, len, out);
}

adapter_rc vietqr_webhook_verify(const char *secret, const char *timestamp, const char *signature,
				 const char *body, size_t len, time_t now)
{
	int64_t ts;
	if (!secret || !*secret || !signature || !all_digits(timestamp, 1, 12) ||
	    !util_parse_int64(timestamp, &ts))
		return ADAPTER_BAD_SIGNATURE;
	int64_t skew = (int64_t)now - ts;
	if (skew > VIETQR_MAX_SKEW || skew < -VIETQR_MAX_SKEW)
		return ADAPTER_BAD_SIGNATURE;
	char expected[VIETQR_SIG_HEX_SIZE];
	if (!vietqr_webhook_sign(secret, timestamp, body ? body : "", body ? len : 0, expected))
		return ADAPTER_BAD_SIGNATURE;
	return util_hex_equal(expected, signature) ? ADAPTER_OK : ADAPTER_BAD_SIGNATURE;
}

/* The upper-case form of a letter adapter_fold_codepoint() knows, else 0. */
static uint32_t vietnamese_upper(uint32_t cp)
{
	char base = adapter_fold_codepoint(cp);
	if (cp < 0x80 || !isalpha((unsigned char)base))
		return 0;
	if (cp >= 0xE0 && cp <= 0xFE)
		return cp - 0x20;
	if (cp == 0xFF)
		return 0x178;
	if (cp >= 0xC0 && cp <= 0xDE)
		return cp;
	if (cp == 0x1B0)
		return 0x1AF;
	if ((cp >= 0x100 && cp <= 0x1A1) || (cp >= 0x1EA0 && cp <= 0x1EF9))
		return (cp & 1) ? cp - 1 : cp;
	return cp; /* U+01AF */
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	out[0] = (char)(0xE0 | (cp >> 12));
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[2] = (char)(0x80 | (cp & 0x3F));
	return 3;
}

void vietqr_normalize(const char *content, char *out, size_t cap)
{
	if (cap == 0)
		return;
	size_t n = 0;
	const char *s = content ? content : "";
	while (*s) {
		uint32_t cp = util_utf8_next(&s);
		uint32_t keep = 0;
		if (cp < 0x80) {
			if (isalnum((int)cp))
				keep = (uint32_t)toupper((int)cp);
		} else {
			keep = vietnamese_upper(cp);
		}
		if (!keep)
			continue;
		char enc[4];
		size_t len = utf8_encode(keep, enc);
		if (n + len > cap - 1)
			break;
		memcpy(out + n, enc, len);
		n += len;
	}
	out[n] = '\0';
}

/* The matching rule: the transfer's content, normalized (match_text), contains the attempt's
 * bank_order_ref, and the amount and the credited account are the attempt's. */
static bool vietqr_txn_matches(const adapter_txn *txn, const char *bank_order_ref, int64_t amount,
			       const char *account_no)
{
	if (!bank_order_ref || !*bank_order_ref || !account_no || txn->amount != amount ||
	    strcmp(txn->account_no, account_no) != 0)
		return false;
	return strstr(txn->match_text, bank_order_ref) != NULL;
}

static bool is_ref_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The same rule as a lookup: every run of ref_len ASCII letters and digits in match_text is a
 * reference the content contains (the attempts' references are ASCII). */
static size_t vietqr_match_candidates(const adapter_txn *txn, size_t ref_len, char (*out)[ADAPTER_REF_CAP],
				      size_t max)
{
	const char *m = txn->match_text;
	size_t n = strlen(m), found = 0;
	for (size_t i = 0; i + ref_len <= n && found < max; i++) {
		size_t k = 0;
		while (k < ref_len && is_ref_char(m[i + k]))
			k++;
		if (k == ref_len) {
			memcpy(out[found], m + i, ref_len);
			out[found++][ref_len] = '\0';
		}
	}
	return found;
}

void vietqr_format_time(time_t t, char out[32])
{
	adapter_format_vn_time(t, "%Y-%m-%dT%H:%M:%S+07:00", out, 32);
}

bool vietqr_parse_time(const char *s, time_t *out)
{
	int y, mo, d, h, mi, sec, n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return false;
	const char *z = s + n;
	if (*z == '.') /* fractional seconds are ignored */
		for (z++; isdigit((unsigned char)*z); z++)
			;
	long offset = 0;
	if (strcmp(z, "Z") == 0) {
		offset = 0;
	} else if ((z[0] == '+' || z[0] == '-') && strlen(z) == 6 && z[3] == ':' &&
		   isdigit((unsigned char)z[1]) && isdigit((unsigned char)z[2]) &&
		   isdigit((unsigned char)z[4]) && isdigit((unsigned char)z[5])) {
		offset = ((z[1] - '0') * 10 + (z[2] - '0')) * 3600L + ((z[4] - '0') * 10 + (z[5] - '0')) * 60L;
		if (z[0] == '-')
			offset = -offset;
	} else {
		return false;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d)
		return false;
	*out = t - offset;
	return true;
}

static adapter_rc vietqr_start(const adapter_config *cfg, const adapter_payment *p, adapter_start *out)
{
	adapter_rc rc = vietqr_build_payload(p->account.bin, p->account.number, p->amount,
					     p->bank_order_ref, &out->qr_payload);
	if (rc == ADAPTER_OK)
		out->kind = ADAPTER_START_QR;
	return rc;
}

static adapter_rc vietqr_verify_notification(const adapter_config *cfg, const adapter_inbound *in,
					     adapter_txn *out)
{
	adapter_rc rc = vietqr_webhook_verify(cfg->secret, adapter_inbound_header(in, "X-Timestamp"),
					      adapter_inbound_header(in, "X-Signature"), in->body,
					      in->body_len, in->now);
	if (rc != ADAPTER_OK)
		return rc;
	json_t *obj = jsonfield_parse_object(in->body, in->body_len);
	rc = ADAPTER_MALFORMED;
	if (!obj)
		goto done;
	const char *content = json_string_value(json_object_get(obj, "content"));
	const char *when = json_string_value(json_object_get(obj, "transaction_time"));
	if (!jsonfield_copy(obj, "transaction_id", out->bank_txn_id, sizeof(out->bank_txn_id)) ||
	    !out->bank_txn_id[0] ||
	    !jsonfield_copy(obj, "account_no", out->account_no, sizeof(out->account_no)) ||
	    !out->account_no[0] || !jsonfield_int64(obj, "amount", &out->amount) || out->amount <= 0)
		goto done;
	adapter_set(out->content, sizeof(out->content), content ? content : "");
	vietqr_normalize(content, out->match_text, sizeof(out->match_text));
	if (!when || !vietqr_parse_time(when, &out->bank_time))
		out->bank_time = 0;
	/* A signed credit is money already on the account. */
	out->state = ADAPTER_TXN_SUCCEEDED;
	out->success = true;
	rc = ADAPTER_OK;
done:
	json_decref(obj);
	return rc;
}

static void vietqr_reply(adapter_outcome outcome, adapter_reply *out)
{
	const char *body = "{\"status\":\"ok\"}";
	memset(out, 0, sizeof(*out));
	out->status = 200;
	if (outcome == ADAPTER_REJECTED) {
		out->status = 401;
		body = "{\"status\":\"rejected\"}";
	} else if (outcome == ADAPTER_FAILED) {
		out->status = 500;
		body = "{\"status\":\"retry\"}";
	}
	out->content_type = "application/json";
	out->body_len = strlen(body);
	memcpy(out->body, body, out->body_len + 1);
}

static bool vietqr_settlement_row(const adapter_config *cfg, const csv_reader *r, adapter_settlement_line *l,
				  adapter_error *err)
{
	if (!csv_settlement_start(cfg, r, 7, NULL, l, err))
		return false;
	l->kind = ADAPTER_SETTLE_PAYMENT;
	if (strcmp(csv_field(r, 0), "credit") != 0)
		return csv_settle_fail(err, r->line, "type is not credit");
	if (!adapter_copy(l->bank_txn_id, sizeof(l->bank_txn_id), csv_field(r, 1)) || !l->bank_txn_id[0])
		return csv_settle_fail(err, r->line, "bad transaction_id");
	if (!adapter_copy(l->account_no, sizeof(l->account_no), csv_field(r, 2)) || !l->account_no[0])
		return csv_settle_fail(err, r->line, "bad account_no");
	if (!util_parse_int64(csv_field(r, 3), &l->amount) || l->amount <= 0)
		return csv_settle_fail(err, r->line, "bad amount");
	if (!util_parse_int64(csv_field(r, 4), &l->fee) || l->fee < 0)
		return csv_settle_fail(err, r->line, "bad fee");
	adapter_set(l->content, sizeof(l->content), csv_field(r, 5));
	if (!vietqr_parse_time(csv_field(r, 6), &l->at))
		return csv_settle_fail(err, r->line, "bad transaction_time");
	return true;
}

static adapter_rc vietqr_parse_settlement(const adapter_config *cfg, const char *data, size_t len,
					  adapter_settlement_cb cb, void *ctx, adapter_error *err)
{
	return csv_parse_settlement(cfg, data, len, VIETQR_SETTLEMENT_HEADER, vietqr_settlement_row, cb, ctx, err);
}

const adapter vietqr_adapter = {
	.name = "vietqr",
	.display_name = "VietQR",
	.checkout_vi = "Chuyển khoản ngân hàng bằng mã VietQR",
	.checkout_en = "Bank transfer by VietQR",
	.transfer = true,
	.env_merchant_id = NULL,
	.env_access_key = NULL,
	.env_secret = "FEEGATE_VIETQR_WEBHOOK_SECRET",
	.start = vietqr_start,
	.parse_start_response = NULL,
	.verify_return = NULL,
	.verify_notification = vietqr_verify_notification,
	.notification_reply = vietqr_reply,
	.matches = vietqr_txn_matches,
	.match_candidates = vietqr_match_candidates,
	.build_query = NULL,
	.parse_query_response = NULL,
	.build_refund = NULL,
	.parse_refund_response = NULL,
	.parse_settlement = vietqr_parse_settlement,
};
