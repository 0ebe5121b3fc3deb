"""deploy/ha/ and deploy/k8s/, the files of the several-machine shape (docs/ha.md), checked
with the engines' own tools where this machine has them: HAProxy parses its config, Patroni
validates its members' files, etcd's members form one cluster with the tuned timing, the
Kubernetes manifests parse and hold the kinds an operator needs, the units pass
`systemd-analyze verify`. Uses no fixture of conftest.py. The tools come with
`deploy/install-deps.sh ha`; where one is missing its test is skipped, saying so."""
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
HA = REPO / "deploy" / "ha"
K8S = REPO / "deploy" / "k8s"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(tool):
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} is not installed (deploy/install-deps.sh ha)")
    return path


def test_haproxy_config_is_valid_and_checks_readyz():
    r = subprocess.run([need("haproxy"), "-c", "-f", str(HA / "haproxy.cfg")], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (HA / "haproxy.cfg").read_text()
    assert re.search(r"http-check send meth GET uri /readyz", text)
    assert len(re.findall(r"^\s+server gw\d+ \S+ check", text, re.M)) >= 2


@pytest.mark.parametrize("member", ["pg1", "pg2"])
def test_patroni_config_validates_with_a_synchronous_standby(member, tmp_path):
    text = (HA / f"patroni-{member}.yml").read_text()
    conf = yaml.safe_load(text)
    dcs = conf["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"], dcs
    assert conf["name"] == member and len(conf["etcd3"]["hosts"]) == 3
    # --validate-config binds the listen addresses: those of the plan are not on this machine
    local = re.sub(r"listen: [\d.]+:\d+", lambda m: f"listen: 127.0.0.1:{free_port()}", text)
    path = tmp_path / "patroni.yml"
    path.write_text(local)
    r = subprocess.run([need("patroni"), "--validate-config", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_etcd_members_form_one_cluster_tuned_for_a_busy_machine():
    need("etcd")
    confs = [yaml.safe_load((HA / f"etcd-{i}.yml").read_text()) for i in (1, 2, 3)]
    cluster = {c["initial-cluster"] for c in confs}
    assert len(cluster) == 1
    members = dict(p.split("=", 1) for p in cluster.pop().split(","))
    for c in confs:
        assert members[c["name"]] == c["initial-advertise-peer-urls"]
        assert c["heartbeat-interval"] == 500 and c["election-timeout"] == 5000
    assert len(members) == 3


def test_redis_and_sentinel_configs():
    need("redis-sentinel")
    sentinel = (HA / "sentinel.conf").read_text()
    m = re.search(r"^sentinel monitor (\S+) (\S+) (\d+) (\d+)$", sentinel, re.M)
    assert m and m.group(1) == "feegate" and m.group(4) == "2", sentinel
    assert re.search(r"^replicaof %s %s$" % (re.escape(m.group(2)), m.group(3)),
                     (HA / "redis-replica.conf").read_text(), re.M)


def test_kubernetes_manifests_parse_with_the_kinds_an_operator_needs():
    docs = [d for f in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    kinds = {d["kind"]: d for d in docs}
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Secret"} <= set(kinds)
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["lifecycle"]["preStop"]
    # the preStop pause and the gateway's drain fit in the grace period
    drain_s = int(kinds["ConfigMap"]["data"]["FEEGATE_SHUTDOWN_TIMEOUT_MS"]) / 1000
    assert pod["terminationGracePeriodSeconds"] > drain_s + 5
    sel = kinds["Deployment"]["spec"]["selector"]["matchLabels"]
    assert kinds["Service"]["spec"]["selector"] == sel
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == sel
    for v in kinds["Secret"]["stringData"].values():
        assert "CHANGE-ME" in v, "deploy/k8s/secret.yaml holds placeholders only"


@pytest.mark.parametrize("unit", sorted(p.name for p in HA.glob("*.service")))
def test_ha_units_verify(unit):
    tool = need("systemd-analyze")
    r = subprocess.run([tool, "verify", str(HA / unit)], capture_output=True, text=True, timeout=60)
    assert not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    for binary in re.findall(r"^ExecStart=(\S+)", (HA / unit).read_text(), re.M):
        assert Path(binary).exists(), f"{unit} runs {binary}, which is not installed"
