"""`feegate migrate`: a new database from schema.sql, an existing one by the history files it
lacks, numbered migrations once each, function files again whenever they change; both paths
give the same schema, and a database made before the squash upgrades in place with its data."""
import difflib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import uuid

import psycopg

from bankflow import *
from test_ledger import scratch_db  # noqa: F401  (a fixture)

PROBE = "\nCREATE OR REPLACE FUNCTION feegate_migrate_probe() RETURNS int LANGUAGE sql AS $$ SELECT {} $$;\n"
MIGRATIONS = REPO / "migrations"
# The last commit whose migrations/ had every numbered migration beside functions/ and no
# schema.sql: a database it made is what production databases are before the squash.
BEFORE_SQUASH = "0c0b3b3a0dcb65b67ae1ef169802e89472984fd1"
NUMBERED = "[0-9][0-9][0-9][0-9]_*.sql"


def migrate(stack, url, folder):
    env = dict(os.environ, DATABASE_URL=url, FEEGATE_MIGRATIONS=str(folder))
    return subprocess.run([stack.bin, "migrate"], capture_output=True, text=True, env=env, timeout=120)


def applied_of(r):
    return [l.split(" ", 1)[1] for l in r.stdout.splitlines() if l.startswith("applied ")]


def probe(url):
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT feegate_migrate_probe()").fetchone()[0]


def pg_dump(stack, url, *args):
    r = subprocess.run([f"{stack.facts['PG_BIN']}/pg_dump", "--no-owner", "--no-privileges", *args, url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def schema_of(stack, url):
    """pg_dump --schema-only without its comments, settings and per-dump \\restrict key."""
    skip = ("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")
    return [l for l in pg_dump(stack, url, "--schema-only").splitlines() if l and not l.startswith(skip)]


def rows_of(stack, url):
    """Every row but schema_migrations' (the seed rows, in a new database), times masked."""
    text = pg_dump(stack, url, "--data-only", "--exclude-table=schema_migrations")
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00", "<time>", text)
    skip = ("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")
    return [l for l in text.splitlines() if l and not l.startswith(skip)]


def assert_same(a, b, what):
    assert a == b, f"{what} differ:\n" + "\n".join(list(difflib.unified_diff(a, b, lineterm="", n=2))[:80])


def numbered_records(url):
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT version, name, sha256 FROM schema_migrations WHERE version ~ '^[0-9]{4}$' "
                            "ORDER BY version").fetchall()


def test_function_files_are_applied_again_when_they_change(stack, scratch_db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder)
    history = sorted(p.name for p in (folder / "history").glob(NUMBERED))
    numbered = sorted(p.name for p in folder.glob(NUMBERED))
    functions = sorted(p.name for p in (folder / "functions").glob("*.sql"))
    assert functions, "no function files"
    assert history, "no history"

    r = migrate(stack, scratch_db, folder)
    assert r.returncode == 0, r.stderr
    # a new database: schema.sql in place of history, then the numbered migrations since, in
    # order, then every function file
    assert applied_of(r) == ["schema.sql"] + numbered + ["functions/" + f for f in functions], r.stdout
    assert f"recorded {len(history)} history migration(s) as applied with it" in r.stdout
    assert f"{len(numbered)} migration(s) and {len(functions)} function file(s) applied" in r.stdout

    r = migrate(stack, scratch_db, folder)
    assert r.returncode == 0 and "0 migration(s) and 0 function file(s) applied" in r.stdout, r.stdout + r.stderr

    # an edited function file is applied again, and only it
    target = folder / "functions" / functions[0]
    original = target.read_text()
    target.write_text(original + PROBE.format(2))
    r = migrate(stack, scratch_db, folder)
    assert r.returncode == 0, r.stderr
    assert [l for l in r.stdout.splitlines() if l.startswith("applied ")] == [f"applied functions/{functions[0]}"]
    assert probe(scratch_db) == 2

    # a broken one fails, names itself, and changes nothing (the file is all or nothing)
    target.write_text(original + PROBE.format(3) + "\nCREATE OR REPLACE FUNCTION broken( AS;\n")
    r = migrate(stack, scratch_db, folder)
    assert r.returncode != 0 and f"functions/{functions[0]} failed" in r.stderr, r.stdout + r.stderr
    assert probe(scratch_db) == 2

    # a numbered migration is never applied twice: a changed one is only reported, in history/
    # as beside schema.sql
    first = folder / "history" / history[0]
    first.write_text(first.read_text() + "\n-- edited after release\n")
    target.write_text(original + PROBE.format(2))
    r = migrate(stack, scratch_db, folder)
    assert r.returncode == 0, r.stderr
    assert f"warning: migration history/{history[0]} changed since it was applied" in r.stderr
    assert "0 migration(s)" in r.stdout

    # the next numbered migration goes beside schema.sql and is applied once, on top
    last = int((history + numbered)[-1][:4])
    following = folder / f"{last + 1:04d}_migrate_probe.sql"
    following.write_text("CREATE TABLE migrate_probe (id int PRIMARY KEY);\n")
    r = migrate(stack, scratch_db, folder)
    assert r.returncode == 0 and applied_of(r) == [following.name], r.stdout + r.stderr
    following.write_text(following.read_text() + "-- edited after release\n")
    r = migrate(stack, scratch_db, folder)
    assert r.returncode == 0 and f"warning: migration {following.name} changed since it was applied" in r.stderr
    assert "0 migration(s)" in r.stdout

    # two files with one number (two branches that each took the next one) are refused
    twin = folder / f"{last + 1:04d}_another_probe.sql"
    twin.write_text("CREATE TABLE another_probe (id int);\n")
    r = migrate(stack, scratch_db, folder)
    assert r.returncode != 0 and "share the number" in r.stderr, r.stdout + r.stderr
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('another_probe')").fetchone()[0] is None


def test_a_new_database_from_schema_sql_is_the_one_history_builds(stack, tmp_path):
    replay = tmp_path / "replay"
    shutil.copytree(MIGRATIONS, replay)
    (replay / "schema.sql").unlink()  # without it a new database replays history/
    history = sorted(p.name for p in (replay / "history").glob(NUMBERED))
    numbered = sorted(p.name for p in replay.glob(NUMBERED))
    functions = sorted(p.name for p in (replay / "functions").glob("*.sql"))
    with scratch_database(stack) as fresh, scratch_database(stack) as replayed:
        r = migrate(stack, fresh, MIGRATIONS)
        assert r.returncode == 0 and applied_of(r)[0] == "schema.sql", r.stdout + r.stderr
        r = migrate(stack, replayed, replay)
        assert r.returncode == 0, r.stderr
        assert applied_of(r) == (["history/" + h for h in history] + numbered
                                 + ["functions/" + f for f in functions]), r.stdout
        assert_same(schema_of(stack, replayed), schema_of(stack, fresh), "the schemas (pg_dump --schema-only)")
        assert_same(rows_of(stack, replayed), rows_of(stack, fresh), "the seed rows")
        assert numbered_records(replayed) == numbered_records(fresh)

    # What a new database reads has one definition of each function, all in function files:
    # schema.sql and the numbered migrations since name no stored function but to drop one.
    defined = {}
    sources = [MIGRATIONS / "schema.sql"] + sorted(MIGRATIONS.glob(NUMBERED)) + sorted(
        (MIGRATIONS / "functions").glob("*.sql"))
    for path in sources:
        code = re.sub(r"--[^\n]*", "", path.read_text())
        if path.parent.name != "functions":
            assert not re.search(r"CREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|TRIGGER|VIEW)", code, re.I), path
            assert not re.findall(r"feegate_\w+", re.sub(r"DROP FUNCTION[^;]*;", "", code)), path
        for name, args in re.findall(r"CREATE\s+OR\s+REPLACE\s+FUNCTION\s+(\w+)\s*\(([^)]*)\)", code):
            key = (name, " ".join(args.split()))
            defined.setdefault(key, []).append(path.name)
    assert len(defined) > 50, defined
    twice = {k: v for k, v in defined.items() if len(v) > 1}
    assert not twice, twice


def refund(conn, order_id, staff_id, amount):
    """Asks for a refund of the order and, when created, confirms it as the bank would."""
    rid = str(uuid.uuid4())
    got = conn.execute("SELECT r_outcome, r_refundable FROM feegate_refund_create(%s, NULL, %s, 'upgrade', %s, %s, "
                       "%s, NULL, NULL)", (order_id, amount, staff_id, rid, "UPG" + rid[:8])).fetchone()
    if got[0] == "created":
        done = conn.execute("SELECT r_outcome FROM feegate_refund_complete(%s, true, %s, NULL, %s)",
                            (rid, "RF" + rid[:8], staff_id)).fetchone()
        assert done == ("succeeded",), done
    return got


def contents(conn):
    """What the money path wrote, row for row."""
    return [conn.execute(q).fetchall() for q in (
        "SELECT id, status, amount, updated_at FROM orders ORDER BY id",
        "SELECT id, status, bank_txn_id FROM attempts ORDER BY id",
        "SELECT id, seq, amount, code, hash FROM ledger_transfers ORDER BY seq",
        "SELECT seq, hash FROM ledger_chain",
        "SELECT id, type, payload FROM webhook_deliveries ORDER BY id",
        "SELECT id, amount, status FROM refunds ORDER BY id",
        "SELECT name, type FROM ledger_accounts ORDER BY id",
        "SELECT version, sha256 FROM schema_migrations WHERE version ~ '^[0-9]{4}$' ORDER BY 1")]


def test_a_database_made_before_the_squash_upgrades_in_place(stack, tmp_path):
    archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE_SQUASH, "migrations"],
                             capture_output=True, timeout=60)
    assert archive.returncode == 0, f"the repository's history back to {BEFORE_SQUASH} is needed: {archive.stderr}"
    tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(tmp_path)
    before = tmp_path / "migrations"
    assert not (before / "schema.sql").exists()
    # its numbered migrations are history/, byte for byte: nothing recorded changes
    old_numbered = sorted(p.name for p in before.glob(NUMBERED))
    assert old_numbered == sorted(p.name for p in (MIGRATIONS / "history").glob(NUMBERED))
    for name in old_numbered:
        assert (before / name).read_bytes() == (MIGRATIONS / "history" / name).read_bytes(), name

    with scratch_database(stack) as url, scratch_database(stack) as fresh:
        r = migrate(stack, url, before)
        assert r.returncode == 0, r.stdout + r.stderr
        # data of every kind the money path writes: an agency, a portal with webhooks, a paid
        # order, finance staff, a refund confirmed
        order_id, _ = scratch_paid_order(stack, url, "UPG", "FGUPGRADE001", "910001",
                                         webhook_url="http://127.0.0.1:9/hook")
        cli_on(stack, url, "staff", "create", "--name", "Upgrade finance", "--role", "finance")
        with psycopg.connect(url, autocommit=True) as conn:
            staff_id = conn.execute("SELECT id FROM staff").fetchone()[0]
            assert refund(conn, order_id, staff_id, 20000) == ("created", 30000)
            kept = contents(conn)
            assert kept[0][0][1] == "partially_refunded" and len(kept[2]) == 2 and len(kept[4]) == 2, kept

        r = migrate(stack, url, MIGRATIONS)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "warning" not in r.stderr, r.stderr  # no recorded migration changed
        applied = applied_of(r)
        assert "schema.sql" not in applied and not [a for a in applied if a.startswith("history/")], applied
        assert [a for a in applied if not a.startswith("functions/")] == sorted(
            p.name for p in MIGRATIONS.glob(NUMBERED)), applied
        gone = sorted(set(p.name for p in (before / "functions").glob("*.sql"))
                      - set(p.name for p in (MIGRATIONS / "functions").glob("*.sql")))
        assert [l for l in r.stdout.splitlines() if l.startswith("forgot ")] == [
            f"forgot functions/{g} (no longer in the folder)" for g in gone], r.stdout

        with psycopg.connect(url, autocommit=True) as conn:
            now = contents(conn)
            assert now[:6] == kept[:6]
            # the accounts, and the receivable migration 0025 opened for the agency
            assert now[6][:len(kept[6])] == kept[6]
            assert now[6][len(kept[6]):] == [("agency:UPG:receivable", "agency_receivable")], now[6]
            assert now[7][:len(kept[7])] == kept[7]  # the history's records, as they were
            # the upgraded functions work on the old rows: the rest is refundable, no more
            assert refund(conn, order_id, staff_id, 30001) == ("too_much", 30000)
            assert refund(conn, order_id, staff_id, 30000) == ("created", 0)
            assert conn.execute("SELECT status FROM orders WHERE id = %s", (order_id,)).fetchone() == ("refunded",)
        check = ledger_check(stack, url)
        assert check.returncode == 0 and "ok, 3 transfers" in check.stdout, check.stdout + check.stderr

        # and it is now the database a new install makes
        r = migrate(stack, fresh, MIGRATIONS)
        assert r.returncode == 0, r.stderr
        assert_same(schema_of(stack, url), schema_of(stack, fresh), "the schemas (pg_dump --schema-only)")
