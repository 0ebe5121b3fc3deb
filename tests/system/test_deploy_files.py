"""deploy/'s container and service files, checked without a container engine (this machine has
none running): what the Containerfile COPYs exists, the commands it runs are the project's own,
its runtime stage installs the package of every library the binaries link against and runs as
a user with a HEALTHCHECK; the compose file wires gateway, PostgreSQL, Redis and banksim; the
systemd units pass `systemd-analyze verify` and name only things that exist.

This module uses no fixture of conftest.py, so it starts no PostgreSQL, Redis or gateway."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BUILD = REPO / "build"


def stages():
    """[(name, [(instruction, argument)])] of deploy/Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Containerfile").read_text())
    out = []
    args = {}  # ARGs before the first FROM: the base images' defaults
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, arg = line.partition(" ")
        instr = instr.upper()
        if instr == "ARG" and not out:
            name, _, default = arg.partition("=")
            args[name.strip()] = default.strip()
            continue
        if instr == "FROM":
            arg = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], arg)
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", arg, re.I)
            out.append((m.group(2) or m.group(1), []))
        out[-1][1].append((instr, arg.strip()))
    return out


def test_containerfile_copies_only_what_exists():
    for name, steps in stages():
        for instr, arg in steps:
            if instr == "COPY" and not arg.startswith("--from"):
                *sources, _ = arg.split()
                for src in sources:
                    assert (REPO / src).exists(), f"{name}: COPY {src}: not in the repository"


def test_build_stage_runs_the_projects_own_commands_and_no_test_stack():
    build = dict(stages())["build"]
    runs = [arg for instr, arg in build if instr == "RUN"]
    assert any("deploy/install-deps.sh --build" in r for r in runs), runs
    r = subprocess.run(["bash", str(DEPLOY / "install-deps.sh"), "--no-such-flag"], capture_output=True, text=True)
    assert r.returncode == 2 and "--build" in r.stderr, "install-deps.sh no longer knows --build"
    script = (DEPLOY / "install-deps.sh").read_text()
    build_pkgs = re.search(r"BUILD_PKGS=\((.*?)\)", script, re.S).group(1)
    for heavy in ("postgresql", "redis-server", "python3", "prometheus", "libcmocka"):
        assert heavy not in build_pkgs, f"the build stage would install {heavy}"
    made = [r for r in runs if r.startswith("make ")]
    assert made, runs
    targets = re.findall(r"build/(\w+)", made[0])
    makefile = (REPO / "Makefile").read_text()
    for t in targets:
        assert f"$(BUILD)/{t}:" in makefile, f"Makefile has no target build/{t}"
    copied = [arg for _, steps in stages() for instr, arg in steps if instr == "COPY" and arg.startswith("--from=build")]
    for arg in copied:
        for src in arg.split()[1:-1]:
            rel = src.removeprefix("/src/")
            assert rel.startswith("build/") and rel.removeprefix("build/") in targets or (REPO / rel).exists(), arg


def needed_libraries(binary):
    out = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def package_of(soname):
    for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"):
        for path in (Path(d) / soname,):
            if path.exists():
                for candidate in (str(path), str(path.resolve())):
                    r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
                    if r.returncode == 0:
                        return r.stdout.split(":")[0]
    raise AssertionError(f"no Debian package holds {soname}")


def test_runtime_stage_installs_every_linked_library_and_runs_as_a_user_with_a_healthcheck():
    runtime = stages()[-1][1]
    installs = " ".join(arg for instr, arg in runtime if instr == "RUN")
    packages = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", installs.split("--no-install-recommends", 1)[1].split("&&")[0]))
    for binary in ("feegate", "banksim"):
        path = BUILD / binary
        assert path.exists(), f"{path} is not built (run make)"
        for soname in needed_libraries(path):
            pkg = package_of(soname)
            assert pkg in packages or pkg == "libc6", f"{binary} needs {soname} from {pkg}, not installed"
    instrs = dict((i, a) for i, a in runtime)
    assert instrs["USER"].split(":")[0] not in ("root", "0"), instrs["USER"]
    assert "/healthz" in instrs["HEALTHCHECK"] and "curl" in packages
    env = instrs["ENV"]
    assert "FEEGATE_LISTEN=0.0.0.0" in env and "BANKSIM_HOST=0.0.0.0" in env, env
    assert set(instrs["EXPOSE"].split()) == {"8080", "8090"}
    assert "FROM" in instrs and "slim" in instrs["FROM"]
    # the environment names it sets are settings the programs read
    config = (REPO / "lib" / "config.c").read_text() + (REPO / "tools" / "banksim" / "main.c").read_text()
    for name in re.findall(r"(\w+)=", env):
        assert f'"{name}"' in config, f"{name} is read by nobody"


def test_compose_runs_gateway_postgres_redis_and_banksim():
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert {"gateway", "postgres", "redis", "banksim", "migrate"} <= set(services)
    gw = services["gateway"]
    env = gw["environment"]
    assert "@postgres:5432/" in env["DATABASE_URL"] and env["REDIS_URL"].startswith("redis://redis:")
    assert "8080:8080" in gw["ports"] and "8090:8090" in gw["ports"]
    assert services["banksim"]["network_mode"] == "service:gateway"
    assert services["banksim"]["command"] == ["banksim"]
    assert services["migrate"]["command"] == ["feegate", "migrate"]
    assert services["migrate"]["build"]["dockerfile"] == "deploy/Containerfile"
    assert (DEPLOY / services["migrate"]["build"]["context"]).resolve() == REPO  # relative to the file
    for key in ("FEEGATE_VNPAY_HASH_SECRET", "FEEGATE_MOMO_SECRET_KEY", "FEEGATE_VIETQR_WEBHOOK_SECRET"):
        assert env[key] == services["banksim"]["environment"][key], key
    settings = (REPO / "lib" / "config.c").read_text() + (REPO / "gateway" / "banks.c").read_text() + \
        (REPO / "adapters" / "vnpay.c").read_text() + (REPO / "adapters" / "momo.c").read_text() + \
        (REPO / "adapters" / "vietqr.c").read_text()
    for name in env:
        assert f'"{name}"' in settings, f"compose sets {name}, which the gateway does not read"


UNITS = ["feegate.service", "banksim.service", "feegate-ledger-check.service", "feegate-ledger-check.timer",
         "feegate-ledger-check-incremental.service", "feegate-ledger-check-incremental.timer"]


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_units_verify_and_name_only_what_exists(unit):
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze (Debian systemd) is needed to check the units"
    r = subprocess.run([tool, "verify", str(DEPLOY / unit)], capture_output=True, text=True, timeout=60)
    problems = [l for l in (r.stdout + r.stderr).splitlines()
                if l.strip() and not re.search(r"Command /usr/local/bin/(feegate|banksim) is not executable", l)]
    assert not problems, problems
    text = (DEPLOY / unit).read_text()
    for word in ("exports", "uploads"):
        assert not re.search(rf"\b{word}\b", text, re.I), f"{unit} mentions {word}, which feegate does not have"
    for sub in re.findall(r"ExecStart=/usr/local/bin/feegate\s+(\w+)", text):
        assert f'"{sub}"' in (REPO / "gateway" / "main.c").read_text(), sub
    for rel in re.findall(r"\bdeploy/[\w.-]+", text):
        assert (REPO / rel).exists(), f"{unit} names {rel}, which is not in the repository"
