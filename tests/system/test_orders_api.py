"""POST/GET /v1/orders, list by reference, cancel: fields, validation, auth, errors (docs/openapi.yaml)."""
import re
import uuid
from datetime import datetime, timedelta

import pytest
import requests

from conftest import error_of, order_body, to_json_bytes, unique_ref

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
REQUIRED_FIELDS = {"id", "reference", "agency", "description", "amount", "currency", "status",
                   "checkout_url", "return_url", "created_at", "expires_at", "attempts"}


def parse_time(s):
    assert isinstance(s, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", s), s
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def created(api, **overrides):
    body = order_body(**overrides)
    r = api.create(body)
    assert r.status_code == 201, r.text
    return body, r.json()


# ------------------------------------------------------------------------------ create, read

def test_create_returns_the_order(api, gateway):
    body = order_body()
    before = datetime.now().astimezone()
    r = api.create(body)
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    o = r.json()
    assert set(o) == REQUIRED_FIELDS, sorted(o)
    assert UUID_RE.match(o["id"]), o["id"]
    assert o["reference"] == body["reference"]
    assert o["agency"] == "XNC"
    assert o["description"] == body["description"]
    assert o["amount"] == 200000 and type(o["amount"]) is int
    assert o["currency"] == "VND"
    assert o["status"] == "created"
    assert o["return_url"] == body["return_url"]
    assert o["attempts"] == []
    assert re.match(re.escape(gateway.url) + r"/checkout/[A-Za-z0-9_-]{20,}$", o["checkout_url"]), o
    created_at, expires_at = parse_time(o["created_at"]), parse_time(o["expires_at"])
    assert abs((created_at - before).total_seconds()) < 60
    assert abs((expires_at - created_at) - timedelta(seconds=900)) < timedelta(seconds=1)


def test_create_echoes_the_optional_fields(api):
    body = order_body(
        amount=350000, currency="VND", procedure="1.001234",
        items=[{"code": "LP", "name": "Lệ phí cấp hộ chiếu", "amount": 200000},
               {"code": "PHI", "name": "Phí chuyển phát", "amount": 150000}],
        payer={"name": "Nguyễn Thị Hồng Nhung", "id_number": "001199012345",
               "email": "nhung@example.vn", "phone": "+84 912 345 678"},
        expires_in=600,
        metadata={"ho_so": "HS-2024-000123", "trang_thai": "mới", "so_trang": 3, "khan": True})
    r = api.create(body)
    assert r.status_code == 201, r.text
    o = r.json()
    assert set(o) == REQUIRED_FIELDS | {"items", "procedure", "payer", "metadata"}, sorted(o)
    for k in ("amount", "currency", "procedure", "items", "payer", "metadata"):
        assert o[k] == body[k], k
    delta = parse_time(o["expires_at"]) - parse_time(o["created_at"])
    assert abs(delta - timedelta(seconds=600)) < timedelta(seconds=1)


def test_get_by_id_returns_the_same_order(api):
    body, o = created(api, items=[{"code": "A", "name": "Phí", "amount": 200000}],
                      metadata={"k": "v"}, payer={"name": "Trần Văn Bình"}, procedure="P-1")
    r = api.get(f"/v1/orders/{o['id']}")
    assert r.status_code == 200, r.text
    assert r.json() == o


def test_list_by_reference(api):
    _, o = created(api)
    r = api.get("/v1/orders", params={"reference": o["reference"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"data": [o]}
    r = api.get("/v1/orders", params={"reference": unique_ref("NONE")})
    assert r.status_code == 200, r.text
    assert r.json() == {"data": []}


def test_cancel_and_cancel_again(api):
    _, o = created(api)
    r = api.post(f"/v1/orders/{o['id']}/cancel")
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["id"] == o["id"] and c["status"] == "cancelled"
    assert set(c) >= REQUIRED_FIELDS
    r = api.post(f"/v1/orders/{o['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert api.get(f"/v1/orders/{o['id']}").json()["status"] == "cancelled"


def test_duplicate_reference(api, other_api):
    body, o = created(api)
    again = order_body(reference=body["reference"], amount=5000)
    r = api.create(again)
    assert r.status_code == 409, r.text
    err = error_of(r)
    assert err["code"] == "duplicate_reference"
    assert err["order_id"] == o["id"]
    # unique per client: another client may use the same reference
    r = other_api.create(order_body(reference=body["reference"]))
    assert r.status_code == 201, r.text


# ------------------------------------------------------------------------------ validation

BAD_BODIES = [
    ("reference missing", {"reference": None}, "reference"),
    ("reference empty", {"reference": ""}, "reference"),
    ("reference 65 chars", {"reference": "R" * 65}, "reference"),
    ("reference not a string", {"reference": 12345}, "reference"),
    ("agency unknown", {"agency": "NOPE"}, "agency"),
    ("agency missing", {"agency": None}, "agency"),
    ("description missing", {"description": None}, "description"),
    ("description 256 chars", {"description": "d" * 256}, "description"),
    ("amount missing", {"amount": None}, "amount"),
    ("amount 0", {"amount": 0}, "amount"),
    ("amount negative", {"amount": -1}, "amount"),
    ("amount too large", {"amount": 100000000001}, "amount"),
    ("amount fraction", {"amount": 1.5}, "amount"),
    ("amount string", {"amount": "100"}, "amount"),
    ("currency USD", {"currency": "USD"}, "currency"),
    ("items not summing", {"items": [{"code": "A", "name": "a", "amount": 100000},
                                     {"code": "B", "name": "b", "amount": 50000}]}, "items"),
    ("items not a list", {"items": {"code": "A"}}, "items"),
    ("return_url missing", {"return_url": None}, "return_url"),
    ("return_url relative", {"return_url": "/thanh-toan/ket-qua"}, "return_url"),
    ("return_url ftp", {"return_url": "ftp://dichvucong.example.vn/r"}, "return_url"),
    ("return_url 2001 chars", {"return_url": "https://a.example.vn/" + "x" * (2001 - 21)}, "return_url"),
    ("expires_in 59", {"expires_in": 59}, "expires_in"),
    ("expires_in 86401", {"expires_in": 86401}, "expires_in"),
    ("metadata 11 keys", {"metadata": {f"k{i}": i for i in range(11)}}, "metadata"),
    ("metadata nested object", {"metadata": {"a": {"b": 1}}}, "metadata"),
    ("metadata nested array", {"metadata": {"a": [1]}}, "metadata"),
    ("unknown field", {"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize("name,overrides,field", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_validation_error_names_the_field(api, stack, name, overrides, field):
    body = order_body(**overrides)
    r = api.create(body)
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert err["code"] == "validation_failed", err
    assert err.get("field") == field, err
    if "reference" in body and isinstance(body["reference"], str) and body["reference"]:
        assert stack.query("SELECT 1 FROM orders WHERE reference = %s", (body["reference"],)) == []


def test_agency_the_client_may_not_bill(other_api):
    # the XNC-only client asks for DKKD, which exists
    r = other_api.create(order_body(agency="DKKD"))
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert err["code"] == "validation_failed" and err.get("field") == "agency", err
    assert other_api.create(order_body(agency="XNC")).status_code == 201


GOOD_BOUNDARIES = [
    ("amount 1", {"amount": 1}),
    ("amount max", {"amount": 100000000000}),
    ("expires_in 60", {"expires_in": 60}),
    ("expires_in 86400", {"expires_in": 86400}),
    ("metadata 10 keys", {"metadata": {f"k{i}": i for i in range(10)}}),
    ("return_url 2000 chars", {"return_url": "http://a.example.vn/" + "x" * (2000 - 20)}),
    ("description 255 chars", {"description": "d" * 255}),
    ("agency 2", {"agency": "DKKD"}),
]


@pytest.mark.parametrize("name,overrides", GOOD_BOUNDARIES, ids=[b[0] for b in GOOD_BOUNDARIES])
def test_boundary_values_are_accepted(api, name, overrides):
    body = order_body(**overrides)
    r = api.create(body)
    assert r.status_code == 201, r.text
    o = r.json()
    for k, v in overrides.items():
        if k == "expires_in":  # a request parameter: the order carries expires_at
            delta = parse_time(o["expires_at"]) - parse_time(o["created_at"])
            assert abs(delta - timedelta(seconds=v)) < timedelta(seconds=1)
        else:
            assert o[k] == v


def test_reference_of_64_characters_accepted(api):
    ref = "R" * 32 + uuid.uuid4().hex
    assert len(ref) == 64
    assert api.create(order_body(reference=ref)).status_code == 201


# ------------------------------------------------------------------------------ Vietnamese text

def test_lengths_are_counted_in_characters(api):
    # 64 characters, 2 or 3 bytes each in UTF-8
    ref = ("HỒSƠĐĂNGKÝ" * 7)[:54] + uuid.uuid4().hex[:10]
    assert len(ref) == 64 and len(ref.encode()) > 64
    r = api.create(order_body(reference=ref))
    assert r.status_code == 201, r.text
    assert r.json()["reference"] == ref

    desc = ("Lệ phí đăng ký kinh doanh hộ cá thể " * 8)[:255]
    assert len(desc) == 255 and len(desc.encode()) > 255
    r = api.create(order_body(description=desc))
    assert r.status_code == 201, r.text
    assert r.json()["description"] == desc

    r = api.create(order_body(description=desc + "ử"))
    assert r.status_code == 400 and error_of(r).get("field") == "description", r.text
    r = api.create(order_body(reference="Ư" * 65))
    assert r.status_code == 400 and error_of(r).get("field") == "reference", r.text


def test_vietnamese_text_round_trips_exactly(api, stack):
    nfc = "Phí thẩm định hồ sơ — Sở Kế hoạch và Đầu tư tỉnh Thừa Thiên Huế (ưu tiên)"
    nfd = "Nguye\u0302\u0303n Tho\u0323 \u0110u\u031b\u0301c"  # decomposed: must not be normalised
    ref = "HS-Đ-" + uuid.uuid4().hex[:12]
    body = order_body(reference=ref, description=nfc,
                      items=[{"code": "ẨM", "name": nfd, "amount": 200000}],
                      payer={"name": nfd}, metadata={"ghi_chú": "Quảng Nam – Đà Nẵng"})
    r = api.create(body)
    assert r.status_code == 201, r.text
    o = r.json()
    for got in (o, api.get(f"/v1/orders/{o['id']}").json(),
                api.get("/v1/orders", params={"reference": ref}).json()["data"][0]):
        assert got["reference"] == ref
        assert got["description"] == nfc
        assert got["items"][0]["name"] == nfd and got["items"][0]["code"] == "ẨM"
        assert got["payer"]["name"] == nfd
        assert got["metadata"] == {"ghi_chú": "Quảng Nam – Đà Nẵng"}
    assert stack.scalar("SELECT description FROM orders WHERE id = %s", (o["id"],)) == nfc


# ------------------------------------------------------------------------------ bodies

def test_invalid_utf8_body(api):
    raw = b'{"reference":"R-\xc3\x28","agency":"XNC","description":"x","amount":1,' \
          b'"return_url":"https://a.example.vn/"}'
    r = api.create(raw=raw)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] in ("invalid_json", "validation_failed")


def test_invalid_json(api):
    for raw in (b'{"reference": "R1", ', b"not json", b"", b'{"a":1}{"b":2}'):
        r = api.create(raw=raw)
        assert r.status_code == 400, (raw, r.text)
        assert error_of(r)["code"] == "invalid_json", (raw, r.text)


def test_json_nested_33_deep_is_rejected(api):
    r = api.create(raw=b"[" * 33 + b"]" * 33)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "invalid_json"
    deep_md = order_body()
    raw = to_json_bytes(deep_md)[:-1] + b',"metadata":' + b'{"a":' * 32 + b"1" + b"}" * 32 + b"}"
    r = api.create(raw=raw)  # 33 levels counting the body itself
    assert r.status_code == 400, r.text
    # 32 levels is allowed nesting: the answer is about the content, not the depth
    r = api.create(raw=b"[" * 32 + b"]" * 32)
    assert r.status_code == 400, r.text
    assert error_of(r)["code"] == "validation_failed"


def test_body_over_one_mib(api):
    body = order_body()
    raw = to_json_bytes(body)[:-1] + b',"metadata":{"pad":"' + b"x" * (1 << 20) + b'"}}'
    assert len(raw) > 1 << 20
    r = api.create(raw=raw)
    assert r.status_code == 413, r.text[:200]
    assert api.create(order_body()).status_code == 201  # the gateway still serves


# ------------------------------------------------------------------------------ auth

@pytest.mark.parametrize("auth", [None, "Bearer ", "Bearer fgk_not-a-real-key", "Basic dXNlcjpwYXNz",
                                  "fgk_without_scheme"])
def test_bad_credentials_are_401(api, stack, auth):
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    for method, path in (("POST", "/v1/orders"), ("GET", f"/v1/orders/{uuid.uuid4()}"),
                         ("GET", "/v1/orders?reference=R1")):
        r = api.session.request(method, api.base + path, headers=headers,
                                data=to_json_bytes(order_body()) if method == "POST" else None, timeout=10)
        assert r.status_code == 401, (method, path, r.text)
        assert error_of(r)["code"] == "unauthorized"


def test_staff_token_is_forbidden_on_orders(api, stack):
    for token in (stack.env["FEEGATE_FINANCE_TOKEN"], stack.env["FEEGATE_AGENCY_TOKEN"]):
        r = api.create(order_body(), key=token)
        assert r.status_code == 403, r.text
        assert error_of(r)["code"] == "forbidden"
        r = api.get(f"/v1/orders/{uuid.uuid4()}", key=token)
        assert r.status_code == 403, r.text


def test_another_clients_order_is_not_found(api, other_api):
    _, o = created(api)
    r = other_api.get(f"/v1/orders/{o['id']}")
    assert r.status_code == 404, r.text
    assert error_of(r)["code"] == "not_found"
    r = other_api.post(f"/v1/orders/{o['id']}/cancel")
    assert r.status_code == 404, r.text
    assert error_of(r)["code"] == "not_found"
    r = other_api.get("/v1/orders", params={"reference": o["reference"]})
    assert r.status_code == 200 and r.json() == {"data": []}, r.text
    # and the order was not cancelled by that attempt
    assert api.get(f"/v1/orders/{o['id']}").json()["status"] == "created"


@pytest.mark.parametrize("oid", ["not-a-uuid", "12345", str(uuid.uuid4()),
                                 "00000000-0000-0000-0000-00000000000g", "%27%20OR%201=1"])
def test_unknown_or_malformed_id_is_404(api, oid):
    for method, path in (("GET", f"/v1/orders/{oid}"), ("POST", f"/v1/orders/{oid}/cancel")):
        r = api.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert error_of(r)["code"] == "not_found"


# ------------------------------------------------------------------------------ HTTP surface

def test_wrong_method_is_405(api):
    oid = str(uuid.uuid4())
    for method, path in (("DELETE", "/v1/orders"), ("PUT", "/v1/orders"), ("PATCH", f"/v1/orders/{oid}"),
                         ("DELETE", f"/v1/orders/{oid}"), ("GET", f"/v1/orders/{oid}/cancel"),
                         ("POST", "/healthz")):
        r = api.request(method, path)
        assert r.status_code == 405, (method, path, r.text)
        assert error_of(r)["code"] == "method_not_allowed"


def test_unknown_route_is_404(api):
    for path in ("/v2/orders", "/", "/v1/orderz", "/v1/orders/x/y/z"):
        r = api.get(path)
        assert r.status_code == 404, (path, r.text)
        assert error_of(r)["code"] == "not_found"


def test_error_bodies_have_the_contract_shape(api, stack):
    answers = [
        api.create(order_body(amount=0)),
        api.create(raw=b"{"),
        api.create(order_body(), key=None),
        api.get(f"/v1/orders/{uuid.uuid4()}"),
        api.request("DELETE", "/v1/orders"),
    ]
    for r in answers:
        assert r.status_code >= 400
        doc = r.json()
        assert list(doc) == ["error"], doc
        err = error_of(r)
        assert re.match(r"^[a-z][a-z0-9_]*$", err["code"]), err
        text = r.text
        assert stack.env["FEEGATE_API_KEY"] not in text
        assert stack.database_url not in text and "Traceback" not in text


def test_request_id_header_on_every_answer(api, gateway):
    answers = [api.create(order_body()), api.create(order_body(amount=0)), api.get("/nowhere"),
               requests.get(gateway.url + "/healthz", timeout=5),
               api.get(f"/v1/orders/{uuid.uuid4()}", key=None)]
    ids = set()
    for r in answers:
        rid = r.headers.get("X-Request-Id")
        assert rid, (r.status_code, dict(r.headers))
        ids.add(rid)
    assert len(ids) == len(answers), ids
