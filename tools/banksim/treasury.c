/* The treasury side: each agency collection account's camt.053 statement for a GMT+7 day,
 * carrying the citizens' VietQR transfers to it and the banks' payouts registered through
 * POST /admin/payouts (a test states what a bank pays out, and can drop or alter it). */
#include "tools/banksim/banksim.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapters/adapter.h"

static bool day_start(const char *day, time_t *out)
{
	char compact[15];
	return strlen(day) == 8 && snprintf(compact, sizeof(compact), "%s000000", day) == 14 &&
	       adapter_parse_vn_compact(compact, out);
}

static void xml_text(struct strbuf *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': strbuf_puts(out, "&amp;"); break;
		case '<': strbuf_puts(out, "&lt;"); break;
		case '>': strbuf_puts(out, "&gt;"); break;
		case '"': strbuf_puts(out, "&quot;"); break;
		default: strbuf_putc(out, *s);
		}
	}
}

static void entry(struct strbuf *out, int64_t amount, const char *booked, const char *ref, const char *remittance)
{
	strbuf_printf(out, "<Ntry><Amt Ccy=\"VND\">%" PRId64 "</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
		    "<BookgDt><Dt>%s</Dt></BookgDt><AcctSvcrRef>", amount, booked);
	xml_text(out, ref);
	strbuf_puts(out, "</AcctSvcrRef><NtryDtls><TxDtls><Refs><AcctSvcrRef>");
	xml_text(out, ref);
	strbuf_puts(out, "</AcctSvcrRef></Refs><RmtInf><Ustrd>");
	xml_text(out, remittance);
	strbuf_puts(out, "</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>");
}

/* Credits to account before `before` (when entries is NULL: only their sum), or on [start, end). */
static int64_t credits(sim *s, const char *account, time_t start, time_t end, struct strbuf *entries, const char *booked)
{
	int64_t sum = 0;
	for (size_t i = 0; i < s->store.n_all; i++) {
		const sim_payment *p = s->store.all[i];
		if (p->bank != SIM_VIETQR || p->status != SIM_SUCCEEDED || !p->account_no ||
		    strcmp(p->account_no, account) != 0 || p->paid_at < start || p->paid_at >= end)
			continue;
		sum += p->amount;
		if (entries)
			entry(entries, p->amount, booked, p->txn_id ? p->txn_id : p->ref, p->content);
	}
	size_t i;
	json_t *po;
	json_array_foreach(s->payouts, i, po) {
		time_t on;
		if (strcmp(json_string_value(json_object_get(po, "account")), account) != 0 ||
		    !day_start(json_string_value(json_object_get(po, "paid_on")), &on) || on < start || on >= end)
			continue;
		int64_t amount = json_integer_value(json_object_get(po, "amount"));
		sum += amount;
		if (entries) {
			char rmt[96], ref[64];
			char bank[16];
			snprintf(bank, sizeof(bank), "%s", json_string_value(json_object_get(po, "bank")));
			for (char *c = bank; *c; c++)
				if (*c >= 'a' && *c <= 'z')
					*c = (char)(*c - 'a' + 'A');
			snprintf(rmt, sizeof(rmt), "FGPAYOUT %s %s %s", bank,
				 json_string_value(json_object_get(po, "day")), json_string_value(json_object_get(po, "agency")));
			snprintf(ref, sizeof(ref), "PO%s%s%zu", bank, json_string_value(json_object_get(po, "day")), i);
			entry(entries, amount, booked, ref, rmt);
		}
	}
	return sum;
}

void treasury_statement(sim *s, struct evhttp_request *req, const char *account, const char *day)
{
	time_t start;
	if (!day_start(day, &start)) {
		sim_reply_error(req, 400, "the day must be yyyymmdd");
		return;
	}
	char booked[11];
	snprintf(booked, sizeof(booked), "%.4s-%.2s-%.2s", day, day + 4, day + 6);
	struct strbuf entries;
	strbuf_init(&entries);
	int64_t opening = credits(s, account, 0, start, NULL, booked);
	int64_t day_total = credits(s, account, start, start + 86400, &entries, booked);
	struct strbuf out;
	strbuf_init(&out);
	strbuf_puts(&out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt>");
	strbuf_printf(&out, "<GrpHdr><MsgId>BANKSIM-%s-%s</MsgId><CreDtTm>%sT23:59:59+07:00</CreDtTm></GrpHdr>", account,
		    day, booked);
	strbuf_printf(&out, "<Stmt><Id>%s-%s</Id><Acct><Id><Othr><Id>", account, day);
	xml_text(&out, account);
	strbuf_puts(&out, "</Id></Othr></Id><Ccy>VND</Ccy></Acct>");
	strbuf_printf(&out, "<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"VND\">%" PRId64
		    "</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>%s</Dt></Dt></Bal>", opening, booked);
	strbuf_printf(&out, "<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"VND\">%" PRId64
		    "</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>%s</Dt></Dt></Bal>", opening + day_total, booked);
	strbuf_append(&out, entries.data ? entries.data : "", entries.len);
	strbuf_puts(&out, "</Stmt></BkToCstmrStmt></Document>\n");
	strbuf_free(&entries);
	sim_reply_text(req, 200, "application/xml", out.data, out.len);
	strbuf_free(&out);
}

/* {"account", "bank", "day" (the business day paid out), "agency", "amount", "paid_on"
 * (yyyymmdd, the statement it appears on)}; the same account, bank and day again replaces it
 * (an altered payout); "action": "drop" removes it. */
void admin_payouts(sim *s, struct evhttp_request *req)
{
	if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
		sim_reply_json(req, 200, json_pack("{s:O}", "data", s->payouts));
		return;
	}
	json_t *obj = sim_body_json(req);
	const char *account = obj ? json_string_value(json_object_get(obj, "account")) : NULL;
	const char *bank = obj ? json_string_value(json_object_get(obj, "bank")) : NULL;
	const char *day = obj ? json_string_value(json_object_get(obj, "day")) : NULL;
	const char *action = obj ? json_string_value(json_object_get(obj, "action")) : NULL;
	time_t t;
	if (!account || !bank || !day || !day_start(day, &t)) {
		json_decref(obj);
		sim_reply_error(req, 400, "body must be {\"account\", \"bank\", \"day\": yyyymmdd, \"agency\", \"amount\", "
					  "\"paid_on\": yyyymmdd} or {..., \"action\": \"drop\"}");
		return;
	}
	size_t i;
	json_t *po;
	json_array_foreach(s->payouts, i, po) {
		if (strcmp(json_string_value(json_object_get(po, "account")), account) == 0 &&
		    strcmp(json_string_value(json_object_get(po, "bank")), bank) == 0 &&
		    strcmp(json_string_value(json_object_get(po, "day")), day) == 0) {
			json_array_remove(s->payouts, i);
			break;
		}
	}
	if (!action || strcmp(action, "drop") != 0) {
		const char *agency = json_string_value(json_object_get(obj, "agency"));
		const char *paid_on = json_string_value(json_object_get(obj, "paid_on"));
		json_int_t amount = json_integer_value(json_object_get(obj, "amount"));
		if (!agency || !paid_on || !day_start(paid_on, &t) || amount <= 0) {
			json_decref(obj);
			sim_reply_error(req, 400, "a payout needs agency, amount > 0 and paid_on");
			return;
		}
		json_array_append_new(s->payouts, json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "account", account, "bank",
							     bank, "day", day, "agency", agency, "amount", amount,
							     "paid_on", paid_on));
	}
	json_decref(obj);
	sim_reply_json(req, 200, json_pack("{s:O}", "data", s->payouts));
}
