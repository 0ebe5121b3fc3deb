"""Signed e-receipts (issue 14): numbered after the success, signed, served as JSON, HTML and
PDF, verified offline by `feegate receipt verify` (a tampered one fails), 200 concurrent
payments numbered exactly 1..200, one receipt when a payment is applied more than once,
refund adjustments (partial, then the cancelling full refund), key rotation, backfill and the
day's export."""
import json
import os
import re
import subprocess
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from bankflow import *
from test_refunds import refund

ITEMS = [{"code": "PP-01", "name": "Lệ phí cấp hộ chiếu", "amount": 200000},
         {"code": "PP-02", "name": "Phí chuyển phát nhanh", "amount": 21300000}]


def receipt_of(api, order_id, timeout=5):
    """The order's receipt; it must be served within 5 s of the success (docs/openapi.yaml)."""
    box = {}

    def ready():
        r = api.get(f"/v1/orders/{order_id}/receipt")
        assert r.status_code in (200, 404), r.text
        box["r"] = r
        return r.status_code == 200

    wait_until(ready, timeout, interval=0.05, what=f"the receipt of order {order_id}")
    return box["r"].json()


def cli(stack, *args, env=None):
    e = dict(os.environ, **stack.env)
    if env:
        e.update(env)
    return subprocess.run([stack.bin, *args], capture_output=True, text=True, timeout=60, env=e)


def write_json(obj):
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    return path


def canonical(receipt):
    signed = {k: v for k, v in receipt.items() if k not in ("signature", "url", "pdf_url", "adjustments")}
    return json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_receipt_fields_signature_pages_and_verify(api, other_api, sim, stack, gateway):
    payer = {"name": "Nguyễn Thị Hồng Nhung", "id_number": "079123456789"}
    o, started = pay_order(api, sim, "vnpay", amount=21500000, items=ITEMS, payer=payer, procedure="1.001234")
    rc = receipt_of(api, o["id"])
    assert rc["amount"] == 21500000
    assert rc["amount_in_words"] == "Hai mươi mốt triệu năm trăm nghìn đồng"
    assert rc["agency"] == {"code": "XNC", "name": "Cục Quản lý Xuất nhập cảnh", "tax_code": "0100100079"}
    assert rc["payer_name"] == payer["name"]
    assert [(i["name"], i["amount"]) for i in rc["items"]] == [(i["name"], i["amount"]) for i in ITEMS]
    assert rc["procedure"] == "1.001234" and rc["reference"] == o["reference"]
    assert rc["bank"] == "vnpay" and rc["bank_txn_id"] == attempt_of(get_order(api, o["id"]), started["ref"])["bank_txn_id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", rc["paid_at"]), rc["paid_at"]
    assert rc["number"] >= 1 and rc["template"] and rc["series"] and rc["adjustments"] == []
    assert rc["url"] == f"{gateway.url}/receipts/{rc['code']}" and rc["pdf_url"] == rc["url"] + ".pdf"
    assert "079123456789" not in json.dumps(rc)
    # the order (and so its webhook) carries the receipt's URL
    assert get_order(api, o["id"])["receipt_url"] == rc["url"]
    w = wait_webhook(sim, o["id"], "order.succeeded")
    assert json.loads(w["body"])["data"]["receipt_url"] == rc["url"]

    # the signature is Ed25519 over the canonical form, with a published key
    keys = requests.get(gateway.url + "/.well-known/feegate-receipt-keys", timeout=5).json()["keys"]
    key = [k for k in keys if k["key_id"] == rc["key_id"]]
    assert len(key) == 1 and key[0]["alg"] == "Ed25519", keys
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    import base64

    def b64(s):
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    Ed25519PublicKey.from_public_bytes(b64(key[0]["public_key"])).verify(b64(rc["signature"]),
                                                                          canonical(rc).encode())

    # no key: 401; another client: 404
    assert api.get(f"/v1/orders/{o['id']}/receipt", key=None).status_code == 401
    assert other_api.get(f"/v1/orders/{o['id']}/receipt").status_code == 404

    # the public page: valid, no identity number, QR to itself
    page = requests.get(rc["url"], timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.text
    assert 'data-valid="true"' in text and "Hai mươi mốt triệu năm trăm nghìn đồng" in text
    assert payer["name"] in text and "079123456789" not in text
    assert f'data-url="{rc["url"]}"' in text and "<svg" in text
    assert "style=" not in text and "<script>" not in text
    assert requests.get(gateway.url + "/receipts/R" + "0" * 24, timeout=5).status_code == 404

    # verify: the JSON, the published keys by URL, the PDF; a tampered copy fails
    path = write_json(rc)
    assert cli(stack, "receipt", "verify", path).returncode == 0
    r = cli(stack, "receipt", "verify", path, "--keys", gateway.url + "/.well-known/feegate-receipt-keys")
    assert r.returncode == 0, r.stdout + r.stderr
    for field, value in (("amount", 21500001), ("payer_name", "Người khác"), ("number", rc["number"] + 1)):
        bad = write_json(dict(rc, **{field: value}))
        r = cli(stack, "receipt", "verify", bad)
        assert r.returncode != 0 and "invalid" in r.stdout, (field, r.stdout)
        os.unlink(bad)
    os.unlink(path)

    pdf = requests.get(rc["pdf_url"], timeout=20)
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf" and pdf.content[:4] == b"%PDF"
    out_dir = Path(os.environ.get("FEEGATE_STACK_DIR", tempfile.gettempdir()))
    pdf_path = out_dir / f"receipt-{rc['code']}.pdf"
    pdf_path.write_bytes(pdf.content)
    txt = subprocess.run(["pdftotext", "-layout", str(pdf_path), "-"], capture_output=True, text=True, timeout=30).stdout
    for expected in ("BIÊN LAI THU PHÍ, LỆ PHÍ", "Cục Quản lý Xuất nhập cảnh", "Mã số thuế: 0100100079",
                     "Người nộp: Nguyễn Thị Hồng Nhung", "Bằng chữ: Hai mươi mốt triệu năm trăm nghìn đồng",
                     "Lệ phí cấp hộ chiếu", "21.500.000 ₫", f"Số: {rc['number']:07d}", "Chữ ký số hợp lệ"):
        assert expected in txt, (expected, txt)
    assert "079123456789" not in txt
    r = cli(stack, "receipt", "verify", str(pdf_path))
    assert r.returncode == 0, r.stdout + r.stderr
    tampered = bytearray(pdf.content)
    i = tampered.find(b"feegate-receipt:") + len(b"feegate-receipt:") + 40
    tampered[i] = ord("A") if tampered[i] != ord("A") else ord("B")
    bad_pdf = out_dir / "tampered.pdf"
    bad_pdf.write_bytes(bytes(tampered))
    assert cli(stack, "receipt", "verify", str(bad_pdf)).returncode != 0


def test_404_until_succeeded(api, gateway):
    o = new_order(api)
    r = api.get(f"/v1/orders/{o['id']}/receipt")
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    assert "receipt_url" not in get_order(api, o["id"])
    assert api.get("/v1/orders/not-a-uuid/receipt").status_code == 404


def new_agency(stack, code):
    r = cli(stack, "agency", "create", "--code", code, "--name", f"Sở thử nghiệm {code}",
            "--account", "970436:99887766:SO THU NGHIEM", "--banks", "vietqr", "--tax-code", "0312345678")
    assert r.returncode == 0, r.stderr
    r = cli(stack, "agency", "receipts", "--code", code, "--template", "01BLP0-001", "--series", "BL26T")
    assert r.returncode == 0, r.stderr


def test_200_concurrent_payments_numbered_1_to_200(stack, sim, gateway):
    code = "RC" + uuid.uuid4().hex[:8].upper()
    new_agency(stack, code)
    client = stack.create_client(agencies=(code,))
    api = Api(gateway.url, client.key)
    try:
        orders = [new_order(api, agency=code, amount=10000 + i) for i in range(200)]
        with ThreadPoolExecutor(16) as pool:
            started = list(pool.map(lambda o: start_payment(sim, o, "vietqr"), orders))
            list(pool.map(lambda p: approve(sim, p[1], p[0]), zip(orders, started)))
        for o in orders:
            wait_status(api, o["id"], "succeeded", timeout=30)
        wait_until(lambda: stack.scalar(
            "SELECT count(*) FROM receipts r JOIN receipt_series s ON s.id = r.series_id JOIN agencies a "
            "ON a.id = s.agency_id WHERE a.code = %s AND r.signature IS NOT NULL", (code,)) == 200, 10,
            what="200 signed receipts")
        rows = stack.query(
            "SELECT r.number, r.ledger_seq, s.series, r.order_id::text FROM receipts r JOIN receipt_series s "
            "ON s.id = r.series_id JOIN agencies a ON a.id = s.agency_id WHERE a.code = %s ORDER BY r.number", (code,))
        assert [n for n, _, _, _ in rows] == list(range(1, 201))
        assert {s for _, _, s, _ in rows} == {"BL26T"}
        # numbers follow commit order (the ledger's sequence)
        assert [q for _, q, _, _ in rows] == sorted(q for _, q, _, _ in rows)
        assert sorted(oid for _, _, _, oid in rows) == sorted(o["id"] for o in orders)
    finally:
        api.close()


def test_a_payment_applied_many_times_has_one_receipt(api, sim, stack):
    """The notification is lost; the sweeper's status query and replayed IPNs then race to
    apply the same payment: still one receipt, one number."""
    order = new_order(api)
    started = start_payment(sim, order, "vnpay")
    assert approve(sim, started, order, drop=True).status_code == 303
    stack.query("UPDATE attempts SET created_at = created_at - interval '1 day', "
                "bank_created_at = bank_created_at - interval '1 day' WHERE bank_order_ref = %s", (started["ref"],))
    with dedicated_gateway(stack, FEEGATE_QUERY_AFTER_S=1, FEEGATE_SWEEP_INTERVAL_MS=100):
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda _: sim.resend("vnpay", started["ref"]), range(6)))
        wait_status(api, order["id"], "succeeded", timeout=20)
        first = receipt_of(api, order["id"])
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: sim.resend("vnpay", started["ref"]), range(4)))
        wait_until(lambda: len(sim.notifications(bank="vnpay", ref=started["ref"])) >= 11, 10, what="the replays")
    assert stack.scalar("SELECT count(*) FROM receipts WHERE order_id = %s", (order["id"],)) == 1
    assert stack.scalar("SELECT count(*) FROM ledger_transfers WHERE order_id = %s AND code = 'payment'",
                        (order["id"],)) == 1
    assert receipt_of(api, order["id"]) == first


def test_refunds_add_adjustments_and_a_full_refund_cancels(api, sim, stack, finance):
    o, _ = pay_order(api, sim, "vnpay", amount=300000)
    rc = receipt_of(api, o["id"])
    r = refund(finance, o["id"], 100000, reason="Nộp thừa")
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    wait_until(lambda: len(receipt_of(api, o["id"])["adjustments"]) == 1, 5, what="the partial refund's adjustment")
    adj = receipt_of(api, o["id"])["adjustments"]
    assert [(a["kind"], a["amount"], a["refunded_total"], a["receipt"]) for a in adj] == [
        ("partial_refund", 100000, 100000, rc["code"])]
    r = refund(finance, o["id"], 200000, reason="Hủy hồ sơ")
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    wait_until(lambda: len(receipt_of(api, o["id"])["adjustments"]) == 2, 5, what="the full refund's adjustment")
    after = receipt_of(api, o["id"])
    assert [(a["kind"], a["amount"], a["refunded_total"]) for a in after["adjustments"]] == [
        ("partial_refund", 100000, 100000), ("cancellation", 200000, 300000)]
    # the receipt itself never changed, and still verifies
    assert {k: v for k, v in after.items() if k != "adjustments"} == {k: v for k, v in rc.items() if k != "adjustments"}
    path = write_json(after)
    assert cli(stack, "receipt", "verify", path).returncode == 0
    os.unlink(path)
    page = requests.get(rc["url"], timeout=5).text
    assert 'id="cancelled"' in page and 'data-kind="partial_refund"' in page and 'data-kind="cancellation"' in page
    with pytest.raises(Exception):
        stack.query("UPDATE receipts SET body = body || '{\"amount\": 1}' WHERE code = %s", (rc["code"],))


def test_key_rotation_keeps_old_receipts_verifying(api, sim, stack, gateway, gateway_factory):
    o, _ = pay_order(api, sim, "vnpay")
    old = receipt_of(api, o["id"])
    new_key = stack.dir / f"receipt-key-{uuid.uuid4().hex[:8]}.pem"
    r = cli(stack, "receipt", "keygen", str(new_key))
    assert r.returncode == 0, r.stderr
    new_id = r.stdout.strip().splitlines()[-1]
    assert new_id != old["key_id"]
    gw2 = gateway_factory(FEEGATE_RECEIPT_KEY=str(new_key))
    keys_url = gw2.url + "/.well-known/feegate-receipt-keys"
    wait_until(lambda: new_id in [k["key_id"] for k in requests.get(keys_url, timeout=5).json()["keys"]], 10,
               what="the new key published")
    keys = requests.get(keys_url, timeout=5).json()["keys"]
    assert old["key_id"] in [k["key_id"] for k in keys]
    # both numberers run: pay until one receipt is signed by the new key
    signed_new = None
    for _ in range(30):
        o2, _ = pay_order(api, sim, "vnpay")
        rc = receipt_of(api, o2["id"])
        if rc["key_id"] == new_id:
            signed_new = rc
            break
    assert signed_new, "no receipt signed by the rotated-in key"
    for receipt in (old, signed_new):
        path = write_json(receipt)
        r = cli(stack, "receipt", "verify", path, "--keys", keys_url)
        assert r.returncode == 0, r.stdout + r.stderr
        os.unlink(path)
    assert 'data-valid="true"' in requests.get(old["url"], timeout=5).text


def test_backfill_and_export(api, sim, stack, gateway):
    # a payment made "before receipts existed": its receipt removed behind the triggers' back
    o, _ = pay_order(api, sim, "vnpay", amount=1000005)
    receipt_of(api, o["id"])
    with stack.connect() as c:
        c.execute("ALTER TABLE receipts DISABLE TRIGGER receipts_immutable")
        c.execute("DELETE FROM receipts WHERE order_id = %s", (o["id"],))
        c.execute("ALTER TABLE receipts ENABLE TRIGGER receipts_immutable")
        c.execute("UPDATE receipt_cursor SET backfill_upto = seq")
    r = cli(stack, "receipt", "backfill")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "1"
    rc = receipt_of(api, o["id"])
    assert rc["amount_in_words"] == "Một triệu không trăm linh năm đồng"
    day = rc["issued_at"][:10]
    out = stack.dir / "export.json"
    r = cli(stack, "receipt", "export", "--date", day, "--agency", "XNC", "--format", "json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert rc["code"] in [x["code"] for x in doc["receipts"]]
    out_xml = stack.dir / "export.xml"
    r = cli(stack, "receipt", "export", "--date", day, "--format", "xml", "--out", str(out_xml))
    assert r.returncode == 0, r.stderr
    import xml.etree.ElementTree as ET
    root = ET.parse(out_xml).getroot()
    mine = [b for b in root.findall("BLai") if b.findtext("TTChung/MaTraCuu") == rc["code"]]
    assert len(mine) == 1
    b = mine[0]
    assert b.findtext("TTChung/KHMSBLai") == rc["template"] and b.findtext("TTChung/KHBLai") == rc["series"]
    assert b.findtext("NDBLai/NThu/MST") == "0100100079"
    assert b.findtext("NDBLai/TgTTTBSo") == "1000005"
    assert b.findtext("NDBLai/TgTTTBChu") == "Một triệu không trăm linh năm đồng"
