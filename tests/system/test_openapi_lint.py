"""docs/openapi.yaml under a strict linter: Redocly's CLI with its "recommended" rules, the
version pinned by tools/openapi-lint/package-lock.json. The test installs it with `npm ci` into
the build folder (BUILD/openapi-lint, outside the repository's sources; reused while the lock
file is unchanged), so it needs npm and the npm registry: without them it fails and says so.
The configuration and the reviewed findings are in tools/openapi-lint/ (redocly.yaml,
.redocly.lint-ignore.yaml); the test accepts no other error or warning.

Also here, because no linter checks it: the document, the README and the pages of docs/ cite
only files of this repository.

This module uses no fixture of conftest.py, so it starts no PostgreSQL, Redis or gateway."""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "docs" / "openapi.yaml"
LINT_DIR = REPO / "tools" / "openapi-lint"
BUILD_DIR = Path(os.environ.get("FEEGATE_BIN", REPO / "build" / "feegate")).parent
NPM_TIMEOUT = 600


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def redocly():
    """The pinned linter's executable, installed by `npm ci` from the committed lock file."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed, so the pinned OpenAPI linter cannot be installed: "
                    "run deploy/install-deps.sh (Debian packages nodejs and npm)")
    dest = BUILD_DIR / "openapi-lint"
    exe = dest / "node_modules" / ".bin" / "redocly"
    lock = (LINT_DIR / "package-lock.json").read_bytes()
    stamp = dest / "installed.lock"
    if exe.exists() and stamp.exists() and stamp.read_bytes() == lock:
        return exe
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(LINT_DIR / name, dest / name)
    try:
        r = run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=dest, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`npm ci` in {dest} took over {NPM_TIMEOUT} s: is the npm registry reachable?")
    if r.returncode != 0 or not exe.exists():
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        pytest.fail(f"`npm ci` could not install the pinned OpenAPI linter in {dest} "
                    f"(exit {r.returncode}); npm needs the npm registry:\n{tail}")
    stamp.write_bytes(lock)
    return exe


def test_the_linter_is_pinned():
    """An exact version in package.json, and the lock file records that same version."""
    wanted = json.loads((LINT_DIR / "package.json").read_text())["dependencies"]["@redocly/cli"]
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", wanted), f"not an exact version: {wanted}"
    locked = json.loads((LINT_DIR / "package-lock.json").read_text())
    assert locked["packages"]["node_modules/@redocly/cli"]["version"] == wanted


def test_redocly_lint_finds_nothing(redocly):
    r = run([str(redocly), "lint", "--config", str(LINT_DIR / "redocly.yaml"), "--format=json",
             str(SPEC_PATH)], cwd=REPO, timeout=120)
    try:
        report = json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"redocly lint printed no JSON report (exit {r.returncode}):\n{r.stdout}\n{r.stderr}")
    problems = [f"{p['severity']} {p['ruleId']} at {(p.get('location') or [{}])[0].get('pointer')}: "
                f"{p['message']}" for p in report["problems"]]
    assert report["totals"]["errors"] == 0 and report["totals"]["warnings"] == 0, \
        "redocly lint docs/openapi.yaml:\n" + "\n".join(problems)
    assert r.returncode == 0, r.stderr
    # every reviewed finding in the ignore file still matches one (none is stale)
    with (LINT_DIR / ".redocly.lint-ignore.yaml").open() as f:
        ignored = yaml.safe_load(f)
    listed = sum(len(ptrs) for rules in ignored.values() for ptrs in rules.values())
    assert report["totals"]["ignored"] == listed, \
        f"the ignore file lists {listed} findings but the linter ignored {report['totals']['ignored']}"


def cited_files(text):
    """Repository-looking file names in backticks or links: `gateway/server.c`, docs/x.md."""
    return set(re.findall(r"`((?:[\w.-]+/)+[\w.-]+\.(?:c|h|py|sh|sql|md|yaml|yml|json))`", text)) | \
        set(re.findall(r"\]\((?!https?://|#)([^)\s]+)\)", text))


def tracked_files():
    return subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def assert_cites_only_repository_files(rel, text, tracked):
    assert "/work/" not in text, f"{rel} points outside the repository"
    for name in ("CONTRACT.md", "DESIGN.md", "STYLE.md"):
        if not any(Path(t).name == name for t in tracked):
            assert name not in text, f"{rel} cites {name}, which is not in the repository"
    # a name under one of the repository's own folders must exist (outputs such as bench/… and
    # patterns such as functions/NAME.sql are not citations)
    top = {line.split("/", 1)[0] for line in tracked if "/" in line}
    missing = sorted(f for f in cited_files(text) if f.split("/")[0] in top and not re.search(r"NAME|NNNN", f)
                     and not (REPO / f.split("#")[0]).exists())
    assert not missing, f"{rel} cites files that are not in the repository: {missing}"


@pytest.mark.parametrize("rel", ["docs/openapi.yaml", "README.md"])
def test_cites_only_files_of_the_repository(rel):
    assert_cites_only_repository_files(rel, (REPO / rel).read_text(encoding="utf-8"), tracked_files())


DOC_PAGES = sorted(p.name for p in (REPO / "docs").glob("*.md"))


@pytest.mark.parametrize("name", DOC_PAGES)
def test_doc_pages_cite_only_files_of_the_repository(name):
    """docs/*.md keep the README's rule: file names in backticks are the repository's, every
    link leads to a file of it (relative to docs/), and none leads outside."""
    rel = f"docs/{name}"
    text = (REPO / rel).read_text(encoding="utf-8")
    assert not re.search(r"\]\([a-z]+:", text), f"{rel} links outside the repository"
    tracked = tracked_files()
    assert_cites_only_repository_files(rel, re.sub(r"\]\([^)]*\)", "]", text), tracked)
    links = re.findall(r"\]\((?!#)([^)\s]+)\)", text)
    missing = sorted(link for link in links if not (REPO / "docs" / link.split("#")[0]).exists())
    assert not missing, f"{rel} links to files that are not in the repository: {missing}"
