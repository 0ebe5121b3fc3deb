"""Staff roles over the API, tokens, the audit log and its chain, order search for portals."""
import csv
import io
import subprocess
import time
import uuid

import psycopg
import pytest
import requests

from bankflow import psql_superuser
from conftest import Api, order_body, unique_ref
from staffkit import audit_rows, console_login, new_staff, wait_ready
from test_ledger import cli_on, scratch_db  # noqa: F401  (the scratch database fixture)


@pytest.fixture
def tokens(stack):
    e = stack.env
    return {"agency": e["FEEGATE_AGENCY_TOKEN"], "finance": e["FEEGATE_FINANCE_TOKEN"],
            "admin": e["FEEGATE_ADMIN_TOKEN"], "auditor": e["FEEGATE_AUDITOR_TOKEN"],
            "portal": e["FEEGATE_API_KEY"], "none": None}


def call(gateway, method, path, key, body=None):
    h = {"Authorization": f"Bearer {key}"} if key else {}
    if body is not None:
        h["Content-Type"] = "application/json"
    return requests.request(method, gateway.url + path, headers=h, json=body, timeout=15)


def test_every_staff_route_under_the_role_matrix(gateway, stack, api, tokens):
    o = api.create(order_body(agency="XNC")).json()
    other = api.create(order_body(agency="DKKD")).json()
    nobody = str(uuid.uuid4())
    acct_xnc = stack.scalar("SELECT a.id FROM ledger_accounts a JOIN agencies g ON g.id = a.agency_id "
                            "WHERE g.code = 'XNC' LIMIT 1")
    V = {"agency": 200, "finance": 200, "admin": 403, "auditor": 200}   # PERM_VIEW
    M = {"agency": 403, "admin": 403, "auditor": 403}                   # money: finance only
    S = {"agency": 403, "finance": 403, "admin": 404, "auditor": 403}   # staff and tokens: admin only
    routes = [
        ("GET", "/v1/exceptions", None, V),
        ("GET", "/v1/ledger/accounts", None, V),
        ("GET", f"/v1/ledger/accounts/{acct_xnc}", None, V),
        ("GET", f"/v1/orders/{o['id']}/refunds", None, V),
        ("GET", f"/v1/orders/{other['id']}/refunds", None, dict(V, agency=404)),
        ("POST", f"/v1/orders/{o['id']}/refunds", {"amount": 1000, "reason": "thử"}, dict(M, finance=409)),
        ("POST", f"/v1/refunds/{nobody}/confirm", None, dict(M, finance=404)),
        ("GET", "/v1/audit", None, {"agency": 403, "finance": 403, "admin": 200, "auditor": 200}),
        ("GET", "/v1/staff", None, dict(S, admin=200)),
        ("POST", f"/v1/staff/{nobody}/disable", None, S),
        ("POST", f"/v1/staff/{nobody}/tokens", {"label": "x"}, S),
        ("POST", f"/v1/tokens/{nobody}/revoke", None, S),
    ]
    wrong = []
    for method, path, body, expect in routes:
        expect = dict(expect, portal=403, none=401)
        for who, key in tokens.items():
            r = call(gateway, method, path, key, body)
            if r.status_code != expect[who]:
                wrong.append(f"{who} {method} {path}: {r.status_code} (want {expect[who]}) {r.text[:120]}")
            if r.status_code in (401, 403, 404):
                assert r.json()["error"]["code"] in ("unauthorized", "forbidden", "not_found"), r.text
    assert not wrong, "\n".join(wrong)


def test_agency_staff_bound_to_two_agencies_sees_both(gateway, stack, api):
    s = new_staff(stack, "agency", agencies=("XNC", "DKKD"))
    one = new_staff(stack, "agency", agencies=("XNC",))
    o = api.create(order_body(agency="DKKD")).json()
    assert call(gateway, "GET", f"/v1/orders/{o['id']}/refunds", s["token"]).status_code == 200
    assert call(gateway, "GET", f"/v1/orders/{o['id']}/refunds", one["token"]).status_code == 404
    codes = {a["agency"] for a in call(gateway, "GET", "/v1/ledger/accounts", s["token"]).json()["data"]}
    assert codes == {"XNC", "DKKD"}, codes


def test_admin_makes_and_revokes_tokens_with_the_owners_role(gateway_factory, stack):
    gw = gateway_factory(FEEGATE_AUTH_CACHE_TTL_S=0)
    admin = stack.env["FEEGATE_ADMIN_TOKEN"]
    owner = new_staff(stack, "auditor")
    r = call(gw, "POST", f"/v1/staff/{owner['id']}/tokens", admin, {"label": "kịch bản đối soát"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["token"].startswith("fgs_") and made["staff_id"] == owner["id"]
    assert call(gw, "GET", "/v1/audit", made["token"]).status_code == 200       # auditor's role
    assert call(gw, "GET", "/v1/staff", made["token"]).status_code == 403
    listed = {s["id"]: s for s in call(gw, "GET", "/v1/staff", admin).json()["data"]}
    assert any(t["id"] == made["id"] for t in listed[owner["id"]]["tokens"])
    assert set(listed[owner["id"]]["tokens"][0]) == {"id", "label", "created_at"}  # never the token itself
    r = call(gw, "POST", f"/v1/tokens/{made['id']}/revoke", admin)
    assert r.status_code == 200, r.text
    assert call(gw, "GET", "/v1/audit", made["token"]).status_code == 401
    wait_ready(gw.url)
    sess, r = console_login(gw.url, owner["email"], owner["password"])
    assert r.status_code == 303 and sess.get(gw.url + "/console/audit", timeout=15).status_code == 200
    r = call(gw, "POST", f"/v1/staff/{owner['id']}/disable", admin)
    assert r.status_code == 200, r.text
    assert call(gw, "GET", "/v1/audit", owner["token"]).status_code == 401
    # disabling ends the member's console sessions too
    r = sess.get(gw.url + "/console/audit", allow_redirects=False, timeout=15)
    assert r.status_code == 303 and r.headers["Location"] == "/console/login"
    acts = {(a["action"], a["object"]) for a in audit_rows(gw.url, admin, limit=50)}
    assert ("token.create", made["id"]) in acts and ("token.revoke", made["id"]) in acts
    assert ("staff.disable", owner["id"]) in acts and ("staff.create", owner["id"]) in acts


def test_audit_api_filters_pages_and_csv(gateway, stack):
    auditor = stack.env["FEEGATE_AUDITOR_TOKEN"]
    s = new_staff(stack, "agency", agencies=("XNC",))
    for _ in range(3):
        console_login(gateway.url, s["email"], "sai-mat-khau-123")
    rows = audit_rows(gateway.url, auditor, actor=s["email"], action="login")
    assert [r["action"] for r in rows] == ["login.failed"] * 3, rows
    assert all(r["role"] == "agency" and r["outcome"] == "failed" and r["ip"] == "127.0.0.1" for r in rows)
    assert all(set(r) >= {"id", "at", "actor", "role", "action", "object", "outcome", "request_id", "ip"}
               for r in rows)
    page = requests.get(gateway.url + "/v1/audit", params={"actor": s["email"], "limit": 2},
                        headers={"Authorization": f"Bearer {auditor}"}, timeout=15).json()
    assert len(page["data"]) == 2 and page["next_cursor"]
    rest = requests.get(gateway.url + "/v1/audit", params={"actor": s["email"], "limit": 2,
                                                           "cursor": page["next_cursor"]},
                        headers={"Authorization": f"Bearer {auditor}"}, timeout=15).json()
    ids = [r["id"] for r in page["data"] + rest["data"]]
    assert len(ids) == len(set(ids)) == 3 and rest["next_cursor"] is None
    r = requests.get(gateway.url + "/v1/audit", params={"actor": s["email"], "format": "csv"},
                     headers={"Authorization": f"Bearer {auditor}"}, timeout=15)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert [t["action"] for t in table if t["action"].startswith("login")] == ["login.failed"] * 3
    bad = requests.get(gateway.url + "/v1/audit", params={"colour": "red"},
                       headers={"Authorization": f"Bearer {auditor}"}, timeout=15)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "colour"


def test_audit_log_refuses_update_delete_truncate(stack):
    stack.query("SELECT feegate_audit(NULL, 'test', '', 'logout', 'x', 'ok', '', '', '')")
    for sql in ("UPDATE audit_log SET outcome = 'denied'", "DELETE FROM audit_log", "TRUNCATE audit_log CASCADE"):
        with pytest.raises(psycopg.Error) as e:
            stack.query(sql)
        assert "append-only" in str(e.value)


def test_audit_verify_clean_then_catches_an_edited_row(stack, scratch_db):  # noqa: F811
    out = subprocess.run([stack.bin, "audit", "verify"], capture_output=True, text=True, timeout=120,
                         env={"DATABASE_URL": stack.database_url, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "audit verify: ok" in out.stdout
    cli_on(stack, scratch_db, "migrate")
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        for i in range(5):
            conn.execute("SELECT feegate_audit(NULL, %s, 'finance', 'refund.create', %s, 'ok', 'r', '127.0.0.1', 'ua')",
                         (f"f{i}@x.test", f"obj-{i}"))
        victim = conn.execute("SELECT id FROM audit_log WHERE object = 'obj-2'").fetchone()[0]
    assert "audit verify: ok, 5 rows chained" in cli_on(stack, scratch_db, "audit", "verify")
    name = scratch_db.rsplit("/", 1)[1].split("?")[0]
    r = psql_superuser(stack, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only; "
                              f"UPDATE audit_log SET object = 'another' WHERE id = {victim}; "
                              "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only", dbname=name)
    assert r.returncode == 0, r.stderr
    env = {"DATABASE_URL": scratch_db, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([stack.bin, "audit", "verify"], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode != 0
    assert f"audit row {victim} " in out.stdout and "changed" in out.stdout, out.stdout


def test_portal_order_search_filters_and_cursor(api, other_api):
    prefix = unique_ref("SRCH")
    made = []
    for i in range(3):
        body = order_body(agency="XNC", reference=f"{prefix}-{i}", payer={"name": f"Lê Thị Hoa {i}"})
        made.append(api.create(body).json()["id"])
    api.post(f"/v1/orders/{made[0]}/cancel")
    r = api.get("/v1/orders", params={"reference_prefix": prefix, "limit": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [o["id"] for o in page["data"]] == made[::-1][:2] and page["next_cursor"]
    rest = api.get("/v1/orders", params={"reference_prefix": prefix, "limit": 2, "cursor": page["next_cursor"]}).json()
    assert [o["id"] for o in rest["data"]] == [made[0]] and rest["next_cursor"] is None
    assert [o["id"] for o in api.get("/v1/orders", params={"reference_prefix": prefix, "status": "cancelled"})
            .json()["data"]] == [made[0]]
    assert [o["id"] for o in api.get("/v1/orders", params={"payer_name": "thị hoa 1"}).json()["data"]] == [made[1]]
    assert other_api.get("/v1/orders", params={"reference_prefix": prefix}).json()["data"] == []
    bad = api.get("/v1/orders", params={"status": "paid"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"


def test_sign_in_attempts_are_rate_limited_before_hashing(gateway_factory, stack):
    # per account; the per-address counter is shared by every gateway on this Redis (and every
    # test signs in from 127.0.0.1), so it is lifted here
    gw = gateway_factory(FEEGATE_LOGIN_RATE_PER_ACCOUNT=2, FEEGATE_LOGIN_RATE_PER_IP=100000)
    wait_ready(gw.url)
    s = new_staff(stack, "agency", agencies=("XNC",))
    if time.time() % 60 > 45:  # the counters are per clock minute: start well inside one
        time.sleep(61 - time.time() % 60)
    answers = [console_login(gw.url, s["email"], "sai-mat-khau-123")[1].status_code for _ in range(3)]
    assert answers == [200, 200, 429], answers
    r = console_login(gw.url, s["email"], s["password"])[1]
    assert r.status_code == 429 and r.headers.get("Retry-After")  # even the right password, unhashed
    acts = [a["action"] for a in audit_rows(gw.url, stack.env["FEEGATE_AUDITOR_TOKEN"], actor=s["email"])]
    assert acts.count("login.failed") == 2 and "login.ok" not in acts, acts
