#!/usr/bin/env bash
# Installs the Debian 12 packages feegate needs to build, run and test.
# Usage: deploy/install-deps.sh [--build | fuzz | image | ha]
#   --build  only what building the binaries needs (the container image's build stage)
#   fuzz     also libFuzzer's compiler and runtime (make fuzz)
#   image    also what building and trying the container image needs (make image)
#   ha       also the engines of the several-machine shape and its test (make ha): HAProxy,
#            Patroni, etcd, Redis Sentinel, ip(8) for the network namespaces
# Idempotent and fast: one dpkg-query; apt-get runs only when a package is missing.
set -euo pipefail

BUILD_PKGS=(
  # build
  build-essential pkg-config
  libevent-dev libpq-dev libssl-dev libjansson-dev libhiredis-dev libqrencode-dev
  # the HTTP/1.1 request parser of the server side (strict framing)
  libhttp-parser-dev
  # camt.053 treasury statements (streaming XML reader)
  libxml2-dev
  # settlement reports in XLSX; receipts' PDF (cairo + pango)
  libxlsxwriter-dev libcairo2-dev libpango1.0-dev
)
PKGS=(
  "${BUILD_PKGS[@]}"
  # unit tests
  libcmocka-dev
  # local stack (make run, system tests)
  postgresql postgresql-contrib redis-server
  # tests: Redis Sentinel failover (tests/system/test_ha_gateway.py)
  redis-sentinel
  # tests, benchmarks
  python3 python3-pytest python3-requests python3-psycopg python3-yaml wrk gnuplot-nox curl
  # tests: promtool (check metrics, check rules) for the operator's checks
  prometheus
  # tests: the README examples read answers with jq
  jq
  # tests: systemd-analyze verify of the units in deploy/
  systemd
  # settlement reports: the XLSX read back by the tests (openpyxl)
  python3-openpyxl
  # console tests in a headless browser (staff sign-in, roles, audit)
  chromium chromium-driver python3-selenium
  # receipts: the PDF's fonts and its test (pdftotext)
  fonts-dejavu-core poppler-utils
  # receipts and checkout: page tests in headless Chromium
  chromium chromium-driver python3-selenium
  # receipts: the tests check Ed25519 signatures independently of the C code
  python3-cryptography
  # tools the scripts use (ps, runuser/flock, ss)
  procps util-linux iproute2
  # memcheck over the unit tests (make valgrind)
  valgrind
  # clock-skew tests (the gateway under libfaketime)
  faketime
)

# tests: Node.js and npm install the pinned OpenAPI linter (tools/openapi-lint). Only when
# there is no npm: a Node.js from elsewhere that bundles npm conflicts with Debian's npm.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)

log() { printf 'install-deps: %s\n' "$*" >&2; }

case "${1:-}" in
  "") ;;
  --build) PKGS=("${BUILD_PKGS[@]}") ;;
  fuzz) PKGS+=(clang libclang-rt-14-dev) ;;
  # deploy/image.sh: podman, a Debian base made with debootstrap, runc (crun refuses hosts with
  # a hybrid cgroup layout), slirp4netns (the smoke run reaches this host's loopback)
  image) PKGS+=(podman debootstrap runc slirp4netns) ;;
  # deploy/ha/ and tests/ha/ (make ha): the load balancer, the PostgreSQL failover manager and
  # its consensus store (server and etcdctl), Redis' failover monitor, network namespaces;
  # python3-psycopg2 is Patroni's own driver (a dependency, named for clarity)
  ha) PKGS+=(haproxy patroni python3-psycopg2 etcd-server etcd-client redis-sentinel iproute2) ;;
  *) log "usage: deploy/install-deps.sh [--build | fuzz | image | ha]"; exit 2 ;;
esac

# Which of PKGS are not fully installed ("ii")?
missing_pkgs() {
  local -A ok=()
  local name status
  while IFS=$'\t' read -r name status; do
    [[ $status == ii* ]] && ok[${name%%:*}]=1
  done < <(dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\n' "${PKGS[@]}" 2>/dev/null || true)
  local p
  for p in "${PKGS[@]}"; do
    [[ -n ${ok[$p]:-} ]] || printf '%s\n' "$p"
  done
}

mapfile -t MISSING < <(missing_pkgs)
if ((${#MISSING[@]} == 0)); then
  log "all ${#PKGS[@]} packages are installed"
  exit 0
fi

log "missing: ${MISSING[*]}"

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    log "ERROR: not root and sudo is not available; install as root: apt-get install ${MISSING[*]}"
    exit 1
  fi
  SUDO=(sudo)
fi

APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)

log "running apt-get update"
"${APT[@]}" update -q
log "installing ${#MISSING[@]} package(s)"
"${APT[@]}" install -y -q --no-install-recommends "${MISSING[@]}"

mapfile -t STILL < <(missing_pkgs)
if ((${#STILL[@]} > 0)); then
  log "ERROR: still not installed after apt-get: ${STILL[*]}"
  exit 1
fi
log "done"
