#!/usr/bin/env bash
# Installs the Debian 12 packages feegate needs to build, run and test.
# Usage: deploy/install-deps.sh
# Idempotent and fast: one dpkg-query; apt-get runs only when a package is missing.
set -euo pipefail

PKGS=(
  # build
  build-essential pkg-config
  libevent-dev libpq-dev libssl-dev libjansson-dev libhiredis-dev libqrencode-dev
  libcmocka-dev
  # local stack (make run, system tests)
  postgresql postgresql-contrib redis-server
  # tests, benchmarks
  python3 python3-pytest python3-requests python3-psycopg python3-yaml wrk gnuplot-nox curl
  # tools the scripts use (ps, runuser/flock, ss)
  procps util-linux iproute2
  # clock-skew tests (the gateway under libfaketime)
  faketime
)

log() { printf 'install-deps: %s\n' "$*" >&2; }

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
