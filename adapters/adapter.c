#include "adapters/adapter.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/mem.h"
#include "lib/strbuf.h"
#include "lib/util.h"

extern const adapter vnpay_adapter;
extern const adapter momo_adapter;
extern const adapter vietqr_adapter;

static const adapter *const adapters[] = {
	&vnpay_adapter,
	&momo_adapter,
	&vietqr_adapter,
};

const adapter *adapter_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(adapters) / sizeof(adapters[0]); i++)
		if (strcmp(adapters[i]->name, name) == 0)
			return adapters[i];
	return NULL;
}

const adapter *adapter_transfer(void)
{
	for (size_t i = 0; i < ARRAY_LEN(adapters); i++)
		if (adapters[i]->transfer)
			return adapters[i];
	return NULL;
}

bool adapter_names_valid(const char *list)
{
	if (!list || !*list)
		return false;
	for (const char *p = list;;) {
		size_t n = strcspn(p, ",");
		bool known = false;
		for (size_t i = 0; i < ARRAY_LEN(adapters) && !known; i++)
			known = strlen(adapters[i]->name) == n && strncmp(adapters[i]->name, p, n) == 0;
		if (!known)
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

void adapter_names(const char *sep, char *out, size_t cap)
{
	size_t n = 0;
	if (cap)
		out[0] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(adapters) && n < cap; i++) {
		int w = snprintf(out + n, cap - n, "%s%s", i ? sep : "", adapters[i]->name);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

size_t adapter_count(void)
{
	return sizeof(adapters) / sizeof(adapters[0]);
}

const adapter *adapter_at(size_t i)
{
	return i < adapter_count() ? adapters[i] : NULL;
}

const char *adapter_rc_name(adapter_rc rc)
{
	switch (rc) {
	case ADAPTER_OK: return "ok";
	case ADAPTER_BAD_SIGNATURE: return "bad_signature";
	case ADAPTER_MALFORMED: return "malformed";
	case ADAPTER_MISMATCH: return "mismatch";
	case ADAPTER_DECLINED: return "declined";
	case ADAPTER_UNAVAILABLE: return "unavailable";
	case ADAPTER_INVALID_INPUT: return "invalid_input";
	case ADAPTER_UNSUPPORTED: return "unsupported";
	}
	return "unknown";
}

void adapter_request_free(adapter_request *r)
{
	free(r->url);
	free(r->body);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	memset(r, 0, sizeof(*r));
}

void adapter_start_free(adapter_start *s)
{
	free(s->redirect_url);
	free(s->qr_payload);
	adapter_request_free(&s->call);
	memset(s, 0, sizeof(*s));
}

bool adapter_request_add_header(adapter_request *r, const char *name, const char *value)
{
	if (r->n_headers >= ADAPTER_MAX_HEADERS)
		return false;
	r->headers[r->n_headers].name = xstrdup(name);
	r->headers[r->n_headers].value = xstrdup(value);
	r->n_headers++;
	return true;
}

adapter_rc adapter_start_payment(const adapter *a, const adapter_config *cfg,
				 const adapter_payment *p, adapter_start *out)
{
	memset(out, 0, sizeof(*out));
	if (!a->start)
		return ADAPTER_UNSUPPORTED;
	return a->start(cfg, p, out);
}

adapter_rc adapter_parse_start_response(const adapter *a, const adapter_config *cfg,
					const adapter_payment *p, const adapter_response *resp,
					adapter_start *out)
{
	free(out->redirect_url);
	out->redirect_url = NULL;
	out->failure_code[0] = '\0';
	if (!a->parse_start_response)
		return ADAPTER_UNSUPPORTED;
	return a->parse_start_response(cfg, p, resp, out);
}

static void txn_init(adapter_txn *t)
{
	memset(t, 0, sizeof(*t));
	t->state = ADAPTER_TXN_FAILED;
}

adapter_rc adapter_verify_return(const adapter *a, const adapter_config *cfg,
				 const adapter_inbound *in, adapter_txn *out)
{
	txn_init(out);
	if (!a->verify_return)
		return ADAPTER_UNSUPPORTED;
	return a->verify_return(cfg, in, out);
}

adapter_rc adapter_verify_notification(const adapter *a, const adapter_config *cfg,
				       const adapter_inbound *in, adapter_txn *out)
{
	txn_init(out);
	if (!a->verify_notification)
		return ADAPTER_UNSUPPORTED;
	return a->verify_notification(cfg, in, out);
}

adapter_reply adapter_notification_reply(const adapter *a, adapter_outcome outcome)
{
	adapter_reply r;
	memset(&r, 0, sizeof(r));
	if (a->notification_reply) {
		a->notification_reply(outcome, &r);
	} else {
		r.status = outcome == ADAPTER_REJECTED ? 401 : outcome == ADAPTER_FAILED ? 500 : 200;
	}
	return r;
}

size_t adapter_match_candidates(const adapter *a, const adapter_txn *txn, size_t ref_len,
				char (*out)[ADAPTER_REF_CAP], size_t max)
{
	if (!a->match_candidates || ref_len == 0 || ref_len >= ADAPTER_REF_CAP)
		return 0;
	return a->match_candidates(txn, ref_len, out, max);
}

bool adapter_matches(const adapter *a, const adapter_txn *txn, const char *bank_order_ref,
		     int64_t amount, const char *account_no)
{
	if (a->matches)
		return a->matches(txn, bank_order_ref, amount, account_no);
	return bank_order_ref && strcmp(txn->bank_order_ref, bank_order_ref) == 0 &&
	       txn->amount == amount;
}

adapter_rc adapter_build_query(const adapter *a, const adapter_config *cfg,
			       const adapter_query *q, adapter_request *out)
{
	memset(out, 0, sizeof(*out));
	if (!a->build_query)
		return ADAPTER_UNSUPPORTED;
	return a->build_query(cfg, q, out);
}

adapter_rc adapter_parse_query_response(const adapter *a, const adapter_config *cfg,
					const adapter_query *q, const adapter_response *resp,
					adapter_txn *out)
{
	txn_init(out);
	if (!a->parse_query_response)
		return ADAPTER_UNSUPPORTED;
	return a->parse_query_response(cfg, q, resp, out);
}

adapter_rc adapter_build_refund(const adapter *a, const adapter_config *cfg,
				const adapter_refund *r, adapter_request *out)
{
	memset(out, 0, sizeof(*out));
	if (!a->build_refund)
		return ADAPTER_UNSUPPORTED;
	return a->build_refund(cfg, r, out);
}

adapter_rc adapter_parse_refund_response(const adapter *a, const adapter_config *cfg,
					 const adapter_refund *r, const adapter_response *resp,
					 adapter_txn *out)
{
	txn_init(out);
	if (!a->parse_refund_response)
		return ADAPTER_UNSUPPORTED;
	return a->parse_refund_response(cfg, r, resp, out);
}

/* Counts the lines as they pass on to the caller's callback (none: only counted). */
struct settle_tally {
	adapter_settlement_cb cb;
	void *ctx;
	adapter_settlement_summary seen;
};

static bool settle_count(void *ctx, const adapter_settlement_line *line)
{
	struct settle_tally *t = ctx;
	t->seen.lines++;
	t->seen.total += line->amount;
	return !t->cb || t->cb(t->ctx, line);
}

/* The line number of the record beginning at byte start. */
static size_t trailer_line_of(const char *data, size_t start)
{
	size_t line = 1;
	for (const char *p = data, *end = data + start; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		line++;
	return line;
}

/* Finds the file's last record and reads it as the trailer; *body_len is where it begins. */
static bool settlement_trailer(const char *data, size_t len, size_t *body_len, adapter_settlement_summary *out,
			       adapter_error *err)
{
	size_t end = len;
	while (end > 0 && (data[end - 1] == '\n' || data[end - 1] == '\r'))
		end--;
	size_t start = end;
	while (start > 0 && data[start - 1] != '\n')
		start--;
	*body_len = start;
	/* err->line is counted only for an error: counting reads the whole file */
	char rec[96];
	size_t n = end - start;
	if (n == 0 || n >= sizeof(rec)) {
		err->line = trailer_line_of(data, start);
		snprintf(err->message, sizeof(err->message), "the last record must be the trailer "
			 ADAPTER_SETTLEMENT_TRAILER ",yyyymmdd,line count,amount total");
		return false;
	}
	memcpy(rec, data + start, n);
	rec[n] = '\0';
	char day[16], count[24], total[24];
	time_t t;
	if (sscanf(rec, ADAPTER_SETTLEMENT_TRAILER ",%15[0-9],%23[0-9],%23[0-9]", day, count, total) != 3 ||
	    strlen(day) != 8 || !util_parse_int64(count, &out->lines) || !util_parse_int64(total, &out->total)) {
		err->line = trailer_line_of(data, start);
		snprintf(err->message, sizeof(err->message), "the last record must be the trailer "
			 ADAPTER_SETTLEMENT_TRAILER ",yyyymmdd,line count,amount total");
		return false;
	}
	char compact[15];
	snprintf(compact, sizeof(compact), "%.8s000000", day); /* day is 8 digits (checked above) */
	if (!adapter_parse_vn_compact(compact, &t)) {
		err->line = trailer_line_of(data, start);
		snprintf(err->message, sizeof(err->message), "the trailer's business day is not a date");
		return false;
	}
	memcpy(out->business_day, day, 9);
	return true;
}

/* One pass over the lines before the trailer, handing them to cb (NULL: only counted), then
 * the trailer's comparison. */
static adapter_rc settle_pass(const adapter *a, const adapter_config *cfg, const char *data, size_t len,
			      adapter_settlement_cb cb, void *ctx, adapter_settlement_summary *summary,
			      adapter_error *err, size_t *body_len_out)
{
	memset(err, 0, sizeof(*err));
	memset(summary, 0, sizeof(*summary));
	if (!a->parse_settlement)
		return ADAPTER_UNSUPPORTED;
	size_t body_len;
	if (!settlement_trailer(data, len, &body_len, summary, err))
		return ADAPTER_MALFORMED;
	*body_len_out = body_len;
	struct settle_tally t = {.cb = cb, .ctx = ctx};
	adapter_rc rc = a->parse_settlement(cfg, data, body_len, settle_count, &t, err);
	if (rc != ADAPTER_OK)
		return rc;
	if (t.seen.lines != summary->lines || t.seen.total != summary->total) {
		err->line = trailer_line_of(data, body_len);
		snprintf(err->message, sizeof(err->message),
			 "the trailer states %lld lines totalling %lld VND, the file has %lld totalling %lld",
			 (long long)summary->lines, (long long)summary->total, (long long)t.seen.lines,
			 (long long)t.seen.total);
		return ADAPTER_MALFORMED;
	}
	return ADAPTER_OK;
}

adapter_rc adapter_parse_settlement(const adapter *a, const adapter_config *cfg,
				    const char *data, size_t len, adapter_settlement_cb cb,
				    void *ctx, adapter_settlement_summary *summary, adapter_error *err)
{
	/* Two passes: the whole file is checked before any line is handed on, so a caller
	 * never has to undo what it did with the lines of a file refused at its end. */
	size_t body_len = 0;
	adapter_rc rc = settle_pass(a, cfg, data, len, NULL, NULL, summary, err, &body_len);
	if (rc != ADAPTER_OK)
		return rc;
	return a->parse_settlement(cfg, data, body_len, cb, ctx, err);
}

adapter_rc adapter_stream_settlement(const adapter *a, const adapter_config *cfg,
				     const char *data, size_t len, adapter_settlement_cb cb,
				     void *ctx, adapter_settlement_summary *summary, adapter_error *err)
{
	size_t body_len = 0;
	return settle_pass(a, cfg, data, len, cb, ctx, summary, err, &body_len);
}

bool adapter_copy(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= cap) {
		if (cap)
			dst[0] = '\0';
		return false;
	}
	memcpy(dst, src ? src : "", n + 1);
	return true;
}

void adapter_set(char *dst, size_t cap, const char *src)
{
	if (cap == 0)
		return;
	size_t n = src ? strlen(src) : 0;
	if (n >= cap) {
		n = cap - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

#define VN_OFFSET (7 * 3600)

void adapter_format_vn_time(time_t t, const char *fmt, char *out, size_t cap)
{
	time_t shifted = t + VN_OFFSET;
	struct tm tm;
	if (!gmtime_r(&shifted, &tm) || strftime(out, cap, fmt, &tm) == 0) {
		if (cap)
			out[0] = '\0';
	}
}

bool adapter_parse_vn_compact(const char *s, time_t *out)
{
	if (!s || strlen(s) != 14)
		return false;
	int v[14];
	for (int i = 0; i < 14; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v[i] = s[i] - '0';
	}
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3] - 1900;
	tm.tm_mon = v[4] * 10 + v[5] - 1;
	tm.tm_mday = v[6] * 10 + v[7];
	tm.tm_hour = v[8] * 10 + v[9];
	tm.tm_min = v[10] * 10 + v[11];
	tm.tm_sec = v[12] * 10 + v[13];
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	int mday = tm.tm_mday;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != mday) /* timegm normalised an impossible date */
		return false;
	*out = t - VN_OFFSET;
	return true;
}

const char *adapter_inbound_header(const adapter_inbound *in, const char *name)
{
	for (size_t i = 0; i < in->n_headers; i++)
		if (in->headers[i].name && strcasecmp(in->headers[i].name, name) == 0)
			return in->headers[i].value;
	return NULL;
}

char adapter_fold_codepoint(uint32_t cp)
{
	static const char latin1[] = "AAAAAA CEEEEIIII"
				     "DNOOOOO OUUUUY  "
				     "aaaaaa ceeeeiiii"
				     "dnooooo ouuuuy y";
	if (cp < 0x80)
		return (char)cp;
	if (cp >= 0x300 && cp <= 0x36F)
		return 0;
	if (cp >= 0xC0 && cp <= 0xFF)
		return latin1[cp - 0xC0];
	switch (cp) {
	case 0x102: return 'A';
	case 0x103: return 'a';
	case 0x110: return 'D';
	case 0x111: return 'd';
	case 0x128: return 'I';
	case 0x129: return 'i';
	case 0x168: return 'U';
	case 0x169: return 'u';
	case 0x1A0: return 'O';
	case 0x1A1: return 'o';
	case 0x1AF: return 'U';
	case 0x1B0: return 'u';
	default: break;
	}
	if (cp >= 0x1EA0 && cp <= 0x1EF9) {
		char base;
		if (cp <= 0x1EB7)
			base = 'A';
		else if (cp <= 0x1EC7)
			base = 'E';
		else if (cp <= 0x1ECB)
			base = 'I';
		else if (cp <= 0x1EE3)
			base = 'O';
		else if (cp <= 0x1EF1)
			base = 'U';
		else
			base = 'Y';
		return (cp & 1) ? (char)(base + ('a' - 'A')) : base;
	}
	return ' ';
}

void adapter_ascii_fold(const char *utf8, char *out, size_t cap)
{
	if (cap == 0)
		return;
	size_t n = 0;
	bool pending_space = false;
	const char *s = utf8 ? utf8 : "";
	while (*s) {
		char c = adapter_fold_codepoint(util_utf8_next(&s));
		if (c == 0)
			continue;
		if (!isalnum((unsigned char)c)) {
			pending_space = n > 0;
			continue;
		}
		if (pending_space) {
			if (n + 2 > cap - 1)
				break;
			out[n++] = ' ';
			pending_space = false;
		}
		if (n + 1 > cap - 1)
			break;
		out[n++] = c;
	}
	out[n] = '\0';
}
