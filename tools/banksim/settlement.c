/* Daily settlement files, one per bank and business day (GMT+7), in the
 * formats the adapters' parse_settlement reads. */
#include "tools/banksim/banksim.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapters/csv.h"
#include "adapters/momo.h"
#include "adapters/vietqr.h"
#include "adapters/vnpay.h"

static void field_int(struct strbuf *out, int64_t v)
{
	char text[32];
	snprintf(text, sizeof(text), "%" PRId64, v);
	csv_write_field(out, text, false);
}

static void payment_row(sim *s, struct strbuf *out, const sim_payment *p, int64_t amount, int64_t fee)
{
	char when[32];
	switch (p->bank) {
	case SIM_VNPAY:
		vnpay_format_date(p->paid_at, when);
		csv_write_field(out, s->cfg[SIM_VNPAY].merchant_id, true);
		csv_write_field(out, "01", false);
		csv_write_field(out, p->ref, false);
		csv_write_field(out, p->txn_id, false);
		csv_write_field(out, "", false);
		csv_write_field(out, "", false);
		field_int(out, amount * 100);
		field_int(out, fee * 100);
		csv_write_field(out, when, false);
		break;
	case SIM_MOMO:
		csv_write_field(out, s->cfg[SIM_MOMO].merchant_id, true);
		csv_write_field(out, "payment", false);
		csv_write_field(out, p->ref, false);
		csv_write_field(out, p->txn_id, false);
		csv_write_field(out, "", false);
		csv_write_field(out, "", false);
		field_int(out, amount);
		field_int(out, fee);
		field_int(out, (int64_t)p->paid_at * 1000);
		break;
	default:
		vietqr_format_time(p->paid_at, when);
		csv_write_field(out, "credit", true);
		csv_write_field(out, p->txn_id, false);
		csv_write_field(out, p->account_no, false);
		field_int(out, amount);
		field_int(out, fee);
		csv_write_field(out, p->content ? p->content : "", false);
		csv_write_field(out, when, false);
		break;
	}
	strbuf_puts(out, "\r\n");
}

static void refund_row(sim *s, struct strbuf *out, const sim_refund *r)
{
	const sim_payment *p = r->payment;
	char when[32];
	if (p->bank == SIM_VNPAY) {
		vnpay_format_date(r->at, when);
		csv_write_field(out, s->cfg[SIM_VNPAY].merchant_id, true);
		csv_write_field(out, r->amount == p->amount ? "02" : "03", false);
		csv_write_field(out, p->ref, false);
		csv_write_field(out, p->txn_id, false);
		csv_write_field(out, r->ref, false);
		csv_write_field(out, r->txn_id, false);
		field_int(out, r->amount * 100);
		field_int(out, 0);
		csv_write_field(out, when, false);
	} else {
		csv_write_field(out, s->cfg[SIM_MOMO].merchant_id, true);
		csv_write_field(out, "refund", false);
		csv_write_field(out, p->ref, false);
		csv_write_field(out, p->txn_id, false);
		csv_write_field(out, r->ref, false);
		csv_write_field(out, r->txn_id, false);
		field_int(out, r->amount);
		field_int(out, 0);
		field_int(out, (int64_t)r->at * 1000);
	}
	strbuf_puts(out, "\r\n");
}

void settlement_file(sim *s, struct evhttp_request *req, const char *bank, const char *day)
{
	sim_service svc;
	char compact[15];
	time_t start;
	if (!sim_service_from_name(bank, &svc) || svc == SIM_PORTAL) {
		sim_reply_error(req, 404, "no such bank");
		return;
	}
	if (strlen(day) != 8 || snprintf(compact, sizeof(compact), "%s000000", day) != 14 ||
	    !adapter_parse_vn_compact(compact, &start)) {
		sim_reply_error(req, 400, "the day must be yyyymmdd");
		return;
	}
	time_t end = start + 86400;
	int fee_bps = s->faults[svc].fee_bps;
	struct strbuf out;
	strbuf_init(&out);
	strbuf_puts(&out, svc == SIM_VNPAY ? VNPAY_SETTLEMENT_HEADER
			: svc == SIM_MOMO ? MOMO_SETTLEMENT_HEADER : VIETQR_SETTLEMENT_HEADER);
	strbuf_puts(&out, "\r\n");
	int64_t lines = 0, total = 0;
	for (size_t i = 0; i < s->store.n_all; i++) {
		const sim_payment *p = s->store.all[i];
		if (p->bank != svc || p->status != SIM_SUCCEEDED || p->settle_drop)
			continue;
		time_t listed = p->paid_at + (p->settle_next_day ? 86400 : 0);
		if (listed < start || listed >= end)
			continue;
		int64_t amount = p->settle_amount > 0 ? p->settle_amount : p->amount;
		for (int k = 0; k < (p->settle_repeat ? 2 : 1); k++) {
			payment_row(s, &out, p, amount, amount * fee_bps / 10000);
			lines++;
			total += amount;
		}
	}
	for (size_t i = 0; i < s->store.n_refunds; i++) {
		const sim_refund *r = s->store.all_refunds[i];
		if (r->payment->bank == svc && r->at >= start && r->at < end) {
			refund_row(s, &out, r);
			lines++;
			total += r->amount;
		}
	}
	/* what the file states about itself, last (the adapters' parse_settlement checks it) */
	char trailer[96];
	snprintf(trailer, sizeof(trailer), ADAPTER_SETTLEMENT_TRAILER ",%s,%" PRId64 ",%" PRId64 "\r\n", day, lines,
		 total);
	strbuf_puts(&out, trailer);
	char disposition[96];
	snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s-%s.csv\"", bank, day);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Disposition", disposition);
	sim_reply_text(req, 200, "text/csv; charset=utf-8", out.data, out.len);
	strbuf_free(&out);
}
