#!/usr/bin/env python3
"""Signed VNPAY IPN query strings for the load generator's vnpay_ipn scenario.

  vnpay_ipn.py < attempts.tsv > ipn.txt
  then: loadgen --scenario vnpay_ipn --file ipn.txt ...

Each input line is `BANK_ORDER_REF AMOUNT_VND` (tab or space separated), the attempt's
vnp_TxnRef and the order's amount; each output line is the query string of one successful
payment notification for it (GET /ipn/vnpay?<line>), signed as docs/openapi.yaml says: hex
HMAC-SHA512 with the hash secret over the vnp_* parameters except vnp_SecureHash and
vnp_SecureHashType, empty ones dropped, sorted by name, name and value each encoded as PHP's
urlencode does (spaces as +), joined k=v with &. Reads FEEGATE_VNPAY_TMN_CODE and
FEEGATE_VNPAY_HASH_SECRET from the environment (the stack's env file).
"""
import datetime
import hashlib
import hmac
import os
import sys
from urllib.parse import quote_plus

VN_TZ = datetime.timezone(datetime.timedelta(hours=7))


def php_urlencode(s):
    # PHP leaves only letters, digits and -_. alone; Python would also leave ~
    return quote_plus(s, safe="").replace("~", "%7E")


def signed_query(params, secret):
    fields = sorted((k, v) for k, v in params.items()
                    if k.startswith("vnp_") and k not in ("vnp_SecureHash", "vnp_SecureHashType") and v != "")
    data = "&".join(f"{php_urlencode(k)}={php_urlencode(v)}" for k, v in fields)
    digest = hmac.new(secret.encode(), data.encode(), hashlib.sha512).hexdigest()
    return f"{data}&vnp_SecureHash={digest}"


def main():
    tmn = os.environ.get("FEEGATE_VNPAY_TMN_CODE")
    secret = os.environ.get("FEEGATE_VNPAY_HASH_SECRET")
    if not tmn or not secret:
        sys.exit("vnpay_ipn.py: FEEGATE_VNPAY_TMN_CODE and FEEGATE_VNPAY_HASH_SECRET must be set")
    now = datetime.datetime.now(VN_TZ)
    pay_date = now.strftime("%Y%m%d%H%M%S")
    batch = int(now.timestamp()) % 100000  # keeps bank transaction numbers apart across files
    out = sys.stdout
    for n, line in enumerate(sys.stdin, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not parts[1].isdigit():
            sys.exit(f"vnpay_ipn.py: line {n}: expected BANK_ORDER_REF AMOUNT_VND")
        ref, amount = parts[0], int(parts[1])
        params = {
            "vnp_TmnCode": tmn,
            "vnp_Amount": str(amount * 100),
            "vnp_BankCode": "NCB",
            "vnp_BankTranNo": f"VNP{batch:05d}{n:07d}",
            "vnp_CardType": "ATM",
            "vnp_OrderInfo": f"Thanh toan {ref}",
            "vnp_PayDate": pay_date,
            "vnp_ResponseCode": "00",
            "vnp_TransactionNo": f"{batch:05d}{n:07d}",
            "vnp_TransactionStatus": "00",
            "vnp_TxnRef": ref,
        }
        out.write(signed_query(params, secret) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
