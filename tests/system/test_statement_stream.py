"""POST /v1/statements takes bank files far above the API's 1 MiB body cap: the body streams to
the importer as it arrives (Content-Length or chunked), under its own cap
(FEEGATE_MAX_STATEMENT_BYTES, 413 above it); a refused file stores nothing."""
from bankflow import *
from conftest import Api

LINES = 40000  # about 2.5 MB


def big_vnpay_file(stack, bad_line=None):
    tmn = stack.env.get("FEEGATE_VNPAY_TMN_CODE", "X")
    out = [b"TmnCode,TransactionType,TxnRef,TransactionNo,RefundRequestId,RefundTransactionNo,Amount,Fee,PayDate\r\n"]
    for i in range(LINES):
        amount = b"10000x0" if bad_line == i + 2 else b"10000000"
        out.append(b"%s,01,ZZ%010d,%d,,,%s,0,20240501093512\r\n" % (tmn.encode(), i, 90000000 + i, amount))
    out.append(b"TOTAL,20240501,%d,%d\r\n" % (LINES, LINES * 100000))
    return b"".join(out)


def statements(stack):
    return stack.scalar("SELECT count(*) FROM statements")


def test_a_file_over_the_api_body_cap_streams_to_the_importer(finance, stack):
    before = statements(stack)
    body = big_vnpay_file(stack, bad_line=LINES)  # the last line but one is malformed
    assert len(body) > 2 * 1024 * 1024
    r = finance.post("/v1/statements?source=vnpay", data=body, headers={"Content-Type": "text/csv"}, timeout=120)
    assert r.status_code == 400, r.text[:300]
    err = r.json()["error"]
    assert (err["code"], err["field"]) == ("validation_failed", f"line {LINES}"), err
    assert statements(stack) == before


def test_a_chunked_upload_is_read_the_same_way(finance, stack):
    before = statements(stack)
    body = big_vnpay_file(stack, bad_line=7)

    def pieces():
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = finance.post("/v1/statements?source=vnpay", data=pieces(), headers={"Content-Type": "text/csv"}, timeout=120)
    assert r.status_code == 400, r.text[:300]
    assert r.json()["error"]["field"] == "line 7"
    assert statements(stack) == before


def test_a_file_over_the_statement_cap_is_413_and_stores_nothing(gateway_factory, stack):
    gw = gateway_factory(FEEGATE_MAX_STATEMENT_BYTES=str(2 * 1024 * 1024))
    finance = Api(gw.url, stack.env["FEEGATE_FINANCE_TOKEN"])
    before = statements(stack)
    r = finance.post("/v1/statements?source=vnpay", data=big_vnpay_file(stack), headers={"Content-Type": "text/csv"},
                     timeout=120)
    assert r.status_code == 413, r.text[:300]
    assert r.json()["error"]["code"] == "payload_too_large"
    assert statements(stack) == before
    finance.close()
