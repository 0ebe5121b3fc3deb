#!/usr/bin/env bash
# Builds the container image of deploy/Containerfile with podman, without a container registry:
# the Debian 12 base is made here with debootstrap from this machine's Debian mirror and
# imported. Then tries the image: migrate and serve against a throwaway PostgreSQL and Redis
# (deploy/stack.sh), /healthz and /readyz on the published port, banksim on its published
# port, the user it runs as and its HEALTHCHECK. What `make image` runs (not part of make test:
# it takes minutes and needs root).
#
# Usage: deploy/image.sh [build | smoke | all]      (default all)
# Environment (all optional):
#   IMAGE          image to build and try (default localhost/feegate:latest)
#   BASE_IMAGE     the debootstrap base's name (default localhost/feegate-base:bookworm);
#                  made only when missing
#   DEBIAN_MIRROR  mirror for debootstrap (default: the first bookworm source of apt here)
#   PODMAN_STORAGE storage driver (default vfs: works on any file system, no overlay needed)
#   PODMAN_RUNTIME OCI runtime (default runc when installed: crun refuses a host whose cgroups
#                  are in the hybrid v1/v2 layout)
# Exit status: non-zero on the first step that fails, which is named.
set -euo pipefail

log() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: ERROR: %s\n' "$*" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${IMAGE:-localhost/feegate:latest}
BASE_IMAGE=${BASE_IMAGE:-localhost/feegate-base:bookworm}
PODMAN=(podman --storage-driver "${PODMAN_STORAGE:-vfs}")
if [[ -n ${PODMAN_RUNTIME:-} ]]; then
  PODMAN+=(--runtime "$PODMAN_RUNTIME")
elif command -v runc >/dev/null 2>&1; then
  PODMAN+=(--runtime runc)
fi
# podman asks for open-file and process limits above this host's hard limits by default, and
# a runtime without CAP_SYS_RESOURCE cannot raise them: ask for what the host allows.
nofile=$(ulimit -Hn); [[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
ULIMITS=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)

# The URL of the first apt source for bookworm (deb822 .sources or one-line sources.list).
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u !~ /security/ {print u; exit}' "$f"
  done | head -n1 | grep . && return
  awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    head -n1 | grep .
}

make_base() {
  if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    log "base $BASE_IMAGE exists"
    return
  fi
  local mirror=${DEBIAN_MIRROR:-$(debian_mirror || true)}
  [[ -n $mirror ]] || die "no bookworm mirror in this machine's apt sources: set DEBIAN_MIRROR"
  local root
  root=$(mktemp -d "${TMPDIR:-/tmp}/feegate-base.XXXXXX")
  log "debootstrap bookworm (minbase) into $root"
  debootstrap --variant=minbase bookworm "$root/fs" "$mirror" >"$root/debootstrap.log" 2>&1 ||
    { tail -n 20 "$root/debootstrap.log" >&2; die "debootstrap failed"; }
  # the base's apt uses this machine's Debian sources (security and updates included)
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    cp /etc/apt/sources.list.d/*.sources "$root/fs/etc/apt/sources.list.d/"
    : >"$root/fs/etc/apt/sources.list"
  fi
  rm -rf "$root"/fs/var/lib/apt/lists/* "$root"/fs/var/cache/apt/archives/*.deb
  log "importing it as $BASE_IMAGE"
  tar --numeric-owner -C "$root/fs" -c . |
    "${PODMAN[@]}" import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf -- "$root"
}

build() {
  bash "$REPO/deploy/install-deps.sh" image
  make_base
  log "building $IMAGE from deploy/Containerfile"
  # --format docker keeps the HEALTHCHECK (the OCI format has no such field)
  "${PODMAN[@]}" build --pull=never --format docker "${ULIMITS[@]}" \
    --build-arg "BASE=$BASE_IMAGE" --build-arg "RUNTIME_BASE=$BASE_IMAGE" \
    -f "$REPO/deploy/Containerfile" -t "$IMAGE" "$REPO"
  log "built $IMAGE ($("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE") bytes)"
}

# ---------------------------------------------------------------- smoke run
STACK=
CONTAINERS=()
# remove_containers NAME...: the last first (it may use an earlier one's network), again while
# a container that just exited is still in podman's own cleanup
remove_containers() {
  local c i n
  for ((n = $# ; n >= 1; n--)); do
    c=${!n}
    for ((i = 0; i < 5; i++)); do
      "${PODMAN[@]}" rm -f -t 5 "$c" >/dev/null 2>&1 || true
      "${PODMAN[@]}" container exists "$c" || break
      sleep 1
    done
    ! "${PODMAN[@]}" container exists "$c" || log "warning: could not remove container $c"
  done
}

smoke_teardown() {
  ((${#CONTAINERS[@]} == 0)) || remove_containers "${CONTAINERS[@]}"
  if [[ -n $STACK ]]; then
    bash "$REPO/deploy/stack.sh" destroy "$STACK" >/dev/null 2>&1 || log "warning: stack destroy failed"
    rm -rf -- "$STACK"
  fi
}

getenv() { sed -n "s/^$2=//p" "$1" | head -n1 | sed "s/^'\(.*\)'$/\1/"; }

# wait_http URL: up to 30 s for a 200
wait_http() {
  local i
  for ((i = 0; i < 60; i++)); do
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    sleep 0.5
  done
  return 1
}

smoke() {
  "${PODMAN[@]}" image exists "$IMAGE" || die "$IMAGE is not built (deploy/image.sh build)"
  trap smoke_teardown EXIT
  # a smoke run killed before its teardown leaves its containers (this script's names only)
  remove_containers feegate-smoke-banksim feegate-smoke-gateway feegate-smoke-shared
  STACK=$(mktemp -d "${TMPDIR:-/tmp}/feegate-image.XXXXXX")
  chmod 755 "$STACK"
  log "starting a throwaway PostgreSQL and Redis in $STACK"
  STACK_FREE_PORTS=1 STACK_SKIP_APP=1 bash "$REPO/deploy/stack.sh" start "$STACK" >"$STACK/stack.log" 2>&1 ||
    { tail -n 20 "$STACK/stack.log" >&2; die "deploy/stack.sh start failed"; }
  # slirp4netns with allow_host_loopback: the containers reach this host's 127.0.0.1 as 10.0.2.2
  local db redis net=(--network slirp4netns:allow_host_loopback=true)
  db=$(getenv "$STACK/env" DATABASE_URL | sed 's/@127\.0\.0\.1:/@10.0.2.2:/')
  redis=$(getenv "$STACK/env" REDIS_URL | sed 's#//127\.0\.0\.1:#//10.0.2.2:#')
  [[ $db == *10.0.2.2* && $redis == *10.0.2.2* ]] || die "no DATABASE_URL or REDIS_URL in $STACK/env"
  local banks=(-e FEEGATE_VNPAY_TMN_CODE=SMOKETMN -e FEEGATE_VNPAY_HASH_SECRET=smoke-vnpay-secret
    -e FEEGATE_MOMO_PARTNER_CODE=SMOKEMOMO -e FEEGATE_MOMO_ACCESS_KEY=smoke-momo-access
    -e FEEGATE_MOMO_SECRET_KEY=smoke-momo-secret -e FEEGATE_VIETQR_WEBHOOK_SECRET=smoke-vietqr)

  log "feegate migrate in the image"
  "${PODMAN[@]}" run --rm --no-healthcheck "${ULIMITS[@]}" "${net[@]}" -e "DATABASE_URL=$db" "$IMAGE" feegate migrate ||
    die "feegate migrate in the image failed"

  log "banksim, port 8090 published"
  CONTAINERS+=(feegate-smoke-banksim)
  "${PODMAN[@]}" run -d --name feegate-smoke-banksim "${ULIMITS[@]}" "${net[@]}" -p 127.0.0.1::8090 \
    "${banks[@]}" "$IMAGE" banksim >/dev/null
  local bport
  bport=$("${PODMAN[@]}" port feegate-smoke-banksim 8090/tcp | sed 's/.*://')
  wait_http "http://127.0.0.1:$bport/healthz" || {
    "${PODMAN[@]}" logs feegate-smoke-banksim 2>&1 | tail -n 20 >&2
    die "banksim's published port 127.0.0.1:$bport does not answer /healthz"
  }
  log "ok: banksim answers on its published port ($bport)"

  log "the gateway, port 8080 published"
  CONTAINERS+=(feegate-smoke-gateway)
  "${PODMAN[@]}" run -d --name feegate-smoke-gateway "${ULIMITS[@]}" "${net[@]}" -p 127.0.0.1::8080 \
    -e "DATABASE_URL=$db" -e "REDIS_URL=$redis" -e "BANKSIM_URL=http://10.0.2.2:$bport" \
    -e FEEGATE_PUBLIC_URL=http://127.0.0.1:8080 "${banks[@]}" "$IMAGE" >/dev/null
  local gport body
  gport=$("${PODMAN[@]}" port feegate-smoke-gateway 8080/tcp | sed 's/.*://')
  wait_http "http://127.0.0.1:$gport/healthz" || {
    "${PODMAN[@]}" logs feegate-smoke-gateway 2>&1 | tail -n 20 >&2
    die "the gateway's published port 127.0.0.1:$gport does not answer /healthz"
  }
  log "ok: /healthz 200 on the published port ($gport)"
  body=$(curl -fsS --max-time 5 "http://127.0.0.1:$gport/readyz") || die "/readyz is not 200"
  log "ok: /readyz 200: $body"
  body=$(curl -fsS --max-time 5 "http://127.0.0.1:$gport/metrics") || die "/metrics is not 200"
  [[ $body == *$'\nfeegate_'* ]] || die "/metrics has no feegate_ figure"
  log "ok: /metrics"

  local uid
  uid=$("${PODMAN[@]}" exec feegate-smoke-gateway id -u)
  [[ $uid != 0 ]] || die "the gateway runs as root"
  log "ok: the gateway runs as uid $uid ($("${PODMAN[@]}" exec feegate-smoke-gateway id -un))"

  # run by hand: podman schedules the periodic check with systemd timers, which a host
  # without systemd lacks (podman then logs "unable to get systemd connection")
  local hc
  hc=$("${PODMAN[@]}" image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
  [[ $hc == *healthz* ]] || die "the image has no HEALTHCHECK (built without --format docker?): $hc"
  timeout 30 "${PODMAN[@]}" healthcheck run feegate-smoke-gateway || die "the gateway's HEALTHCHECK fails"
  timeout 30 "${PODMAN[@]}" healthcheck run feegate-smoke-banksim || die "banksim's HEALTHCHECK fails"
  log "ok: HEALTHCHECK passes in both containers"
  # and it checks the container's own program: banksim's fails once banksim is gone, though
  # the gateway still answers on the same loopback in a shared network (as in compose.yaml)
  CONTAINERS+=(feegate-smoke-shared)
  "${PODMAN[@]}" run -d --name feegate-smoke-shared "${ULIMITS[@]}" --network container:feegate-smoke-gateway \
    "${banks[@]}" "$IMAGE" banksim >/dev/null
  sleep 1
  timeout 30 "${PODMAN[@]}" healthcheck run feegate-smoke-shared || die "banksim's HEALTHCHECK fails beside the gateway"
  "${PODMAN[@]}" kill --signal STOP feegate-smoke-shared >/dev/null # it accepts, never answers
  if timeout 30 "${PODMAN[@]}" healthcheck run feegate-smoke-shared >/dev/null 2>&1; then
    die "banksim's HEALTHCHECK passes while banksim is stopped (it asked the gateway)"
  fi
  log "ok: in the gateway's network, banksim's HEALTHCHECK asks banksim"

  log "stopping the gateway (SIGTERM)"
  "${PODMAN[@]}" stop -t 20 feegate-smoke-gateway >/dev/null
  local rc
  rc=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' feegate-smoke-gateway)
  [[ $rc == 0 ]] || { "${PODMAN[@]}" logs feegate-smoke-gateway 2>&1 | tail -n 20 >&2; die "the gateway exited $rc on SIGTERM"; }
  log "ok: the gateway stopped cleanly on SIGTERM"
  log "smoke run passed"
}

case "${1:-all}" in
  build) build ;;
  smoke) smoke ;;
  all) build; smoke ;;
  *) die "usage: deploy/image.sh [build | smoke | all]" ;;
esac
