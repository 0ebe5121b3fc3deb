"""Reports (issue 12): the agency collections view and the settlement report in CSV, JSON and
XLSX, for payments and refunds made through the real stack (banksim). Each module run makes an
agency of its own, so its totals are exactly its own payments whatever else the database holds.
Also: every bad parameter, the 31-day limit, who may read what, and streamed exports read
slowly or left midway."""
import csv
import io
import os
import socket
import subprocess
import time
import uuid

import urllib.parse

import openpyxl
import psycopg
import pytest
import requests

from bankflow import *
from conftest import REPO

PAYER_ID = "079203001234"
FORMULA_REF_HEAD = '=HYPERLINK("http://evil.example","x")'
FIELDS_TOTAL = {"date", "agency", "bank", "count", "gross", "refunds", "fees", "net", "cases_open", "payout"}


def new_agency(stack, prefix="R"):
    code = prefix + uuid.uuid4().hex[:8].upper()
    number = str(uuid.uuid4().int)[:12]
    stack.cli("agency", "create", "--code", code, "--name", f"Sở Tài chính {code}",
              "--account", f"970436:{number}:SO TAI CHINH")
    return code


class Rpt:
    """An agency of this module's own, with a portal client, agency staff, and what was paid."""


@pytest.fixture(scope="module")
def rpt(stack, gateway, banksim):
    r = Rpt()
    r.code = new_agency(stack)
    r.client = stack.create_client(agencies=(r.code,))
    r.portal = Api(gateway.url, r.client.key)
    r.staff = Api(gateway.url, stack.create_staff("agency", agency=r.code))
    r.finance = Api(gateway.url, stack.env["FEEGATE_FINANCE_TOKEN"])
    stack.cli("agency", "budget-codes", "--code", r.code, "--chapter", "418", "--ndkt", "2662", "--dbhc", "79")
    stack.cli("agency", "budget-codes", "--code", r.code, "--procedure", "PP-02", "--chapter", "418",
              "--ndkt", "2663", "--dbhc", "26734")
    banksim.reset_faults()
    banksim.config(banksim.feegate_url)
    r.formula_ref = FORMULA_REF_HEAD + uuid.uuid4().hex[:8]
    r.orders = []
    o, _ = pay_order(r.portal, banksim, "vnpay", agency=r.code, reference=r.formula_ref, amount=200000,
                     procedure="PP-01", payer={"name": "Nguyễn Thị Hồng Nhung", "id_number": PAYER_ID},
                     metadata={"ho_so": "HS-2026-0001", "kenh": "web"})
    r.orders.append(o)
    o, _ = pay_order(r.portal, banksim, "momo", agency=r.code, amount=350000, procedure="PP-02",
                     payer={"name": "Trần Văn Đức"}, metadata={"ho_so": "HS-2026-0002", "uu_tien": True})
    r.orders.append(o)
    o, _ = pay_order(r.portal, banksim, "vnpay", agency=r.code, amount=120000)
    r.orders.append(o)
    # a partial refund of the first payment, confirmed by the bank
    resp = r.finance.post(f"/v1/orders/{r.orders[0]['id']}/refunds",
                          data=to_json_bytes({"amount": 50000, "reason": "Nộp thừa"}),
                          headers={"Content-Type": "application/json"}, timeout=30)
    assert resp.status_code == 201, resp.text
    wait_until(lambda: get_order(r.portal, r.orders[0]["id"])["status"] == "partially_refunded",
               what="the refund confirmed")
    days = [d for (d,) in stack.query(
        "SELECT DISTINCT business_date::text FROM reconciliation_payments rp JOIN attempts a ON a.id = rp.attempt_id "
        "JOIN orders o ON o.id = a.order_id JOIN agencies g ON g.id = o.agency_id WHERE g.code = %s "
        "UNION SELECT feegate_business_date(r.updated_at)::text FROM refunds r JOIN orders o ON o.id = r.order_id "
        "JOIN agencies g ON g.id = o.agency_id WHERE g.code = %s AND r.status = 'succeeded' ORDER BY 1",
        (r.code, r.code))]
    r.first, r.last = days[0], days[-1]
    r.range = f"from={r.first}&to={r.last}"
    yield r
    for a in (r.portal, r.staff, r.finance):
        a.close()


def ledger_sums(stack, code):
    return stack.query(
        "SELECT coalesce(sum(t.amount) FILTER (WHERE t.code = 'payment'), 0), "
        "       coalesce(sum(t.amount) FILTER (WHERE t.code = 'refund'), 0), "
        "       count(*) FILTER (WHERE t.code = 'payment') "
        "FROM ledger_transfers t JOIN orders o ON o.id = t.order_id JOIN agencies g ON g.id = o.agency_id "
        "WHERE g.code = %s", (code,))[0]


def settlement(api, query, **kw):
    return api.get(f"/v1/reports/settlement?{query}", timeout=60, **kw)


# ------------------------------------------------------------------------------ JSON, totals

def test_report_totals_equal_the_ledger(rpt, stack):
    r = settlement(rpt.finance, f"{rpt.range}&agency={rpt.code}")
    assert r.status_code == 200, r.text
    doc = r.json()
    gross, refunds, count = ledger_sums(stack, rpt.code)
    assert (gross, refunds, count) == (670000, 50000, 3)
    totals = doc["totals"]
    assert {t["agency"] for t in totals} == {rpt.code}
    assert sum(t["gross"] for t in totals) == gross
    assert sum(t["refunds"] for t in totals) == refunds
    assert sum(t["count"] for t in totals) == count
    for t in totals:
        assert t["net"] == t["gross"] - t["refunds"] - t["fees"]
    by_bank = {}
    for t in totals:
        by_bank[t["bank"]] = by_bank.get(t["bank"], 0) + t["gross"]
    assert by_bank == {"vnpay": 320000, "momo": 350000}
    lines = doc["lines"]
    assert sorted(l["amount"] for l in lines) == [-50000, 120000, 200000, 350000]
    assert sum(l["amount"] for l in lines) == gross - refunds
    assert all(l["net"] == l["amount"] - l["fee"] for l in lines)


def test_report_json_shape(rpt):
    r = settlement(rpt.finance, f"{rpt.range}&agency={rpt.code}&format=json")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="settlement_')
    doc = r.json()
    assert set(doc) >= {"from", "to", "totals", "lines"}
    assert (doc["from"], doc["to"]) == (rpt.first, rpt.last)
    for t in doc["totals"]:
        assert set(t) == FIELDS_TOTAL
        assert all(isinstance(t[k], int) for k in ("count", "gross", "refunds", "fees", "net", "cases_open"))
        assert t["payout"] is None  # no treasury statement imported
    pay = next(l for l in doc["lines"] if l["reference"] == rpt.formula_ref and l["kind"] == "payment")
    assert pay["payer_name"] == "Nguyễn Thị Hồng Nhung"
    assert pay["payer_id_last4"] == PAYER_ID[-4:]
    assert PAYER_ID not in r.text
    assert pay["bank"] == "vnpay" and pay["bank_txn_id"]
    assert pay["procedure"] == "PP-01" and pay["reconciliation"] == "pending"
    assert pay["local_time"].endswith("+07:00")
    assert pay["budget_codes"] == {"chapter": "418", "ndkt": "2662", "dbhc": "79"}
    assert pay["metadata"] == {"ho_so": "HS-2026-0001", "kenh": "web"}
    momo = next(l for l in doc["lines"] if l["bank"] == "momo")
    assert momo["budget_codes"] == {"chapter": "418", "ndkt": "2663", "dbhc": "26734"}  # the procedure's own
    refund = next(l for l in doc["lines"] if l["kind"] == "refund")
    assert refund["amount"] == -50000 and refund["order_id"] == rpt.orders[0]["id"]


def test_report_for_a_day_and_bank(rpt):
    r = settlement(rpt.finance, f"date={rpt.last}&agency={rpt.code}&bank=momo")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert {t["bank"] for t in doc["totals"]} <= {"momo"}
    assert all(l["bank"] == "momo" for l in doc["lines"])


# ------------------------------------------------------------------------------ CSV

def test_csv_read_back_intact_and_inert(rpt):
    r = settlement(rpt.finance, f"{rpt.range}&agency={rpt.code}&format=csv")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"] == (
        f'attachment; filename="settlement_{rpt.first}_{rpt.last}_{rpt.code}.csv"')
    body = r.content
    assert body.startswith(b"\xef\xbb\xbf")
    # every record ends with CRLF and no bare LF exists outside quoted cells (none hold one here)
    assert body.endswith(b"\r\n") and body.count(b"\n") == body.count(b"\r\n")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    header = body.decode("utf-8-sig").split("\r\n", 1)[0].split(",")
    assert header[:4] == ["record", "business_date", "agency", "bank"]
    assert "local_time_asia_ho_chi_minh" in header
    assert "meta.ho_so" in header and "meta.kenh" in header and "meta.uu_tien" in header
    totals = [x for x in rows if x["record"] == "total"]
    lines = [x for x in rows if x["record"] in ("payment", "refund")]
    assert len(lines) == 4 and len(totals) >= 2
    assert sum(int(x["gross"]) for x in totals) == 670000
    assert sum(int(x["refunds"]) for x in totals) == 50000
    pay = next(x for x in lines if x["record"] == "payment" and x["payer_name"].startswith("Nguyễn"))
    assert pay["payer_name"] == "Nguyễn Thị Hồng Nhung"
    # the formula-looking reference comes back whole, behind a ' so no spreadsheet runs it
    assert pay["reference"] == "'" + rpt.formula_ref
    assert pay["amount"] == "200000" and pay["payer_id_last4"] == PAYER_ID[-4:]
    assert pay["budget_chapter"] == "418" and pay["budget_ndkt"] == "2662" and pay["budget_dbhc"] == "79"
    assert pay["meta.ho_so"] == "HS-2026-0001" and pay["meta.kenh"] == "web"
    assert pay["local_time_asia_ho_chi_minh"].endswith("+07:00")
    momo = next(x for x in lines if x["bank"] == "momo")
    assert momo["meta.uu_tien"] == "true"
    refund = next(x for x in lines if x["record"] == "refund")
    assert refund["amount"] == "-50000" and refund["net"] == "-50000"
    # integers plain: no separators, no quotes
    for x in lines:
        int(x["amount"]), int(x["fee"]), int(x["net"])
    assert PAYER_ID.encode() not in body


# ------------------------------------------------------------------------------ XLSX

def test_xlsx_read_back_with_numbers_as_numbers(rpt, tmp_path):
    r = settlement(rpt.finance, f"{rpt.range}&agency={rpt.code}&format=xlsx")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert r.headers["Content-Disposition"].endswith('.xlsx"')
    path = tmp_path / "r.xlsx"
    path.write_bytes(r.content)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Totals", "Lines"]
    tot, lines = wb["Totals"], wb["Lines"]
    assert tot.freeze_panes == "A2" and lines.freeze_panes == "A2"
    th = [c.value for c in tot[1]]
    assert th[:4] == ["business_date", "agency", "bank", "count"]
    trows = [dict(zip(th, [c.value for c in row])) for row in tot.iter_rows(min_row=2)]
    assert sum(t["gross"] for t in trows) == 670000
    assert all(isinstance(t["gross"], (int, float)) and not isinstance(t["gross"], bool) for t in trows)
    lh = [c.value for c in lines[1]]
    cells = list(lines.iter_rows(min_row=2))
    amounts = sorted(row[lh.index("amount")].value for row in cells)
    assert amounts == [-50000, 120000, 200000, 350000]
    for row in cells:
        assert row[lh.index("amount")].data_type == "n"
        assert row[lh.index("net")].data_type == "n"
    names = {row[lh.index("payer_name")].value for row in cells}
    assert "Nguyễn Thị Hồng Nhung" in names
    assert "meta.ho_so" in lh


# ------------------------------------------------------------------------------ the command line

def test_cli_report_matches_the_route(rpt, stack, tmp_path):
    out = tmp_path / "r.csv"
    last = stack.cli("report", "settlement", "--date", rpt.last, "--agency", rpt.code, "--format", "csv",
                     "--out", str(out)).strip().splitlines()[-1]
    assert last == str(out)
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"), newline="")))
    http = settlement(rpt.finance, f"date={rpt.last}&agency={rpt.code}&format=csv")
    assert rows == list(csv.DictReader(io.StringIO(http.content.decode("utf-8-sig"), newline="")))
    env = dict(os.environ, DATABASE_URL=stack.database_url)
    bad = subprocess.run([stack.bin, "report", "settlement", "--from", rpt.last, "--format", "csv"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "--to" in bad.stderr


# ------------------------------------------------------------------------------ parameters

DAY = "2026-03-10"


@pytest.mark.parametrize("query,field", [
    ("", "date"),
    ("date=2026-02-30", "date"),
    ("date=10/03/2026", "date"),
    (f"from={DAY}", "to"),
    (f"to={DAY}", "from"),
    (f"date={DAY}&from={DAY}", "from"),
    ("from=2026-03-10&to=2026-03-09", "to"),
    ("from=2026-03-01&to=2026-04-01", "to"),  # 32 days
    (f"date={DAY}&bank=paypal", "bank"),
    (f"date={DAY}&format=pdf", "format"),
    (f"date={DAY}&agency=bad-code", "agency"),
    (f"date={DAY}&colour=red", "colour"),
    (f"date={DAY}&date={DAY}", "date"),
])
def test_settlement_bad_parameters(finance, query, field):
    r = settlement(finance, query)
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert err["code"] == "validation_failed" and err["field"] == field


def test_settlement_31_days_is_the_limit(finance):
    r = settlement(finance, "from=2026-03-01&to=2026-03-31")
    assert r.status_code == 200, r.text
    assert r.json()["totals"] == [] and r.json()["lines"] == []


@pytest.mark.parametrize("query,field", [
    ("", "from"),
    (f"from={DAY}", "to"),
    (f"from={DAY}&to=2026-03-01", "to"),
    (f"from={DAY}&to={DAY}&status=lost", "status"),
    (f"from={DAY}&to={DAY}&bank=paypal", "bank"),
    (f"from={DAY}&to={DAY}&limit=0", "limit"),
    (f"from={DAY}&to={DAY}&limit=501", "limit"),
    (f"from={DAY}&to={DAY}&cursor=nonsense", "cursor"),
    (f"from={DAY}&to={DAY}&page=2", "page"),
])
def test_collections_bad_parameters(rpt, query, field):
    r = rpt.finance.get(f"/v1/agencies/{rpt.code}/collections?{query}")
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert err["code"] == "validation_failed" and err["field"] == field


# ------------------------------------------------------------------------------ collections

def test_collections_view(rpt, stack):
    r = rpt.staff.get(f"/v1/agencies/{rpt.code}/collections?{rpt.range}")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert set(doc) == {"data", "totals", "next_cursor"} and doc["next_cursor"] is None
    assert sorted(d["order_id"] for d in doc["data"]) == sorted(o["id"] for o in rpt.orders)
    for d in doc["data"]:
        assert set(d) == {"order_id", "reference", "amount", "bank", "bank_txn_id", "paid_at", "business_date",
                          "reconciliation", "refunded"}
        assert d["reconciliation"] == "pending"
    refunded = {d["order_id"]: d["refunded"] for d in doc["data"]}
    assert refunded[rpt.orders[0]["id"]] == 50000 and refunded[rpt.orders[1]["id"]] == 0
    paid = [d["paid_at"] for d in doc["data"]]
    assert paid == sorted(paid, reverse=True)
    gross, refunds, count = ledger_sums(stack, rpt.code)
    assert sum(t["gross"] for t in doc["totals"]) == gross
    assert sum(t["refunds"] for t in doc["totals"]) == refunds
    assert sum(t["count"] for t in doc["totals"]) == count
    assert all(set(t) == {"date", "count", "gross", "refunds", "fees", "net"} for t in doc["totals"])


def test_collections_pages_with_a_cursor(rpt):
    seen, cursor = [], None
    for _ in range(5):
        q = f"{rpt.range}&limit=1" + (f"&cursor={cursor}" if cursor else "")
        r = rpt.finance.get(f"/v1/agencies/{rpt.code}/collections?{q}")
        assert r.status_code == 200, r.text
        doc = r.json()
        assert len(doc["data"]) == 1
        seen.append(doc["data"][0]["order_id"])
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(o["id"] for o in rpt.orders)
    r = rpt.finance.get(f"/v1/agencies/{rpt.code}/collections?{rpt.range}&bank=momo")
    assert [d["bank"] for d in r.json()["data"]] == ["momo"]
    r = rpt.finance.get(f"/v1/agencies/{rpt.code}/collections?{rpt.range}&status=matched")
    assert r.json()["data"] == []


# ------------------------------------------------------------------------------ who may read what

def test_cross_agency_matrix(rpt, stack, gateway):
    other_staff = Api(gateway.url, stack.env["FEEGATE_AGENCY_TOKEN"])  # agency 1's staff
    portal = Api(gateway.url, stack.env["FEEGATE_API_KEY"])
    try:
        coll = f"/v1/agencies/{rpt.code}/collections?{rpt.range}"
        rep = f"/v1/reports/settlement?{rpt.range}&agency={rpt.code}"
        # another agency's staff: 404 on both routes, as for an agency that does not exist
        for path in (coll, rep):
            r = other_staff.get(path, timeout=60)
            assert r.status_code == 404, (path, r.text)
            assert error_of(r)["code"] == "not_found"
        r = other_staff.get(f"/v1/agencies/NOSUCH9/collections?{rpt.range}")
        assert r.status_code == 404
        # a portal key: 403 on both, even for an agency it may bill
        for path in (coll, rep):
            r = rpt.portal.get(path, timeout=60)
            assert r.status_code == 403, (path, r.text)
            assert error_of(r)["code"] == "forbidden"
            assert portal.get(path, timeout=60).status_code == 403
        # the agency's own staff and finance: 200
        for who in (rpt.staff, rpt.finance):
            for path in (coll, rep):
                r = who.get(path, timeout=60)
                assert r.status_code == 200, (path, r.text)
        # agency staff without agency= get their own agency only
        doc = settlement(rpt.staff, rpt.range).json()
        assert {l["agency"] for l in doc["lines"]} == {rpt.code}
        assert {t["agency"] for t in doc["totals"]} == {rpt.code}
        doc = settlement(other_staff, rpt.range).json()
        assert rpt.code not in {l["agency"] for l in doc["lines"]}
        # finance sees every agency
        doc = settlement(rpt.finance, rpt.range).json()
        assert rpt.code in {t["agency"] for t in doc["totals"]}
    finally:
        other_staff.close()
        portal.close()


# ------------------------------------------------------------------------------ big streamed exports

BIG_ROWS = 20000


def cli_on(stack, url, *args):
    env = dict(os.environ, DATABASE_URL=url, FEEGATE_MIGRATIONS=str(REPO / "migrations"))
    r = subprocess.run([stack.bin, *args], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, f"feegate {' '.join(args)}: {r.stdout}{r.stderr}"
    return r.stdout


class Big:
    """A scratch database with BIG_ROWS payments of one agency, and a gateway of its own on it.
    The rows are written straight into orders and attempts (the report reads those, not the
    ledger), so the shared database and its `feegate ledger check` stay as small as they were."""


@pytest.fixture(scope="module")
def big(stack):
    name = "feegate_reports_" + uuid.uuid4().hex[:10]
    r = psql_superuser(stack, f"CREATE DATABASE {name} OWNER feegate", dbname="postgres")
    assert r.returncode == 0, r.stderr
    u = urllib.parse.urlsplit(stack.database_url)
    url = urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))
    try:
        cli_on(stack, url, "migrate")
        b = Big()
        b.url = url
        b.code = "BIG"
        cli_on(stack, url, "agency", "create", "--code", b.code, "--name", "Sở Tư pháp",
               "--account", "970436:0099887766:SO TU PHAP")
        out = cli_on(stack, url, "client", "create", "--name", "Big portal", "--agency", b.code)
        client_id = [l.split(": ", 1)[1] for l in out.splitlines() if l.startswith("client_id: ")][0]
        b.token = cli_on(stack, url, "staff", "create", "--name", "Kế toán", "--role", "finance").strip().splitlines()[-1].split(": ", 1)[-1]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "WITH o AS (INSERT INTO orders (id, client_id, agency_id, reference, description, amount, status, "
                "return_url, checkout_token, created_at, updated_at, expires_at, payer, metadata) "
                "SELECT gen_random_uuid(), %(client)s::uuid, (SELECT id FROM agencies WHERE code = %(code)s), "
                "'BIG-' || g, 'Lệ phí', 1000 + g, 'succeeded', 'https://portal.example/return', md5('big' || g), "
                "now(), now(), now() + interval '1 day', json_build_object('name', 'Lê Thị Mai ' || g), "
                "json_build_object('lo', g %% 7) FROM generate_series(1, %(n)s) g RETURNING id, reference, amount) "
                "INSERT INTO attempts (id, order_id, bank, bank_order_ref, amount, status, bank_txn_id, paid_at) "
                "SELECT gen_random_uuid(), o.id, 'vnpay', 'BG' || lpad(substr(o.reference, 5), 10, '0'), o.amount, "
                "'succeeded', 'BT' || substr(o.reference, 5), "
                "feegate_business_day_start(DATE '2026-01-15') + substr(o.reference, 5)::int * interval '1 second' "
                "FROM o", {"client": client_id, "code": b.code, "n": BIG_ROWS})
            conn.execute("ANALYZE orders")
            conn.execute("ANALYZE attempts")
        b.query = f"date=2026-01-15&agency={b.code}"
        with dedicated_gateway(stack, DATABASE_URL=url) as gw:
            b.gateway = gw
            yield b
    finally:
        r = psql_superuser(stack, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", dbname="postgres")
        assert r.returncode == 0, r.stderr


def raw_get(gateway, token, path):
    """A socket with a small receive buffer sending one GET: the test decides how fast to read."""
    host, port = gateway.url.split("//", 1)[1].split(":")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
              f"Connection: close\r\n\r\n".encode())
    return s


def dechunk(raw):
    head, body = raw.split(b"\r\n\r\n", 1)
    out = bytearray()
    while True:
        size_line, rest = body.split(b"\r\n", 1)
        n = int(size_line, 16)
        if n == 0:
            return head, bytes(out)
        out += rest[:n]
        assert rest[n:n + 2] == b"\r\n"
        body = rest[n + 2:]


def exports_connected(big):
    with psycopg.connect(big.url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'feegate-export' "
                            "AND datname = current_database()").fetchone()[0]


def test_slow_reader_gets_everything_in_order(big):
    s = raw_get(big.gateway, big.token, f"/v1/reports/settlement?{big.query}&format=csv")
    raw = bytearray()
    s.settimeout(60)
    while True:
        b = s.recv(8192)
        if not b:
            break
        raw += b
        if len(raw) < 2_000_000:
            time.sleep(0.002)  # slower than the gateway writes: its output backs up
    s.close()
    head, body = dechunk(bytes(raw))
    assert head.startswith(b"HTTP/1.1 200")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    lines = [r for r in rows if r["record"] == "payment"]
    assert len(lines) == BIG_ROWS
    assert sum(int(r["amount"]) for r in lines) == sum(1000 + g for g in range(1, BIG_ROWS + 1))
    stamps = [r["local_time_asia_ho_chi_minh"] for r in lines]
    assert stamps == sorted(stamps)
    assert {r["meta.lo"] for r in lines} == {str(i) for i in range(7)}


def test_client_leaving_midway_stops_the_export(big):
    before = big.gateway.log_path.stat().st_size
    s = raw_get(big.gateway, big.token, f"/v1/reports/settlement?{big.query}&format=csv")
    got = b""
    s.settimeout(60)
    while len(got) < 64 * 1024:
        b = s.recv(8192)
        assert b, "the reply ended before the client left"
        got += b
    assert got.startswith(b"HTTP/1.1 200")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
    s.close()
    # the export thread stops and gives its database connection back
    wait_until(lambda: exports_connected(big) == 0, timeout=60, what="the export's connection to close")
    wait_until(lambda: b"the client left before the end" in log_since(big.gateway.log_path, before), timeout=60,
               what="the gateway to log the stopped export")
    # and the gateway is healthy: the same export again, complete
    r = requests.get(f"{big.gateway.url}/healthz", timeout=10)
    assert r.status_code == 200
    r = requests.get(f"{big.gateway.url}/v1/reports/settlement?{big.query}&format=json",
                     headers={"Authorization": f"Bearer {big.token}"}, timeout=120)
    assert r.status_code == 200 and len(r.json()["lines"]) == BIG_ROWS


def log_since(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read()
