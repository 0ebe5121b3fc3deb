"""A signed notification that reuses a bank transaction id already recorded for another payment
is a conflict, not a replay: a txn_id_conflict case for finance, the bank's error answer, and
the payment it names left pending. A true replay stays a replay."""
import secrets

from bankflow import *


def test_vnpay_transaction_id_reused_for_another_payment_is_a_conflict(api, sim, gateway, stack):
    env = sim.stack.env
    first, second = new_order(api), new_order(api)
    a = start_payment(sim, first, "vnpay")
    b = start_payment(sim, second, "vnpay")
    txn = str(10_000_000 + secrets.randbelow(80_000_000))
    code, _ = vnpay_send_ipn(gateway.url, vnpay_ipn_query(env, a["ref"], first["amount"], txn))
    assert code == "00"
    assert get_order(api, first["id"])["status"] == "succeeded"

    conflicting = vnpay_ipn_query(env, b["ref"], second["amount"], txn)
    code, r = vnpay_send_ipn(gateway.url, conflicting)
    assert code == "99", r.text  # VNPAY's "other error", not "02 already confirmed"
    assert get_order(api, second["id"])["status"] == "pending"
    cases = [e for e in exception_rows(stack, order_id=second["id"]) if e["kind"] == "txn_id_conflict"]
    assert len(cases) == 1, cases
    assert cases[0]["bank_txn_id"] == txn and cases[0]["bank"] == "vnpay"
    assert cases[0]["attempt_id"] == attempt_of(get_order(api, second["id"]), b["ref"])["id"]

    # The bank retries its error: still one case, still pending.
    code, _ = vnpay_send_ipn(gateway.url, conflicting)
    assert code == "99"
    assert len([e for e in exception_rows(stack, order_id=second["id"]) if e["kind"] == "txn_id_conflict"]) == 1
    # The true replay of the first payment's notification is still a replay.
    code, _ = vnpay_send_ipn(gateway.url, vnpay_ipn_query(env, a["ref"], first["amount"], txn))
    assert code == "02"
    assert not [e for e in exception_rows(stack, order_id=first["id"])]
    # The second payment's own, new transaction id is applied normally.
    code, _ = vnpay_send_ipn(gateway.url, vnpay_ipn_query(env, b["ref"], second["amount"], str(int(txn) + 1)))
    assert code == "00"
    assert get_order(api, second["id"])["status"] == "succeeded"
    assert_ledger_ok(stack)
