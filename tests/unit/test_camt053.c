/* ledger/camt053: the statement checked as a whole before its lines are handed on; batch
 * entries by their transaction details; element paths in errors; versions and namespaces;
 * no DTD, so no external entities and no entity expansion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ledger/camt053.h"

#define HEAD(ns) "<?xml version=\"1.0\"?><Document xmlns=\"" ns "\"><BkToCstmrStmt><Stmt>" \
	"<Acct><Id><Othr><Id>0011001234567</Id></Othr></Id></Acct>"
#define BAL(cd, amt) "<Bal><Tp><CdOrPrtry><Cd>" cd "</Cd></CdOrPrtry></Tp><Amt Ccy=\"VND\">" amt \
	"</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-12-02</Dt></Dt></Bal>"
#define TAIL "</Stmt></BkToCstmrStmt></Document>"
#define NS8 "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"

static const char good[] =
	HEAD(NS8) BAL("OPBD", "1000") BAL("CLBD", "301000")
	"<Ntry><Amt Ccy=\"VND\">100000</Amt><CdtDbtInd>CRDT</CdtDbtInd><AcctSvcrRef>FT1</AcctSvcrRef>"
	"<NtryDtls><TxDtls><RmtInf><Ustrd>FGPAYOUT VNPAY 20261201 XNC</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
	"<Ntry><Amt Ccy=\"VND\">200000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><AcctSvcrRef>B1</AcctSvcrRef><NtryDtls>"
	"<TxDtls><Refs><AcctSvcrRef>FT2</AcctSvcrRef></Refs><Amt Ccy=\"VND\">150000</Amt><RmtInf><Ustrd>Nop phi"
	"</Ustrd><Ustrd>ABC12345678X</Ustrd></RmtInf></TxDtls>"
	"<TxDtls><Refs><AcctSvcrRef>FT3</AcctSvcrRef></Refs><AmtDtls><TxAmt><Amt Ccy=\"VND\">50000</Amt></TxAmt>"
	"</AmtDtls></TxDtls></NtryDtls></Ntry>" TAIL;

struct seen {
	int n;
	struct camt_line lines[8];
};

static bool collect(void *ctx, const struct camt_line *l)
{
	struct seen *s = ctx;
	if (s->n < 8)
		s->lines[s->n] = *l;
	s->n++;
	return true;
}

static bool parse(const char *doc, struct seen *s, struct camt_summary *sum, struct camt_error *err)
{
	memset(s, 0, sizeof(*s));
	return camt053_parse(doc, strlen(doc), collect, s, sum, err);
}

static void test_good_statement(void **state)
{
	struct seen s;
	struct camt_summary sum;
	struct camt_error err;
	assert_true(parse(good, &s, &sum, &err));
	assert_string_equal(sum.account, "0011001234567");
	assert_string_equal(sum.business_date, "2026-12-02");
	assert_int_equal(sum.opening, 1000);
	assert_int_equal(sum.closing, 301000);
	assert_int_equal(sum.lines, 3);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.lines[0].amount, 100000);
	assert_string_equal(s.lines[0].ref, "FT1");
	assert_string_equal(s.lines[0].remittance, "FGPAYOUT VNPAY 20261201 XNC");
	/* a batch entry: one line per transaction detail, its own amount */
	assert_int_equal(s.lines[1].amount, 150000);
	assert_string_equal(s.lines[1].ref, "FT2");
	assert_string_equal(s.lines[1].remittance, "Nop phi ABC12345678X");
	assert_int_equal(s.lines[2].amount, 50000);
	assert_true(s.lines[2].credit);
}

static void test_unbalanced_names_the_closing_balance(void **state)
{
	static const char doc[] = HEAD(NS8) BAL("OPBD", "1000") BAL("CLBD", "2000")
		"<Ntry><Amt Ccy=\"VND\">500</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>" TAIL;
	struct seen s;
	struct camt_summary sum;
	struct camt_error err;
	assert_false(parse(doc, &s, &sum, &err));
	assert_string_equal(err.path, "Document/BkToCstmrStmt/Stmt[1]/Bal[2]");
	assert_non_null(strstr(err.message, "closing balance"));
	assert_int_equal(s.n, 0); /* nothing handed on */
}

static void test_bad_amount_and_batch_total(void **state)
{
	static const char doc[] = HEAD(NS8) BAL("OPBD", "0") BAL("CLBD", "10")
		"<Ntry><Amt Ccy=\"VND\">10</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>"
		"<Ntry><Amt Ccy=\"VND\">1.5</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>" TAIL;
	struct seen s;
	struct camt_summary sum;
	struct camt_error err;
	assert_false(parse(doc, &s, &sum, &err));
	assert_string_equal(err.path, "Document/BkToCstmrStmt/Stmt[1]/Ntry[2]/Amt[1]");
	static const char batch[] = HEAD(NS8) BAL("OPBD", "0") BAL("CLBD", "10")
		"<Ntry><Amt Ccy=\"VND\">10</Amt><CdtDbtInd>CRDT</CdtDbtInd><NtryDtls>"
		"<TxDtls><Amt Ccy=\"VND\">4</Amt></TxDtls><TxDtls><Amt Ccy=\"VND\">5</Amt></TxDtls></NtryDtls></Ntry>" TAIL;
	assert_false(parse(batch, &s, &sum, &err));
	assert_string_equal(err.path, "Document/BkToCstmrStmt/Stmt[1]/Ntry[1]");
	static const char usd[] = HEAD(NS8) "<Bal><Amt Ccy=\"USD\">1</Amt></Bal>" TAIL;
	assert_false(parse(usd, &s, &sum, &err));
	assert_non_null(strstr(err.message, "VND"));
}

static void test_versions_and_namespaces(void **state)
{
	char doc[2048];
	struct seen s;
	struct camt_summary sum;
	struct camt_error err;
	static const char *const ok_ns[] = {"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02",
					    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.13", ""};
	for (size_t i = 0; i < 3; i++) {
		snprintf(doc, sizeof doc, "<Document%s%s%s><BkToCstmrStmt><Stmt><Acct><Id><IBAN>VN1</IBAN></Id></Acct>"
			 BAL("OPBD", "5") BAL("CLBD", "5") TAIL,
			 *ok_ns[i] ? " xmlns=\"" : "", ok_ns[i], *ok_ns[i] ? "\"" : "");
		assert_true(parse(doc, &s, &sum, &err));
		assert_string_equal(sum.account, "VN1");
	}
	/* a prefixed namespace reads the same */
	assert_true(parse("<c:Document xmlns:c=\"" NS8 "\"><c:BkToCstmrStmt><c:Stmt><c:Acct><c:Id><c:IBAN>X</c:IBAN>"
			  "</c:Id></c:Acct><c:Bal><c:Tp><c:CdOrPrtry><c:Cd>OPBD</c:Cd></c:CdOrPrtry></c:Tp><c:Amt>0</c:Amt>"
			  "</c:Bal><c:Bal><c:Tp><c:CdOrPrtry><c:Cd>CLBD</c:Cd></c:CdOrPrtry></c:Tp><c:Amt>0</c:Amt>"
			  "<c:Dt><c:Dt>2026-12-02</c:Dt></c:Dt></c:Bal></c:Stmt></c:BkToCstmrStmt></c:Document>",
			  &s, &sum, &err));
	assert_false(parse("<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.14\"/>", &s, &sum, &err));
	assert_false(parse("<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.052.001.08\"/>", &s, &sum, &err));
	assert_false(parse("<Other/>", &s, &sum, &err));
}

static void test_no_dtd_no_entities(void **state)
{
	struct seen s;
	struct camt_summary sum;
	struct camt_error err;
	assert_false(parse("<?xml version=\"1.0\"?><!DOCTYPE Document [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
			   "<Document><BkToCstmrStmt><Stmt><Acct><Id><IBAN>&x;</IBAN></Id></Acct></Stmt>"
			   "</BkToCstmrStmt></Document>", &s, &sum, &err));
	assert_string_equal(err.path, "Document");
	assert_null(strstr(sum.account, "root"));
	assert_false(parse("<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>"
			   "<Document>&b;</Document>", &s, &sum, &err));
	assert_false(parse("<Document><BkToCstmrStmt>", &s, &sum, &err));
	assert_non_null(strstr(err.message, "well-formed"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_statement),
		cmocka_unit_test(test_unbalanced_names_the_closing_balance),
		cmocka_unit_test(test_bad_amount_and_batch_total),
		cmocka_unit_test(test_versions_and_namespaces),
		cmocka_unit_test(test_no_dtd_no_entities),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
