"""Helpers for the staff tests: TOTP codes, console sign-in over plain HTTP, new staff."""
import base64
import hashlib
import hmac
import re
import struct
import time
import uuid

import requests


def totp(secret_b32, at=None, step=30):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


def csrf_of(html):
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def console_login(base, email, password, code=""):
    """(session, answer) after posting the sign-in form as a browser would."""
    s = requests.Session()
    r = s.get(base + "/console/login", timeout=15)
    assert r.status_code == 200, r.text
    r = s.post(base + "/console/login", data={"csrf": csrf_of(r.text), "email": email, "password": password,
                                              "totp": code}, allow_redirects=False, timeout=30)
    return s, r


def new_staff(stack, role, agencies=(), password=None, enrol_totp=False):
    """A staff member made with `feegate staff create`; returns dict(email, password, token, id, totp)."""
    import subprocess, os
    email = f"{role}.{uuid.uuid4().hex[:8]}@test.feegate"
    password = password or "mat-khau-" + uuid.uuid4().hex[:12]
    args = [stack.bin, "staff", "create", "--name", f"Cán bộ {role}", "--role", role, "--email", email,
            "--password-stdin"]
    for a in agencies:
        args += ["--agency", a]
    if enrol_totp:
        args.append("--enrol-totp")
    r = subprocess.run(args, input=password + "\n", capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, DATABASE_URL=stack.database_url))
    assert r.returncode == 0, r.stderr
    lines = [l.strip() for l in r.stdout.splitlines() if l.strip()]
    labelled = dict(l.split(": ", 1) for l in lines[:-1] if ": " in l)
    return {"email": email, "password": password, "token": lines[-1], "id": labelled["staff_id"],
            "totp": labelled.get("totp_secret"), "recovery": [l.split(": ", 1)[1] for l in lines
                                                               if l.startswith("recovery_code: ")]}


def audit_rows(base, token, **params):
    r = requests.get(base + "/v1/audit", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=15)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def wait_ready(base, timeout=20):
    """Until /readyz answers 200 several times in a row (every worker's Redis connection is up)."""
    ready, deadline = 0, time.time() + timeout
    while ready < 6 and time.time() < deadline:
        ready = ready + 1 if requests.get(base + "/readyz", timeout=5).status_code == 200 else 0
        time.sleep(0.05)
    assert ready >= 6, f"{base} is not ready"
