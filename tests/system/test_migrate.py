"""`feegate migrate`: numbered migrations once each, function files again whenever they change."""
import shutil
import subprocess
import os

import psycopg

from bankflow import *
from test_ledger import REPO, scratch_db  # noqa: F401  (a fixture)

PROBE = "\nCREATE OR REPLACE FUNCTION feegate_migrate_probe() RETURNS int LANGUAGE sql AS $$ SELECT {} $$;\n"


def migrate(stack, url, folder):
    env = dict(os.environ, DATABASE_URL=url, FEEGATE_MIGRATIONS=str(folder))
    return subprocess.run([stack.bin, "migrate"], capture_output=True, text=True, env=env, timeout=120)


def probe(url):
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT feegate_migrate_probe()").fetchone()[0]


def test_function_files_are_applied_again_when_they_change(stack, scratch_db, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", folder)
    numbered = sorted(p.name for p in folder.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    functions = sorted(p.name for p in (folder / "functions").glob("*.sql"))
    assert functions, "no function files"

    r = migrate(stack, scratch_db, folder)
    assert r.returncode == 0, r.stderr
    applied = [l.split(" ", 1)[1] for l in r.stdout.splitlines() if l.startswith("applied ")]
    # numbered first, in order, then every function file
    assert applied == numbered + ["functions/" + f for f in functions], applied
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

    # a numbered migration is never applied twice: a changed one is only reported
    first = folder / numbered[0]
    first.write_text(first.read_text() + "\n-- edited after release\n")
    target.write_text(original + PROBE.format(2))
    r = migrate(stack, scratch_db, folder)
    assert r.returncode == 0, r.stderr
    assert f"warning: migration {numbered[0]} changed since it was applied" in r.stderr
    assert "0 migration(s)" in r.stdout
