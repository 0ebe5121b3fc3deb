"""README.md's shell examples, run in order against the test stack, so the README cannot drift
from the code: every ```sh block runs, with `. .run/env` reading the stack's own env, unless the
line before it says why it is not run (`<!-- example not run by ...: reason -->`). curl runs with
--fail-with-body, so an answer of 400 or more (a 409 for a cancelled order's checkout, say)
fails the example."""
import re
import shlex
import subprocess

from bankflow import banksim  # noqa: F401  (the fixture: banksim notifying the shared gateway)
from conftest import REPO

SKIP = re.compile(r"<!-- example not run by tests/system/test_readme\.py: (.+?) -->")


def sh_blocks():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            j = lines.index("```", i + 1)
            reason = SKIP.search(lines[i - 1]) if i else None
            blocks.append((i + 1, "\n".join(lines[i + 1:j]), reason.group(1) if reason else None))
            i = j
        i += 1
    return blocks


def test_every_sh_block_is_run_or_says_why_not():
    blocks = sh_blocks()
    assert blocks, "README.md has no ```sh examples"
    assert any(reason is None for _, _, reason in blocks), "no README example is run"
    for line, _, reason in blocks:
        assert reason is None or len(reason) > 10, f"README.md:{line}: give the reason"


def test_readme_examples_run_in_order(stack, gateway, banksim, tmp_path):  # noqa: F811
    (tmp_path / ".run").mkdir()
    (tmp_path / ".run" / "env").write_text(
        "".join(f"{k}={shlex.quote(v)}\n" for k, v in stack.env.items()), encoding="utf-8")
    prelude = "set -euo pipefail\ncurl() { command curl --fail-with-body --max-time 20 \"$@\"; }\n"
    script = prelude + "\n".join(f"# README.md:{line}\n{code}" for line, code, reason in sh_blocks()
                                 if reason is None)
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"a README example failed (rc {r.returncode}):\n{r.stderr[-3000:]}\n{r.stdout[-3000:]}"
    out = r.stdout
    # what the examples show happened
    # (curl prints bodies without a final newline, so the status jq prints may end a line)
    assert re.search(r"(^|[}\]])succeeded$", out, re.M), out[:3000]
    assert '"status":"succeeded"' in out.replace(" ", "") or '"status": "succeeded"' in out, out[-2000:]
    assert '"status":"cancelled"' in out.replace(" ", ""), out[-2000:]
    assert "feegate_http_requests_total" in out
