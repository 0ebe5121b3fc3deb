"""docs/openapi.yaml against the implementation, read from the C sources (no stack needed).

* the document is OpenAPI 3.0.x and every `$ref` in it resolves;
* every route in gateway/server.c's route table is documented with the same methods and the
  same auth rule, and the document has no operation the table lacks;
* every error code of lib/errors.c is in the spec with its status (the `ErrorBody.code` enum,
  `x-error-catalogue`, an example), and every documented error example sits under its status;
* the body rules of gateway/order_validate.c and refunds.c match the schemas, the credential
  prefixes of gateway/cli.c match the security schemes, and the webhook headers of
  gateway/webhooks.c are documented;
* every example in the document is valid against its schema.

This module uses no fixture of conftest.py, so it starts no PostgreSQL, Redis or gateway.
"""
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "docs" / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
AUTH_SECURITY = {
    "AUTH_CLIENT": [{"portalApiKey": []}],
    "AUTH_STAFF": [{"staffToken": []}],
    "AUTH_NONE": [],
}


def source(rel):
    return (REPO / rel).read_text(encoding="utf-8")


def strip_c_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)


# ------------------------------------------------------------------------------ loading

_SPEC = None


def load_spec():
    global _SPEC
    if _SPEC is None:
        with SPEC_PATH.open(encoding="utf-8") as f:
            _SPEC = yaml.safe_load(f)
    return _SPEC


@pytest.fixture(scope="module")
def spec():
    return load_spec()


def resolve(spec, node):
    """Follows local `$ref`s until a node without one."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are used: {ref}"
        assert ref not in seen, f"reference loop at {ref}"
        seen.add(ref)
        target = spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(target, dict) and part in target, f"unresolved $ref {ref}"
            target = target[part]
        node = target
    return node


def walk(node, path=()):
    """Yields (path, node) for every dict and list in the document."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + (str(k),))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (str(i),))


def operations(spec):
    """(path, method, operation, path-level parameters) for every operation, x-webhooks too."""
    for section in ("paths", "x-webhooks"):
        for path, item in (spec.get(section) or {}).items():
            for method in HTTP_METHODS:
                if method in item:
                    yield path, method, item[method], item.get("parameters", [])


# ------------------------------------------------------------------------------ the C sources

def route_table():
    """[(methods, pattern, handler, name, auth)] from gateway/server.c's `routes[]`."""
    src = strip_c_comments(source("gateway/server.c"))
    block = re.search(r"struct\s+http_route\s+routes\s*\[\s*\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert block, "routes[] not found in gateway/server.c"
    entry = re.compile(r'\{\s*((?:EVHTTP_REQ_[A-Z]+\s*\|?\s*)+),\s*"([^"]+)"\s*,\s*(\w+)\s*,\s*"(\w+)"\s*,'
                       r"\s*(AUTH_\w+)(?:\s*\|\s*HTTP_ROUTE_\w+)*\s*\}")
    routes = []
    for m in entry.finditer(block.group(1)):
        methods = sorted(x.lower() for x in re.findall(r"EVHTTP_REQ_([A-Z]+)", m.group(1)))
        routes.append((methods, m.group(2), m.group(3), m.group(4), m.group(5)))
    # Every entry of the table is parsed: as many as its lines that start with "{".
    assert len(routes) == len(re.findall(r"^\s*\{", block.group(1), re.M)), "an entry of routes[] was not parsed"
    assert len(routes) >= 10
    return routes


def error_catalogue():
    """{code: status} from lib/errors.c."""
    src = strip_c_comments(source("lib/errors.c"))
    found = re.findall(r'\[\s*(ERR_\w+)\s*\]\s*=\s*\{\s*(\d+)\s*,\s*"([a-z_]+)"', src)
    enum = strip_c_comments(source("lib/errors.h"))
    members = [m for m in re.findall(r"\b(ERR_\w+)\s*,", enum) if m != "ERR__COUNT"]
    assert sorted(e for e, _, _ in found) == sorted(members), "lib/errors.c and lib/errors.h disagree"
    return {code: int(status) for _, status, code in found}


def normalize(path):
    return re.sub(r"\{[^}]*\}", "{}", path)


# ------------------------------------------------------------------------------ a small validator

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # what feegate writes


def _type_ok(t, v):
    return {
        "string": lambda: isinstance(v, str),
        "integer": lambda: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda: isinstance(v, bool),
        "array": lambda: isinstance(v, list),
        "object": lambda: isinstance(v, dict),
    }[t]()


def validate(spec, schema, value, where="$"):
    """The OpenAPI 3.0 schema keywords this document uses; returns a list of faults."""
    schema = resolve(spec, schema)
    faults = []
    if value is None:
        if schema.get("nullable") or (schema.get("enum") and None in schema["enum"]):
            return []
        if "type" in schema:
            return [f"{where}: null is not allowed"]
    for sub in schema.get("allOf", []):
        faults += validate(spec, sub, value, where)
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not validate(spec, s, value, where)]
        if len(ok) != 1:
            faults.append(f"{where}: matches {len(ok)} of oneOf, not exactly 1")
    if "anyOf" in schema and not any(not validate(spec, s, value, where) for s in schema["anyOf"]):
        faults.append(f"{where}: matches none of anyOf")
    t = schema.get("type")
    if t and not _type_ok(t, value):
        return faults + [f"{where}: {value!r} is not of type {t}"]
    if "enum" in schema and value not in schema["enum"]:
        faults.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            faults.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            faults.append(f"{where}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            faults.append(f"{where}: {value!r} does not match {schema['pattern']}")
        fmt = schema.get("format")
        if fmt == "uuid" and not UUID_RE.match(value):
            faults.append(f"{where}: {value!r} is not a uuid")
        if fmt == "date-time" and not TIME_RE.match(value):
            faults.append(f"{where}: {value!r} is not feegate's date-time")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            faults.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            faults.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            faults.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            faults.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, v in enumerate(value):
                faults += validate(spec, schema["items"], v, f"{where}[{i}]")
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                faults.append(f"{where}: missing required {k}")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            faults.append(f"{where}: more than {schema['maxProperties']} properties")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                faults += validate(spec, props[k], v, f"{where}.{k}")
            elif extra is False:
                # allOf parts each list some properties: judge "unknown" against all of them
                if not any(k in resolve(spec, s).get("properties", {}) for s in schema.get("allOf", [])):
                    faults.append(f"{where}: unknown property {k}")
            elif isinstance(extra, dict):
                faults += validate(spec, extra, v, f"{where}.{k}")
    return faults


def media_examples(spec, media):
    """(name, value) of a media type object's (or parameter's, or header's) examples."""
    out = []
    if "example" in media:
        out.append(("example", media["example"]))
    for name, ex in (media.get("examples") or {}).items():
        ex = resolve(spec, ex)
        assert "value" in ex, f"example {name} has no value"
        out.append((name, ex["value"]))
    return out


def examples_with_schemas(spec):
    """(where, schema, value) for every example the document gives."""
    for path, method, op, path_params in operations(spec):
        here = f"{method.upper()} {path}"
        for p in list(path_params) + list(op.get("parameters", [])):
            p = resolve(spec, p)
            if "schema" in p:
                for name, value in media_examples(spec, p):
                    yield f"{here} parameter {p['name']} {name}", p["schema"], value
        body = resolve(spec, op.get("requestBody", {}))
        for mt, media in (body.get("content") or {}).items():
            for name, value in media_examples(spec, media):
                yield f"{here} request {mt} {name}", media.get("schema", {}), value
        for status, resp in op.get("responses", {}).items():
            resp = resolve(spec, resp)
            for hname, h in (resp.get("headers") or {}).items():
                h = resolve(spec, h)
                for name, value in media_examples(spec, h):
                    yield f"{here} {status} header {hname} {name}", h.get("schema", {}), value
            for mt, media in (resp.get("content") or {}).items():
                for name, value in media_examples(spec, media):
                    yield f"{here} {status} {mt} {name}", media.get("schema", {}), value
    for name, schema in spec["components"]["schemas"].items():
        if "example" in schema:
            yield f"components.schemas.{name}", schema, schema["example"]


# ------------------------------------------------------------------------------ the checks

def test_is_openapi_3_0(spec):
    assert isinstance(spec, dict)
    assert re.fullmatch(r"3\.0\.\d+", str(spec.get("openapi"))), spec.get("openapi")
    assert spec["info"]["title"] and spec["info"]["version"]
    assert "webhooks" not in spec, "3.0 has no `webhooks` key: use x-webhooks"
    for key in spec:
        assert key in ("openapi", "info", "servers", "paths", "components", "security", "tags",
                       "externalDocs") or key.startswith("x-"), f"unknown top-level key {key}"


def test_every_ref_resolves(spec):
    for where, node in walk(spec):
        if isinstance(node, dict) and "$ref" in node:
            resolve(spec, node)  # asserts


def test_operations_are_well_formed(spec):
    ids = []
    for path, method, op, path_params in operations(spec):
        here = f"{method.upper()} {path}"
        assert op.get("responses"), f"{here}: no responses"
        assert any(str(s).startswith(("2", "3")) for s in op["responses"]), f"{here}: no success answer"
        assert op.get("operationId"), f"{here}: no operationId"
        ids.append(op["operationId"])
        params = [resolve(spec, p) for p in list(path_params) + list(op.get("parameters", []))]
        declared = {p["name"] for p in params if p["in"] == "path"}
        for p in params:
            if p["in"] == "path":
                assert p.get("required") is True, f"{here}: path parameter {p['name']} must be required"
        if path.startswith("/"):
            assert declared == set(re.findall(r"\{([^}]+)\}", path)), f"{here}: path parameters {declared}"
    assert len(ids) == len(set(ids)), "operationIds must be unique"


def test_every_route_is_documented_with_its_methods_and_auth(spec):
    documented = {}
    for path, item in spec["paths"].items():
        documented[normalize(path)] = (path, item)
    for methods, pattern, handler, name, auth in route_table():
        assert pattern in documented, f"route {pattern} ({name}) is not in docs/openapi.yaml"
        path, item = documented[pattern]
        for method in methods:
            assert method in item, f"{method.upper()} {pattern} ({name}) is not documented"
            op = item[method]
            security = op.get("security", spec.get("security", []))
            want = AUTH_SECURITY[auth]
            if auth == "AUTH_NONE":
                assert security in ([], [{}]), f"{method.upper()} {path}: {auth} but security {security}"
            else:
                assert security == want, f"{method.upper()} {path}: {auth} wants {want}, not {security}"


def test_no_operation_without_a_route(spec):
    served = {}
    for methods, pattern, *_ in route_table():
        served.setdefault(pattern, set()).update(methods)
    for path, item in spec["paths"].items():
        pattern = normalize(path)
        assert pattern in served, f"{path} is documented but gateway/server.c has no such route"
        for method in HTTP_METHODS:
            if method in item:
                assert method in served[pattern], f"{method.upper()} {path} is documented but not served"


def test_every_error_code_is_in_the_spec(spec):
    catalogue = error_catalogue()
    assert {"invalid_json", "validation_failed", "unauthorized", "not_found"} <= set(catalogue)
    enum = resolve(spec, spec["components"]["schemas"]["ErrorBody"])["properties"]["code"]["enum"]
    assert sorted(enum) == sorted(catalogue), "ErrorBody.code enum differs from lib/errors.c"
    listed = {e["code"]: e["status"] for e in spec["x-error-catalogue"]}
    assert listed == catalogue, "x-error-catalogue differs from lib/errors.c (code -> status)"
    used = {node["error"]["code"] for _, node in walk(spec)
            if isinstance(node, dict) and isinstance(node.get("error"), dict) and "code" in node["error"]}
    missing = set(catalogue) - used
    assert not missing, f"no example shows these error codes: {sorted(missing)}"
    text = SPEC_PATH.read_text(encoding="utf-8")
    for code in catalogue:
        assert code in text


def test_error_examples_sit_under_their_status(spec):
    catalogue = error_catalogue()
    for path, method, op, _ in operations(spec):
        for status, resp in op.get("responses", {}).items():
            resp = resolve(spec, resp)
            for mt, media in (resp.get("content") or {}).items():
                for name, value in media_examples(spec, media):
                    if isinstance(value, dict) and isinstance(value.get("error"), dict):
                        code = value["error"]["code"]
                        assert str(catalogue[code]) == str(status), \
                            f"{method.upper()} {path} {status} {name}: {code} is a {catalogue[code]}"


def test_examples_match_their_schemas(spec):
    faults = []
    n = 0
    for where, schema, value in examples_with_schemas(spec):
        n += 1
        faults += [f"{where}: {f}" for f in validate(spec, schema, value)]
    assert n > 50
    assert not faults, "\n".join(faults)


def test_order_body_rules_match_order_validate_c(spec):
    src = strip_c_comments(source("gateway/order_validate.c"))
    schemas = spec["components"]["schemas"]
    order = schemas["OrderCreate"]
    known = re.search(r"known\[\]\s*=\s*\{(.*?)\};", src, re.S).group(1)
    assert set(re.findall(r'"(\w+)"', known)) == set(order["properties"]), "OrderCreate fields"
    assert order["additionalProperties"] is False
    limit = strip_c_comments(source("adapters/adapter.h"))
    max_amount = int(re.search(r"#define\s+ADAPTER_AMOUNT_MAX\s+INT64_C\((\d+)\)", limit).group(1))
    assert "order_amount_valid(a)" in src and "order_amount_valid(amount)" in src
    max_items = int(re.search(r"#define\s+MAX_ITEMS\s+(\d+)", src).group(1))
    assert order["properties"]["amount"]["maximum"] == max_amount
    assert resolve(spec, schemas["OrderItem"])["properties"]["amount"]["maximum"] == max_amount
    assert order["properties"]["items"]["maxItems"] == max_items
    for field, lo, hi in re.findall(r'check_text\(body, "(\w+)", \w+, (\d+), (\d+)', src):
        prop = order["properties"][field]
        assert (prop["minLength"], prop["maxLength"]) == (int(lo), int(hi)), field
    payer = resolve(spec, schemas["Payer"])["properties"]
    block = re.search(r"fields\[\]\s*=\s*\{(.*?)\};", src, re.S).group(1)
    for name, hi in re.findall(r'\{"(\w+)",\s*(\d+)\}', block):
        assert payer[name]["maxLength"] == int(hi), f"payer.{name}"
    exp = order["properties"]["expires_in"]
    assert (exp["minimum"], exp["maximum"], exp["default"]) == (60, 86400, 900)
    assert order["properties"]["metadata"]["maxProperties"] == 10
    key = resolve(spec, spec["components"]["parameters"]["IdempotencyKey"])["schema"]
    assert (key["minLength"], key["maxLength"]) == (1, 255)


def test_refund_body_matches_refunds_c(spec):
    src = strip_c_comments(source("gateway/refunds.c"))
    body = spec["components"]["schemas"]["RefundCreate"]
    assert set(body["properties"]) == {"amount", "reason"} and body["additionalProperties"] is False
    limit = strip_c_comments(source("adapters/adapter.h"))
    max_amount = int(re.search(r"#define\s+ADAPTER_AMOUNT_MAX\s+INT64_C\((\d+)\)", limit).group(1))
    assert "order_amount_valid(amount)" in src and body["properties"]["amount"]["maximum"] == max_amount
    assert "> 255" in src and body["properties"]["reason"]["maxLength"] == 255


def test_credential_prefixes_match_cli_c(spec):
    src = source("gateway/cli.c") + source("gateway/staff_cli.c") + source("gateway/staff.c")
    schemes = spec["components"]["securitySchemes"]
    for scheme, prefix in (("portalApiKey", "fgk_"), ("staffToken", "fgs_")):
        assert f'util_token("{prefix}"' in src, f"gateway/cli.c no longer makes {prefix} credentials"
        s = schemes[scheme]
        assert s["type"] == "http" and s["scheme"] == "bearer"
        assert s["bearerFormat"].startswith(prefix)


def test_webhook_signature_is_documented(spec):
    hooks = spec.get("x-webhooks")
    assert hooks, "x-webhooks is missing"
    ops = [item["post"] for item in hooks.values() if "post" in item]
    assert ops, "x-webhooks has no POST"
    op = ops[0]
    headers = {p["name"] for p in (resolve(spec, p) for p in op["parameters"]) if p["in"] == "header"}
    src = source("gateway/webhooks.c")
    sent = set(re.findall(r'\{"(Feegate-[A-Za-z-]+)"', src))
    assert {"Feegate-Timestamp", "Feegate-Signature"} <= sent, "gateway/webhooks.c headers changed"
    assert sent <= headers, f"webhook headers not documented: {sorted(sent - headers)}"
    scheme = source("lib/util.c")
    assert '"v1=%s"' in src and "util_sign_timestamped(" in src
    assert re.search(r"util_sign_timestamped\(.*?strbuf_putc\(&data, '\.'\).*?\"SHA256\"", scheme, re.S)
    text = op["description"] + spec["info"]["description"]
    assert 'HMAC-SHA256(webhook secret, Feegate-Timestamp + "." + body)' in text or \
        'HMAC-SHA256(webhook secret, timestamp + "." + raw body)' in text
    body = resolve(spec, op["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["required"]) == {"id", "type", "created_at", "data"}
