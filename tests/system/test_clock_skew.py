"""The gateway's host clock 10 minutes fast or slow (libfaketime, Debian `faketime`), PostgreSQL's
and the banks' right (issue 15). VietQR credit notifications are judged against the gateway's
own clock (300 s either way), so the bank's correctly stamped ones are refused with 401 and
change nothing, and one stamped by the gateway's clock is taken; everything else works: orders,
checkout at the three banks, VNPAY and MoMo notifications; order times (and so expiry) follow
the database's clock, and a payment's business day is the bank's payment time in
Asia/Ho_Chi_Minh."""
import email.utils
import os
import re
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from bankflow import *

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
VN = timezone(timedelta(hours=7))


def preload(lib):
    """LD_PRELOAD for the gateway under test: the sanitizers' build (make asan) needs its ASan
    runtime first in the library list, ahead of libfaketime, or it refuses to start."""
    ldd = subprocess.run(["ldd", os.environ.get("FEEGATE_BIN", "build/feegate")], capture_output=True,
                         text=True).stdout
    asan = re.search(r"^\s*libasan\.so\S* => (\S+)", ldd, re.M)
    return f"{asan.group(1)}:{lib}" if asan else lib


def parse_ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.mark.parametrize("skew_s", [600, -600])
def test_gateway_clock_skew(skew_s, gateway_factory, stack, sim):
    gw = gateway_factory(LD_PRELOAD=preload(LIBFAKETIME), FAKETIME=f"{skew_s:+d}", FAKETIME_DONT_FAKE_MONOTONIC="1",
                         FAKETIME_NO_CACHE="1", FEEGATE_SWEEP_INTERVAL_MS=200)
    api = Api(gw.url, stack.env["FEEGATE_API_KEY"])
    # the gateway's clock really is off (its Date header)
    r = requests.get(gw.url + "/healthz", timeout=5)
    gw_now = email.utils.parsedate_to_datetime(r.headers["Date"]).timestamp()
    assert abs(gw_now - time.time() - skew_s) < 5, (r.headers["Date"], skew_s)

    with sim.notifying(gw.url):
        # an order: its times are the database's, so expiry is right
        order = new_order(api, expires_in=120)
        created, expires = parse_ts(order["created_at"]), parse_ts(order["expires_at"])
        db_now = stack.scalar("SELECT now()")
        assert abs((created - db_now).total_seconds()) < 5, (order["created_at"], db_now)
        assert (expires - created).total_seconds() == 120, order
        time.sleep(1.0)  # five sweeps
        assert get_order(api, order["id"])["status"] == "created"
        assert "vnpay" in bank_buttons(checkout_html(order, gw.url))

        # VNPAY and MoMo, paid through banksim (their notifications carry no freshness window)
        for bank in ("vnpay", "momo"):
            o = new_order(api, amount=310000)
            started = start_payment(sim, o, bank, gw.url)
            assert approve(sim, started, o).status_code == 303
            paid = wait_status(api, o["id"], "succeeded")
            att = assert_single_payment(stack, paid, started["ref"], bank)
            paid_at, day = stack.query("SELECT paid_at, business_date::text FROM reconciliation_payments "
                                       "WHERE attempt_id = %s", (att["id"],))[0]
            assert abs(paid_at.timestamp() - time.time()) < 30, paid_at
            assert day == datetime.fromtimestamp(paid_at.timestamp(), VN).date().isoformat()

        # VietQR: the bank's notification stamped with the right time is 600 s from the
        # gateway's clock: refused, nothing changes
        o = new_order(api, amount=320000)
        started = start_payment(sim, o, "vietqr", gw.url)
        d = started["vietqr"]
        refused = send_vietqr_credit(stack.env, gw.url, f"SKEW{time.time_ns()}", d["account"], o["amount"],
                                     d["content"])
        assert refused.status_code == 401, refused.text
        assert get_order(api, o["id"])["status"] == "pending"
        assert transfers(stack, order_id=o["id"]) == []
        # 301 s beyond the gateway's clock: refused; at the gateway's clock: taken
        late = send_vietqr_credit(stack.env, gw.url, f"SKEW{time.time_ns()}", d["account"], o["amount"],
                                  d["content"], ts=int(time.time()) + skew_s + 301 * (1 if skew_s > 0 else -1))
        assert late.status_code == 401, late.text
        ok = send_vietqr_credit(stack.env, gw.url, f"SKEW{time.time_ns()}", d["account"], o["amount"],
                                d["content"], ts=int(time.time()) + skew_s)
        assert ok.status_code == 200 and ok.json() == {"status": "ok"}, ok.text
        paid = wait_status(api, o["id"], "succeeded")
        assert_single_payment(stack, paid, started["ref"], "vietqr")

        # a short order still expires on the database's clock: not before its time, and then
        stack.query("UPDATE orders SET expires_at = now() + interval '1 second' WHERE id = %s", (order["id"],))
        wait_status(api, order["id"], "expired", timeout=10)
    api.close()
    assert_ledger_ok(stack)
