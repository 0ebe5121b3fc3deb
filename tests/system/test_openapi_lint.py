"""docs/openapi.yaml under the rules a strict linter (Redocly's "recommended" set) treats as
errors, written out here because the linter itself cannot be installed on a machine without a
registry: every operation, the webhook too, states its security; every operation has a success
(2xx) answer; no component is left unused; operation ids are unique; path parameters are
declared; every tag is defined; and the document cites only files of this repository.

This module uses no fixture of conftest.py, so it starts no PostgreSQL, Redis or gateway."""
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def spec():
    with SPEC_PATH.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def operations(spec):
    for section in ("paths", "x-webhooks"):
        for path, item in (spec.get(section) or {}).items():
            for method in METHODS:
                if method in item:
                    yield section, path, method, item, item[method]


def refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def test_every_operation_states_its_security(spec):
    schemes = set(spec["components"].get("securitySchemes", {}))
    missing = []
    for section, path, method, _, op in operations(spec):
        security = op.get("security", spec.get("security"))
        if security is None:
            missing.append(f"{section} {method.upper()} {path}")
            continue
        for requirement in security:
            assert set(requirement) <= schemes, (path, method, requirement)
    assert not missing, f"operations without `security`: {missing}"


def test_every_operation_has_a_2xx_answer(spec):
    # Redocly's operation-2xx-response: a 2XX code or `default`
    bad = [f"{section} {method.upper()} {path}" for section, path, method, _, op in operations(spec)
           if not any(str(code) == "default" or re.fullmatch(r"2[0-9Xx]{2}", str(code)) for code in op["responses"])]
    assert not bad, f"operations without a 2xx response: {bad}"


def test_no_unused_components(spec):
    used = set(refs(spec))
    for _, _, _, _, op in operations(spec):
        for requirement in op.get("security", []):
            used |= {f"#/components/securitySchemes/{name}" for name in requirement}
    for requirement in spec.get("security", []):
        used |= {f"#/components/securitySchemes/{name}" for name in requirement}
    unused = [f"#/components/{kind}/{name}" for kind, group in spec["components"].items()
              for name in group if f"#/components/{kind}/{name}" not in used]
    assert not unused, f"components nothing refers to: {unused}"


def test_operation_ids_are_present_and_unique(spec):
    ids = [op.get("operationId") for _, _, _, _, op in operations(spec)]
    assert all(ids), "an operation without operationId"
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, dupes


def test_path_parameters_are_declared(spec):
    for section, path, method, item, op in operations(spec):
        declared = {p["name"] for p in item.get("parameters", []) + op.get("parameters", [])
                    if isinstance(p, dict) and p.get("in") == "path"}
        for ref in (p["$ref"] for p in item.get("parameters", []) + op.get("parameters", []) if "$ref" in p):
            target = spec
            for part in ref[2:].split("/"):
                target = target[part]
            if target.get("in") == "path":
                declared.add(target["name"])
        wanted = set(re.findall(r"\{([^}]+)\}", path))
        assert wanted == declared, (method, path, wanted, declared)


def test_tags_and_summaries(spec):
    defined = {t["name"] for t in spec.get("tags", [])}
    for section, path, method, _, op in operations(spec):
        assert op.get("summary"), (method, path)
        if section == "paths":
            assert op.get("tags") and set(op["tags"]) <= defined, (method, path, op.get("tags"))


def cited_files(text):
    """Repository-looking file names in backticks or links: `gateway/server.c`, docs/x.md."""
    return set(re.findall(r"`((?:[\w.-]+/)+[\w.-]+\.(?:c|h|py|sh|sql|md|yaml|yml|json))`", text)) | \
        set(re.findall(r"\]\((?!https?://|#)([^)\s]+)\)", text))


@pytest.mark.parametrize("rel", ["docs/openapi.yaml", "README.md"])
def test_cites_only_files_of_the_repository(rel):
    text = (REPO / rel).read_text(encoding="utf-8")
    assert "/work/" not in text, f"{rel} points outside the repository"
    for name in ("CONTRACT.md", "DESIGN.md", "STYLE.md"):
        if not any(p.name == name for p in REPO.rglob(name)):
            assert name not in text, f"{rel} cites {name}, which is not in the repository"
    # a name under one of the repository's own folders must exist (outputs such as bench/… and
    # patterns such as functions/NAME.sql are not citations)
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True)
    top = {line.split("/", 1)[0] for line in tracked.stdout.splitlines() if "/" in line}
    missing = sorted(f for f in cited_files(text) if f.split("/")[0] in top and not re.search(r"NAME|NNNN", f)
                     and not (REPO / f.split("#")[0]).exists())
    assert not missing, f"{rel} cites files that are not in the repository: {missing}"
