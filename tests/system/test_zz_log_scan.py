"""The last system test (the file name sorts last): every log written during the run — each
gateway's, banksim's, the fault proxy's, PostgreSQL's (run with log_parameter_max_length = 0,
log_parameter_max_length_on_error = 0 and terse errors, deploy/stack.sh) and Redis's — holds no
API key, staff token, password, secret, checkout token or payer identity number (issue 15).

What is looked for: the stack's own keys, tokens, bank secrets and database password; every
client's webhook secret, every order's checkout token and every payer id number in the database
(whatever test made them); and anything shaped like one of feegate's keys or tokens (`fgk_`,
`fgs_`), since those issued by tests are stored only as hashes."""
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from conftest import REPO

KEY_SHAPE = re.compile(r"fg[ks]_[A-Za-z0-9_-]{16,}")
WORD = re.compile(r"[A-Za-z0-9_-]{16,}")
DIGITS = re.compile(r"\d{6,}")


def log_files(stack):
    files = {p for p in stack.dir.rglob("*.log") if p.is_file()}
    for key in ("PG_LOG", "REDIS_LOG"):
        if stack.facts.get(key):
            p = Path(stack.facts[key])
            if p.is_file():
                files.add(p)
    return sorted(files)


def secrets(stack):
    named = {}
    for k in ("FEEGATE_API_KEY", "FEEGATE_AGENCY_TOKEN", "FEEGATE_FINANCE_TOKEN", "FEEGATE_FINANCE2_TOKEN",
              "FEEGATE_ADMIN_TOKEN", "FEEGATE_AUDITOR_TOKEN", "FEEGATE_VNPAY_HASH_SECRET",
              "FEEGATE_MOMO_SECRET_KEY", "FEEGATE_MOMO_ACCESS_KEY", "FEEGATE_VIETQR_WEBHOOK_SECRET"):
        if stack.env.get(k):
            named[stack.env[k]] = k
    for k, v in stack.env.items():
        if "PASSWORD" in k and v:
            named[v] = k
    password = unquote(urlsplit(stack.database_url).password or "")
    if password:
        named[password] = "database password"
    for (s,) in stack.query("SELECT webhook_secret FROM clients WHERE webhook_secret IS NOT NULL"):
        named[s] = "a client's webhook secret"
    return {k: v for k, v in named.items() if len(k) >= 8}


def test_no_secret_in_any_log(stack):
    files = log_files(stack)
    names = {p.name for p in files}
    assert any(n.startswith("gateway") for n in names) and "banksim.log" in names, names
    assert stack.facts.get("PG_LOG") and Path(stack.facts["PG_LOG"]) in files, files
    named = secrets(stack)
    tokens = {t for (t,) in stack.query("SELECT checkout_token FROM orders")}
    ids = {i for (i,) in stack.query("SELECT payer->>'id_number' FROM orders WHERE payer->>'id_number' IS NOT NULL")
           if len(i) >= 6}
    findings = []
    scanned = 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        scanned += len(text)
        for i, line in enumerate(text.splitlines(), 1):
            where = f"{path.name}:{i}"
            for m in KEY_SHAPE.finditer(line):
                findings.append(f"{where}: a key or token ({m.group(0)[:8]}…)")
            for value, what in named.items():
                if value in line:
                    findings.append(f"{where}: {what}")
            for w in WORD.findall(line):
                if w in tokens:
                    findings.append(f"{where}: a checkout token")
            for d in DIGITS.findall(line):
                if d in ids:
                    findings.append(f"{where}: a payer id number")
    print(f"\nlog scan: {len(files)} files, {scanned} bytes, {len(tokens)} checkout tokens, {len(ids)} payer id "
          f"numbers, {len(named)} named secrets: {len(findings)} findings")
    assert scanned > 0
    assert not findings, f"{len(findings)} secrets in logs, e.g.:\n" + "\n".join(findings[:30])
