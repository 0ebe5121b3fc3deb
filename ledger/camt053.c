#include "ledger/camt053.h"

#include <libxml/xmlreader.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAMT_DEPTH 24
#define CAMT_KIDS 24
#define CAMT_NAME 40
#define CAMT_NS "urn:iso:std:iso:20022:tech:xsd:camt.053.001."

struct camt_level {
	char name[CAMT_NAME];
	int index; /* among its parent's children of the same name, 1-based */
	struct {
		char name[CAMT_NAME];
		int count;
	} kids[CAMT_KIDS];
	int nkids;
};

/* What one pass over the file keeps: the element stack, the statement's balances and the
 * entry being read. The first pass checks, the second hands lines on. */
struct camt_pass {
	struct camt_level st[CAMT_DEPTH];
	int depth;
	char names[512]; /* the stack's local names joined with '/', no indices */
	bool emit;
	camt_line_cb cb;
	void *ctx;
	struct camt_summary *sum;
	struct camt_error *err;
	bool failed, stopped;
	int nstmt;
	/* balance being read */
	char bal_code[8];
	int64_t bal_amt;
	bool bal_debit;
	char bal_date[11];
	char bal_path[256];
	bool have_open, have_close;
	char close_path[256];
	int64_t net; /* credits minus debits */
	/* entry being read */
	char ntry_path[256];
	int64_t ntry_amt;
	bool ntry_amt_set, ntry_debit;
	char ntry_ref[64];
	char ntry_booked[11];
	char ntry_info[CAMT_TEXT_CAP];
	int64_t tx_sum;
	int ntx; /* transaction details with an amount */
	/* transaction detail being read */
	int64_t tx_amt;
	bool tx_amt_set, tx_debit, tx_debit_set;
	char tx_ref[64];
	char tx_rmt[CAMT_TEXT_CAP];
	int line;
};

static void path_of(const struct camt_pass *p, int upto, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (int i = 0; i < upto && n < cap; i++) {
		int w = i < 2 ? snprintf(out + n, cap - n, "%s%s", i ? "/" : "", p->st[i].name)
			      : snprintf(out + n, cap - n, "/%s[%d]", p->st[i].name, p->st[i].index);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

static void fail_at(struct camt_pass *p, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_at(struct camt_pass *p, const char *path, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	if (path)
		snprintf(p->err->path, sizeof(p->err->path), "%s", path);
	else
		path_of(p, p->depth, p->err->path, sizeof(p->err->path));
	if (!p->err->path[0])
		snprintf(p->err->path, sizeof(p->err->path), "Document");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
	va_end(ap);
}

/* The element's names below the statement ("Ntry/NtryDtls/TxDtls/Amt"), or NULL outside it. */
static const char *in_stmt(const struct camt_pass *p)
{
	static const char prefix[] = "Document/BkToCstmrStmt/Stmt/";
	if (strncmp(p->names, prefix, sizeof(prefix) - 1) != 0)
		return NULL;
	return p->names + sizeof(prefix) - 1;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0 && (a == b || s[a - b - 1] == '/');
}

/* VND amounts are whole: "150000" or "150000.00". */
static bool parse_vnd(const char *s, int64_t *out)
{
	int64_t v = 0;
	const char *c = s;
	if (!*c)
		return false;
	for (; *c >= '0' && *c <= '9'; c++) {
		if (v > (INT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (*c - '0');
	}
	if (c == s)
		return false;
	if (*c == '.') {
		c++;
		if (!*c)
			return false;
		for (; *c == '0'; c++)
			;
	}
	if (*c)
		return false;
	*out = v;
	return true;
}

static void copy_text(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memmove(dst, src, n);
	dst[n] = '\0';
}

static void append_text(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(dst);
	if (n && n + 1 < cap)
		dst[n++] = ' ';
	snprintf(dst + n, cap - n, "%s", src);
}

static void emit(struct camt_pass *p, bool debit, int64_t amount, const char *ref, const char *rmt)
{
	p->line++;
	p->sum->lines++;
	p->sum->total += amount;
	if (!p->emit || p->stopped)
		return;
	struct camt_line l;
	memset(&l, 0, sizeof(l));
	l.line = p->line;
	l.credit = !debit;
	l.amount = amount;
	copy_text(l.ref, sizeof(l.ref), ref);
	copy_text(l.remittance, sizeof(l.remittance), rmt);
	copy_text(l.booked, sizeof(l.booked), p->ntry_booked);
	if (!p->cb(p->ctx, &l))
		p->stopped = true;
}

static void on_start(struct camt_pass *p, xmlTextReaderPtr r)
{
	const char *name = (const char *)xmlTextReaderConstLocalName(r);
	if (p->depth >= CAMT_DEPTH) {
		fail_at(p, NULL, "elements nested too deeply");
		return;
	}
	struct camt_level *parent = p->depth ? &p->st[p->depth - 1] : NULL;
	struct camt_level *lv = &p->st[p->depth];
	memset(lv, 0, sizeof(*lv));
	copy_text(lv->name, sizeof(lv->name), name);
	lv->index = 1;
	if (parent) {
		int k;
		for (k = 0; k < parent->nkids && strcmp(parent->kids[k].name, lv->name) != 0; k++)
			;
		if (k == parent->nkids && k < CAMT_KIDS) {
			copy_text(parent->kids[k].name, CAMT_NAME, lv->name);
			parent->nkids++;
		}
		if (k < CAMT_KIDS)
			lv->index = ++parent->kids[k].count;
	}
	size_t n = strlen(p->names);
	snprintf(p->names + n, sizeof(p->names) - n, "%s%s", n ? "/" : "", lv->name);
	p->depth++;

	if (p->depth == 1) {
		const char *ns = (const char *)xmlTextReaderConstNamespaceUri(r);
		if (strcmp(name, "Document") != 0) {
			fail_at(p, NULL, "the root element must be Document");
			return;
		}
		if (ns && *ns) {
			int v = 0;
			if (strncmp(ns, CAMT_NS, sizeof(CAMT_NS) - 1) != 0 ||
			    sscanf(ns + sizeof(CAMT_NS) - 1, "%2d", &v) != 1 || v < 2 || v > 13 ||
			    strlen(ns) != sizeof(CAMT_NS) - 1 + 2) {
				fail_at(p, NULL, "namespace %.80s is not camt.053.001.02 to .13", ns);
				return;
			}
		}
	} else if (p->depth == 2 && strcmp(name, "BkToCstmrStmt") != 0) {
		fail_at(p, NULL, "Document must hold BkToCstmrStmt");
		return;
	} else if (p->depth == 3 && strcmp(name, "Stmt") == 0) {
		if (++p->nstmt > 1)
			fail_at(p, NULL, "one statement per file");
	}
	const char *rel = in_stmt(p);
	if (!rel)
		return;
	if (strcmp(rel, "Bal") == 0) {
		p->bal_code[0] = p->bal_date[0] = '\0';
		p->bal_amt = -1;
		p->bal_debit = false;
		path_of(p, p->depth, p->bal_path, sizeof(p->bal_path));
	} else if (strcmp(rel, "Ntry") == 0) {
		path_of(p, p->depth, p->ntry_path, sizeof(p->ntry_path));
		p->ntry_amt_set = p->ntry_debit = false;
		p->ntry_ref[0] = p->ntry_booked[0] = p->ntry_info[0] = '\0';
		p->tx_sum = 0;
		p->ntx = 0;
	} else if (strcmp(rel, "Ntry/NtryDtls/TxDtls") == 0) {
		p->tx_amt_set = p->tx_debit = p->tx_debit_set = false;
		p->tx_ref[0] = p->tx_rmt[0] = '\0';
	}
	if (strcmp(name, "Amt") == 0) {
		xmlChar *ccy = xmlTextReaderGetAttribute(r, (const xmlChar *)"Ccy");
		if (ccy && strcmp((const char *)ccy, "VND") != 0)
			fail_at(p, NULL, "currency %.8s is not VND", (const char *)ccy);
		xmlFree(ccy);
	}
}

static void on_text(struct camt_pass *p, const char *value)
{
	const char *rel = in_stmt(p);
	if (!rel) {
		return;
	}
	int64_t v = 0;
	bool is_amt = strcmp(rel, "Bal/Amt") == 0 || strcmp(rel, "Ntry/Amt") == 0 ||
		      strcmp(rel, "Ntry/NtryDtls/TxDtls/Amt") == 0 ||
		      strcmp(rel, "Ntry/NtryDtls/TxDtls/AmtDtls/TxAmt/Amt") == 0;
	if (is_amt && !parse_vnd(value, &v)) {
		fail_at(p, NULL, "amount %.40s is not whole VND", value);
		return;
	}
	if (strcmp(rel, "Acct/Id/IBAN") == 0 || strcmp(rel, "Acct/Id/Othr/Id") == 0)
		copy_text(p->sum->account, sizeof(p->sum->account), value);
	else if (strcmp(rel, "Bal/Tp/CdOrPrtry/Cd") == 0)
		copy_text(p->bal_code, sizeof(p->bal_code), value);
	else if (strcmp(rel, "Bal/Amt") == 0)
		p->bal_amt = v;
	else if (strcmp(rel, "Bal/CdtDbtInd") == 0)
		p->bal_debit = strcmp(value, "DBIT") == 0;
	else if (strcmp(rel, "Bal/Dt/Dt") == 0 || strcmp(rel, "Bal/Dt/DtTm") == 0)
		snprintf(p->bal_date, sizeof(p->bal_date), "%.10s", value);
	else if (strcmp(rel, "Ntry/Amt") == 0) {
		p->ntry_amt = v;
		p->ntry_amt_set = true;
	} else if (strcmp(rel, "Ntry/CdtDbtInd") == 0) {
		if (strcmp(value, "CRDT") != 0 && strcmp(value, "DBIT") != 0)
			fail_at(p, NULL, "CdtDbtInd must be CRDT or DBIT");
		p->ntry_debit = strcmp(value, "DBIT") == 0;
	} else if (strcmp(rel, "Ntry/AcctSvcrRef") == 0)
		copy_text(p->ntry_ref, sizeof(p->ntry_ref), value);
	else if (strcmp(rel, "Ntry/BookgDt/Dt") == 0 || strcmp(rel, "Ntry/BookgDt/DtTm") == 0)
		snprintf(p->ntry_booked, sizeof(p->ntry_booked), "%.10s", value);
	else if (strcmp(rel, "Ntry/AddtlNtryInf") == 0)
		append_text(p->ntry_info, sizeof(p->ntry_info), value);
	else if (strcmp(rel, "Ntry/NtryDtls/TxDtls/Amt") == 0 ||
		 strcmp(rel, "Ntry/NtryDtls/TxDtls/AmtDtls/TxAmt/Amt") == 0) {
		if (!p->tx_amt_set) {
			p->tx_amt = v;
			p->tx_amt_set = true;
		}
	} else if (strcmp(rel, "Ntry/NtryDtls/TxDtls/CdtDbtInd") == 0) {
		p->tx_debit = strcmp(value, "DBIT") == 0;
		p->tx_debit_set = true;
	} else if (ends_with(rel, "Ntry/NtryDtls/TxDtls/Refs/AcctSvcrRef") ||
		   (ends_with(rel, "Ntry/NtryDtls/TxDtls/Refs/EndToEndId") && !p->tx_ref[0]) ||
		   (ends_with(rel, "Ntry/NtryDtls/TxDtls/Refs/TxId") && !p->tx_ref[0]))
		copy_text(p->tx_ref, sizeof(p->tx_ref), value);
	else if (strcmp(rel, "Ntry/NtryDtls/TxDtls/RmtInf/Ustrd") == 0)
		append_text(p->tx_rmt, sizeof(p->tx_rmt), value);
}

static void on_end(struct camt_pass *p)
{
	const char *rel = in_stmt(p);
	if (rel && strcmp(rel, "Bal") == 0) {
		if (p->bal_amt < 0) {
			fail_at(p, p->bal_path, "balance without Amt");
		} else if (strcmp(p->bal_code, "OPBD") == 0 || strcmp(p->bal_code, "PRCD") == 0) {
			if (!p->have_open)
				p->sum->opening = p->bal_debit ? -p->bal_amt : p->bal_amt;
			p->have_open = true;
		} else if (strcmp(p->bal_code, "CLBD") == 0) {
			p->sum->closing = p->bal_debit ? -p->bal_amt : p->bal_amt;
			p->have_close = true;
			copy_text(p->sum->business_date, sizeof(p->sum->business_date), p->bal_date);
			copy_text(p->close_path, sizeof(p->close_path), p->bal_path);
			if (strlen(p->bal_date) != 10)
				fail_at(p, p->bal_path, "the closing balance has no date (Dt/Dt)");
		}
	} else if (p->depth == 3 && strcmp(p->st[2].name, "Stmt") == 0) {
		/* the statement as a whole: opening plus its entries is its closing balance */
		int64_t want = p->sum->opening + p->net;
		if (p->have_close && !p->have_open)
			fail_at(p, p->close_path, "a closing balance without an opening balance (OPBD)");
		else if (p->have_close && want != p->sum->closing)
			fail_at(p, p->close_path,
				"opening balance %lld plus entries %lld is %lld, not the closing balance %lld",
				(long long)p->sum->opening, (long long)p->net, (long long)want, (long long)p->sum->closing);
	} else if (rel && strcmp(rel, "Ntry/NtryDtls/TxDtls") == 0) {
		if (p->tx_amt_set) {
			bool debit = p->tx_debit_set ? p->tx_debit : p->ntry_debit;
			p->ntx++;
			p->tx_sum += p->tx_amt;
			emit(p, debit, p->tx_amt, p->tx_ref[0] ? p->tx_ref : p->ntry_ref,
			     p->tx_rmt[0] ? p->tx_rmt : p->ntry_info);
		} else if (p->tx_rmt[0] && !p->ntry_info[0]) {
			/* a single entry's details without their own amount: the entry's text */
			copy_text(p->ntry_info, sizeof(p->ntry_info), p->tx_rmt);
			if (p->tx_ref[0] && !p->ntry_ref[0])
				copy_text(p->ntry_ref, sizeof(p->ntry_ref), p->tx_ref);
		}
	} else if (rel && strcmp(rel, "Ntry") == 0) {
		if (!p->ntry_amt_set) {
			fail_at(p, p->ntry_path, "entry without Amt");
		} else {
			p->net += p->ntry_debit ? -p->ntry_amt : p->ntry_amt;
			if (p->ntx == 0)
				emit(p, p->ntry_debit, p->ntry_amt, p->ntry_ref, p->ntry_info);
			else if (p->tx_sum != p->ntry_amt)
				fail_at(p, p->ntry_path, "the batch's transaction details total %lld, the entry %lld",
					(long long)p->tx_sum, (long long)p->ntry_amt);
		}
	}
	if (p->depth > 0) {
		p->depth--;
		char *slash = strrchr(p->names, '/');
		if (slash)
			*slash = '\0';
		else
			p->names[0] = '\0';
	}
}

static void on_xml_error(void *arg, xmlErrorPtr e)
{
	struct camt_pass *p = arg;
	if (!e || e->level < XML_ERR_ERROR)
		return;
	char msg[160];
	snprintf(msg, sizeof(msg), "%s", e->message ? e->message : "not well-formed");
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	fail_at(p, NULL, "not well-formed XML at line %d: %s", e->line, msg);
}

/* libxml2's own reports (the input layer's encoding errors among them) would go to stderr,
 * which is the gateway's JSON log: the reader's structured handler says what the file lacks. */
static void xml_quiet(void *ctx, const char *msg, ...)
{
}

static bool run_pass(struct camt_pass *p, const char *data, size_t len)
{
	xmlSetGenericErrorFunc(NULL, xml_quiet); /* this thread's handler */
	if (len > (size_t)INT32_MAX) {
		fail_at(p, "Document", "file too large for one statement");
		return false;
	}
	/* No XML_PARSE_NOENT (entities are not substituted), no DTDLOAD, no network. */
	xmlTextReaderPtr r = xmlReaderForMemory(data, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOCDATA);
	if (!r) {
		fail_at(p, "Document", "cannot read the file as XML");
		return false;
	}
	xmlTextReaderSetStructuredErrorHandler(r, on_xml_error, p);
	int got;
	while (!p->failed && !p->stopped && (got = xmlTextReaderRead(r)) == 1) {
		int type = xmlTextReaderNodeType(r);
		switch (type) {
		case XML_READER_TYPE_DOCUMENT_TYPE:
			fail_at(p, "Document", "a document type declaration is not accepted (no DTDs, no entities)");
			break;
		case XML_READER_TYPE_ENTITY_REFERENCE:
		case XML_READER_TYPE_ENTITY:
			fail_at(p, NULL, "entity references are not accepted");
			break;
		case XML_READER_TYPE_ELEMENT: {
			bool empty = xmlTextReaderIsEmptyElement(r) == 1;
			on_start(p, r);
			if (empty && !p->failed)
				on_end(p);
			break;
		}
		case XML_READER_TYPE_END_ELEMENT:
			on_end(p);
			break;
		case XML_READER_TYPE_TEXT:
		case XML_READER_TYPE_CDATA: {
			const char *v = (const char *)xmlTextReaderConstValue(r);
			on_text(p, v ? v : "");
			break;
		}
		default:
			break;
		}
		if (got != 1)
			break;
	}
	if (!p->failed && !p->stopped && got < 0)
		fail_at(p, NULL, "not well-formed XML");
	xmlFreeTextReader(r);
	if (p->failed || p->stopped)
		return !p->failed;
	if (p->nstmt == 0)
		fail_at(p, "Document/BkToCstmrStmt", "no statement (Stmt)");
	else if (!p->sum->account[0])
		fail_at(p, "Document/BkToCstmrStmt/Stmt[1]/Acct", "the statement names no account (Acct/Id)");
	else if (!p->have_close)
		fail_at(p, "Document/BkToCstmrStmt/Stmt[1]", "no closing balance (Bal with Cd CLBD)");
	return !p->failed;
}

bool camt053_parse(const char *data, size_t len, camt_line_cb cb, void *ctx, struct camt_summary *summary,
		   struct camt_error *err)
{
	memset(summary, 0, sizeof(*summary));
	memset(err, 0, sizeof(*err));
	struct camt_pass *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return false;
	}
	bool ok = false;
	p->sum = summary;
	p->err = err;
	if (!run_pass(p, data, len))
		goto done;
	/* The file as a whole is sound: hand its lines on. */
	struct camt_summary checked = *summary;
	memset(p, 0, sizeof(*p));
	memset(summary, 0, sizeof(*summary));
	p->sum = summary;
	p->err = err;
	p->emit = true;
	p->cb = cb;
	p->ctx = ctx;
	ok = run_pass(p, data, len);
	*summary = checked;
done:
	free(p);
	return ok;
}
