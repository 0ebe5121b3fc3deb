#!/usr/bin/env bash
# feegate local stack: its own PostgreSQL 15 cluster and Redis on loopback, free ports,
# migrations and demo data. Shared by `make run` (deploy/run.sh) and the system tests.
#
# Usage: deploy/stack.sh COMMAND DIR
#   start      start PostgreSQL and Redis (creating them if needed), migrate, seed once,
#              write DIR/env (the .run/env keys the README lists) and DIR/stack.env (operational facts)
#   stop       stop Redis and PostgreSQL (ok if already stopped)
#   pg-stop    stop PostgreSQL only          pg-start     start it again, same port and data
#   redis-stop stop Redis only               redis-start  start it again, same port
#   destroy    stop, then remove all state (including the PostgreSQL folder outside DIR)
#   status     print what is running
#
# Environment (all optional):
#   FEEGATE_BIN         gateway binary (default <repo>/build/feegate)
#   FEEGATE_MIGRATIONS  migrations folder (default <repo>/migrations)
#   FEEGATE_PORT        gateway port (default 8080 if free, else a free port; 0 = free port)
#   BANKSIM_PORT        bank simulator port (default the previous one if free, else free)
#   STACK_FREE_PORTS=1  always pick free ports for the gateway and banksim (tests)
#   STACK_SKIP_APP=1    only PostgreSQL and Redis: no migrate, no seed (env then lacks the
#                       seeded keys)
#   PG_BIN              PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
set -euo pipefail

PROG=stack.sh
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_SUPERUSER=postgres
DB_NAME=feegate
DB_ROLE=feegate

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
  sed -n '4,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------- small helpers

# getkv FILE KEY: value of KEY=value in FILE (unquoted or single-quoted), empty if none.
getkv() {
  local file=$1 key=$2 line v
  [[ -r $file ]] || return 0
  line=$(grep -E "^${key}=" "$file" | tail -n 1) || return 0
  v=${line#*=}
  if [[ $v == \'*\' ]]; then v=${v:1:${#v}-2}; fi
  printf '%s' "$v"
}

# A value safe to write unquoted in a shell/systemd/dotenv file.
kv_line() {
  local k=$1 v=$2
  if [[ $v =~ ^[A-Za-z0-9_./:@%+=,~-]*$ ]]; then
    printf '%s=%s\n' "$k" "$v"
  elif [[ $v != *\'* && $v != *$'\n'* ]]; then
    printf "%s='%s'\n" "$k" "$v"
  else
    die "value of $k has characters that cannot be written to an env file"
  fi
}

# write_env FILE K1 V1 K2 V2 ...: atomically, mode 600.
write_env() {
  local file=$1; shift
  local tmp="$file.tmp.$$"
  (
    umask 077
    : >"$tmp"
    while (($#)); do kv_line "$1" "$2" >>"$tmp"; shift 2; done
  )
  chmod 600 "$tmp"
  mv -f "$tmp" "$file"
}

# rand_str CHARSET LEN (CHARSET as for tr, e.g. 'A-Z0-9')
rand_str() {
  local set=$1 n=$2 s
  s=$(set +o pipefail; LC_ALL=C tr -dc "$set" </dev/urandom 2>/dev/null | head -c "$n")
  ((${#s} == n)) || die "could not read random bytes"
  printf '%s' "$s"
}

# Is TCP port $1 free to listen on? Listeners only: connections of a just-stopped server
# (TIME_WAIT) must not make its own port look taken; ports are picked below the ephemeral range.
port_free() {
  local p=$1 out
  out=$(ss -Htln "sport = :$p" 2>/dev/null) || return 1
  [[ -z $out ]]
}

PICKED_PORTS=" "
# pick_port VAR [PREVIOUS]: set VAR to PREVIOUS when it is a usable free port, else to a
# random free port below the ephemeral range; never one already picked in this run.
pick_port() {
  local __var=$1 prev=${2:-} lo hi min=20000 max p i
  if [[ $prev =~ ^[0-9]+$ ]] && ((prev > 0 && prev < 65536)) &&
    [[ $PICKED_PORTS != *" $prev "* ]] && port_free "$prev"; then
    PICKED_PORTS+="$prev "
    printf -v "$__var" '%s' "$prev"
    return 0
  fi
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range || { lo=32768; hi=60999; }
  if ((lo - 1 > min + 1000)); then max=$((lo - 1)); else min=$((hi + 1)); max=65000; fi
  for ((i = 0; i < 500; i++)); do
    p=$((min + (RANDOM * 32768 + RANDOM) % (max - min + 1)))
    [[ $PICKED_PORTS == *" $p "* ]] && continue
    if port_free "$p"; then
      PICKED_PORTS+="$p "
      printf -v "$__var" '%s' "$p"
      return 0
    fi
  done
  die "no free TCP port found between $min and $max"
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# Run a command as the PostgreSQL OS user (from /, which that user can always enter).
as_pg() {
  if is_root; then
    (cd / && runuser -u "$PG_USER" -- "$@")
  else
    (cd / && "$@")
  fi
}

# ---------------------------------------------------------------- state layout

# set_paths DIR: absolute paths of everything under DIR (no side effects).
set_paths() {
  [[ -n ${1:-} ]] || usage
  DIR=$(cd "$1" && pwd -P)
  ENV_FILE=$DIR/env
  STACK_ENV=$DIR/stack.env
  SEED_ENV=$DIR/seed.env
  LOCK_FILE=$DIR/.stack.lock
  REDIS_DIR=$DIR/redis
  REDIS_CONF=$REDIS_DIR/redis.conf
  REDIS_PIDFILE=$REDIS_DIR/redis.pid
  REDIS_LOG=$REDIS_DIR/redis.log
  PG_LINK=$DIR/pg
  DIR_HASH=$(printf '%s' "$DIR" | sha256sum | cut -c1-12)
  PG_EXTERNAL=/var/tmp/feegate-pg-$DIR_HASH
}

lock_dir() {
  mkdir -p "$DIR"
  exec 9>"$LOCK_FILE"
  if ! flock -w 120 9; then die "another $PROG is working on $DIR (lock $LOCK_FILE)"; fi
}

# The OS user PostgreSQL runs as: the caller, or (as root) `postgres`, created if missing.
choose_pg_user() {
  if ! is_root; then
    PG_USER=$(id -un)
    return
  fi
  PG_USER=postgres
  if ! id -u "$PG_USER" >/dev/null 2>&1; then
    log "creating system user $PG_USER to run PostgreSQL (it refuses to run as root)"
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin "$PG_USER"
  fi
}

# PG_ROOT: folder holding data/, sock/ and log/, owned by PG_USER. Either DIR/pg or, when
# PG_USER cannot reach DIR, /var/tmp/feegate-pg-<hash> linked as DIR/pg.
resolve_pg_root() {
  local create=$1
  if [[ -L $PG_LINK ]]; then
    PG_ROOT=$(readlink "$PG_LINK")
    if [[ $create == yes && ! -d $PG_ROOT ]]; then make_external_root; fi
  elif [[ -d $PG_LINK ]]; then
    PG_ROOT=$PG_LINK
  elif [[ $create == yes ]]; then
    if is_root; then
      mkdir -p "$PG_LINK"
      chown "$PG_USER:" "$PG_LINK"
      chmod 700 "$PG_LINK"
      if runuser -u "$PG_USER" -- test -w "$PG_LINK" 2>/dev/null; then
        PG_ROOT=$PG_LINK
      else
        rmdir "$PG_LINK"
        log "user $PG_USER cannot reach $DIR; keeping PostgreSQL data in $PG_EXTERNAL"
        make_external_root
        ln -s "$PG_EXTERNAL" "$PG_LINK"
        PG_ROOT=$PG_EXTERNAL
      fi
    else
      mkdir -m 700 "$PG_LINK"
      PG_ROOT=$PG_LINK
    fi
  else
    PG_ROOT=
    return 0
  fi
  PGDATA=$PG_ROOT/data
  PG_LOG=$PG_ROOT/log/postgresql.log
  PG_SOCKET_DIR=$PG_ROOT/sock
  # A unix socket path must fit in 107 bytes: fall back to a short folder when it does not.
  if ((${#PG_SOCKET_DIR} > 80)); then PG_SOCKET_DIR=/tmp/feegate-pg-$DIR_HASH-sock; fi
}

make_external_root() {
  local target=$PG_EXTERNAL
  if [[ -e $target || -L $target ]]; then
    [[ -d $target && ! -L $target ]] || die "$target exists and is not a folder"
    local owner
    owner=$(stat -c %U "$target")
    [[ $owner == "$PG_USER" ]] || die "$target is owned by $owner, not $PG_USER; remove it"
  else
    mkdir -m 700 "$target"
    is_root && chown "$PG_USER:" "$target"
  fi
  return 0
}

# ---------------------------------------------------------------- PostgreSQL

pg_running() {
  [[ -n ${PGDATA:-} && -f $PGDATA/PG_VERSION ]] || return 1
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

pg_init_if_needed() {
  [[ -x $PG_BIN/initdb ]] || die "PostgreSQL 15 not found in $PG_BIN (run deploy/install-deps.sh)"
  if [[ -f $PGDATA/PG_VERSION ]]; then return 0; fi
  log "creating PostgreSQL cluster in $PGDATA"
  as_pg mkdir -p -m 700 "$PGDATA" "$PG_ROOT/log"
  local out
  if ! out=$(as_pg "$PG_BIN/initdb" -D "$PGDATA" -U "$PG_SUPERUSER" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-instructions 2>&1); then
    printf '%s\n' "$out" >&2
    die "initdb failed"
  fi
  printf "\n# feegate stack settings (deploy/stack.sh rewrites feegate.conf at every start)\ninclude_if_exists = 'feegate.conf'\n" |
    as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null
  PG_CREATED=1
}

pg_write_conf() {
  local port=$1
  as_pg mkdir -p -m 700 "$PG_ROOT/log"
  if [[ $PG_SOCKET_DIR != "$PG_ROOT"/* ]]; then
    # short socket folder outside PG_ROOT: must be ours
    if [[ -e $PG_SOCKET_DIR || -L $PG_SOCKET_DIR ]]; then
      [[ -d $PG_SOCKET_DIR && ! -L $PG_SOCKET_DIR && $(stat -c %U "$PG_SOCKET_DIR") == "$PG_USER" ]] ||
        die "$PG_SOCKET_DIR exists and is not a folder of $PG_USER"
    else
      mkdir -m 700 "$PG_SOCKET_DIR"
      is_root && chown "$PG_USER:" "$PG_SOCKET_DIR"
    fi
  else
    as_pg mkdir -p -m 700 "$PG_SOCKET_DIR"
  fi
  as_pg tee "$PGDATA/feegate.conf" >/dev/null <<EOF
# Written by deploy/stack.sh at every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_SOCKET_DIR'
unix_socket_permissions = 0700
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
# Statement parameters (keys, tokens, payer data) never reach the server log, even on error.
log_parameter_max_length = 0
log_parameter_max_length_on_error = 0
log_error_verbosity = terse
EOF
  # Local socket (reachable only by $PG_USER and root): trust. TCP: passwords only.
  as_pg tee "$PGDATA/pg_hba.conf" >/dev/null <<EOF
# Written by deploy/stack.sh at every start; edits are lost.
local   all   all                  trust
host    all   all   127.0.0.1/32   scram-sha-256
EOF
}

pg_start() {
  local port=$1
  if pg_running; then
    log "PostgreSQL already running on 127.0.0.1:$port"
    return 0
  fi
  port_free "$port" || die "PostgreSQL port $port is taken by another program"
  log "starting PostgreSQL on 127.0.0.1:$port"
  # 9>&-: the server must not inherit the lock on DIR
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t 60 start >/dev/null 2>&1 9>&-; then
    log "PostgreSQL failed to start; last lines of $PG_LOG:"
    tail -n 60 "$PG_LOG" >&2 || true
    die "PostgreSQL did not start"
  fi
  local i
  for ((i = 0; i < 100; i++)); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2; then return 0; fi
    sleep 0.1
  done
  tail -n 60 "$PG_LOG" >&2 || true
  die "PostgreSQL does not answer on 127.0.0.1:$port"
}

pg_stop() {
  if ! pg_running; then return 0; fi
  log "stopping PostgreSQL"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1; then
    tail -n 30 "$PG_LOG" >&2 || true
    die "PostgreSQL did not stop"
  fi
}

# psql as the superuser over the private unix socket.
pg_sql() {
  as_pg "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PG_PORT" \
    -U "$PG_SUPERUSER" "$@"
}

# Role feegate with a new password at every start; database feegate owned by it.
# Sets DB_CREATED=1 when the database did not exist.
pg_setup_db() {
  DB_PASSWORD=$(rand_str 'A-Za-z0-9' 32)
  pg_sql -d postgres <<EOF >/dev/null
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_ROLE') THEN
    CREATE ROLE $DB_ROLE LOGIN;
  END IF;
END \$\$;
ALTER ROLE $DB_ROLE WITH LOGIN PASSWORD '$DB_PASSWORD';
EOF
  DB_CREATED=0
  if [[ -z $(pg_sql -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
    log "creating database $DB_NAME"
    pg_sql -d postgres -c "CREATE DATABASE $DB_NAME OWNER $DB_ROLE" >/dev/null
    DB_CREATED=1
  fi
}

pg_recreate_db() {
  log "dropping and recreating database $DB_NAME (its demo secrets were lost)"
  pg_sql -d postgres -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null
  pg_sql -d postgres -c "CREATE DATABASE $DB_NAME OWNER $DB_ROLE" >/dev/null
}

# ---------------------------------------------------------------- Redis

redis_pid() {
  local pid comm
  [[ -r $REDIS_PIDFILE ]] || return 1
  pid=$(tr -dc '0-9' <"$REDIS_PIDFILE")
  [[ -n $pid ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [[ $comm == redis* ]] || return 1
  printf '%s' "$pid"
}

redis_write_conf() {
  local port=$1
  mkdir -p "$REDIS_DIR" && chmod 700 "$REDIS_DIR"
  cat >"$REDIS_CONF" <<EOF
# Written by deploy/stack.sh at every start; edits are lost.
bind 127.0.0.1
protected-mode yes
port $port
daemonize yes
supervised no
pidfile $REDIS_PIDFILE
logfile $REDIS_LOG
dir $REDIS_DIR
save ""
appendonly no
stop-writes-on-bgsave-error no
EOF
}

redis_start() {
  local port=$1 i
  if redis_pid >/dev/null; then
    log "Redis already running on 127.0.0.1:$port"
  else
    port_free "$port" || die "Redis port $port is taken by another program"
    command -v redis-server >/dev/null || die "redis-server not found (run deploy/install-deps.sh)"
    log "starting Redis on 127.0.0.1:$port"
    rm -f "$REDIS_PIDFILE"
    if ! redis-server "$REDIS_CONF" </dev/null >/dev/null 2>&1 9>&-; then
      tail -n 30 "$REDIS_LOG" >&2 || true
      die "redis-server failed to start"
    fi
  fi
  for ((i = 0; i < 100; i++)); do
    if [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then return 0; fi
    sleep 0.1
  done
  tail -n 30 "$REDIS_LOG" >&2 || true
  die "Redis does not answer on 127.0.0.1:$port"
}

redis_stop() {
  local pid i
  pid=$(redis_pid) || return 0
  log "stopping Redis"
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$REDIS_PIDFILE"; return 0; }
    sleep 0.1
  done
  log "Redis did not stop in 10 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$REDIS_PIDFILE"
}

# ---------------------------------------------------------------- seed

# seed_set KEY VALUE: record in seed.env (mode 600).
seed_set() {
  local key=$1 val=$2 tmp="$SEED_ENV.tmp.$$"
  (
    umask 077
    { grep -vE "^${key}=" "$SEED_ENV" 2>/dev/null || true; kv_line "$key" "$val"; } >"$tmp"
  )
  chmod 600 "$tmp"
  mv -f "$tmp" "$SEED_ENV"
}
seed_get() { getkv "$SEED_ENV" "$1"; }

# run_cli OUTVAR ARGS...: run the feegate CLI, stdout into OUTVAR; loud on failure.
run_cli() {
  local __var=$1; shift
  local __out __errf __rc=0
  __errf=$(mktemp)
  __out=$("$FEEGATE_BIN" "$@" 2>"$__errf") || __rc=$?
  if ((__rc != 0)); then
    log "command failed (exit $__rc): $FEEGATE_BIN $*"
    cat "$__errf" >&2
    rm -f "$__errf"
    exit 1
  fi
  rm -f "$__errf"
  printf -v "$__var" '%s' "$__out"
}

# last non-empty line, without a "label: " prefix if the CLI added one
last_value() {
  local line
  line=$(printf '%s\n' "$1" | sed '/^[[:space:]]*$/d' | tail -n 1)
  line=$(printf '%s' "$line" | sed -E 's/^[A-Za-z_ ]+:[[:space:]]+//; s/^[[:space:]]+//; s/[[:space:]]+$//')
  printf '%s' "$line"
}
labelled_value() { # labelled_value OUTPUT LABEL
  printf '%s\n' "$1" | sed -nE "s/^[[:space:]]*$2:[[:space:]]*//p" | head -n 1 | sed -E 's/[[:space:]]+$//'
}

seed_credentials() {
  if [[ -z $(seed_get FEEGATE_VNPAY_TMN_CODE) ]]; then
    log "generating bank credentials"
    seed_set FEEGATE_VNPAY_TMN_CODE "$(rand_str 'A-Z0-9' 8)"
    seed_set FEEGATE_VNPAY_HASH_SECRET "$(rand_str 'A-Z0-9' 32)"
    seed_set FEEGATE_MOMO_PARTNER_CODE "MOMO$(rand_str 'A-Z0-9' 8)"
    seed_set FEEGATE_MOMO_ACCESS_KEY "$(rand_str 'A-Za-z0-9' 16)"
    seed_set FEEGATE_MOMO_SECRET_KEY "$(rand_str 'A-Za-z0-9' 32)"
    seed_set FEEGATE_VIETQR_WEBHOOK_SECRET "$(rand_str 'a-f0-9' 48)"
  fi
}

# Each step is recorded in seed.env as it completes, so a failed seed resumes where it stopped.
seed_demo() {
  local out v
  if [[ $(seed_get SEED_AGENCY_XNC) != 1 ]]; then
    log "seeding agency XNC"
    run_cli out agency create --code XNC --name "Cục Quản lý Xuất nhập cảnh" \
      --account "970436:0011001234567:CUC QUAN LY XUAT NHAP CANH" --banks vnpay,momo,vietqr \
      --tax-code 0100100079
    seed_set SEED_AGENCY_XNC 1
  fi
  if [[ $(seed_get SEED_AGENCY_DKKD) != 1 ]]; then
    log "seeding agency DKKD"
    run_cli out agency create --code DKKD --name "Phòng Đăng ký kinh doanh" \
      --account "970415:1122334455:PHONG DANG KY KINH DOANH" --banks vnpay,momo,vietqr \
      --tax-code 0101234567-001
    seed_set SEED_AGENCY_DKKD 1
  fi
  if [[ -z $(seed_get FEEGATE_API_KEY) ]]; then
    log "seeding portal client"
    run_cli out client create --name "Cổng Dịch vụ công" --agency XNC --agency DKKD \
      --webhook-url "$BANKSIM_URL/portal/webhook"
    v=$(last_value "$out"); [[ -n $v ]] || die "client create printed no API key"
    local cid wsec
    cid=$(labelled_value "$out" client_id)
    wsec=$(labelled_value "$out" webhook_secret)
    [[ -n $cid ]] || log "warning: client create printed no client_id"
    [[ -n $wsec ]] || log "warning: client create printed no webhook_secret"
    seed_set FEEGATE_CLIENT_ID "$cid"
    seed_set FEEGATE_WEBHOOK_SECRET "$wsec"
    seed_set SEED_WEBHOOK_URL "$BANKSIM_URL/portal/webhook"
    seed_set FEEGATE_API_KEY "$v"
  fi
  seed_token FEEGATE_AGENCY_TOKEN "agency staff" --name "XNC staff" --role agency --agency XNC
  seed_token FEEGATE_FINANCE_TOKEN "finance staff" --name "Finance" --role finance
  # reconciliation: a second finance member approves what the first proposes (maker-checker)
  seed_token FEEGATE_FINANCE2_TOKEN "a second finance staff member" --name "Finance 2" --role finance
  seed_set FEEGATE_AGENCY_ACCOUNT 0011001234567
  seed_set SEED_DONE 1
}

# Console sign-in staff and the admin and auditor tokens (also added to data seeded before them).
seed_staff() {
  local out v pw
  if [[ -z $(seed_get FEEGATE_AGENCY_PASSWORD) ]]; then
    log "seeding agency console staff"
    pw=$(rand_str 'A-Za-z0-9' 20)
    run_cli out staff create --name "Nguyễn Thị Lan" --role agency --agency XNC \
      --email canbo.xnc@dichvucong.test --password-stdin <<<"$pw"
    seed_set FEEGATE_AGENCY_EMAIL canbo.xnc@dichvucong.test
    seed_set FEEGATE_AGENCY_PASSWORD "$pw"
  fi
  if [[ -z $(seed_get FEEGATE_FINANCE_PASSWORD) ]]; then
    log "seeding finance console staff"
    pw=$(rand_str 'A-Za-z0-9' 20)
    run_cli out staff create --name "Trần Văn Minh" --role finance \
      --email taichinh@dichvucong.test --password-stdin --enrol-totp <<<"$pw"
    v=$(labelled_value "$out" totp_secret); [[ -n $v ]] || die "staff create printed no totp_secret"
    seed_set FEEGATE_FINANCE_EMAIL taichinh@dichvucong.test
    seed_set FEEGATE_FINANCE_PASSWORD "$pw"
    seed_set FEEGATE_FINANCE_TOTP_SECRET "$v"
  fi
  seed_token FEEGATE_ADMIN_TOKEN "admin staff" --name "Quản trị hệ thống" --role admin
  seed_token FEEGATE_AUDITOR_TOKEN "auditor staff" --name "Kiểm toán viên" --role auditor
}

# A staff member made with `staff create ARGS...`, its token kept as KEY; nothing when KEY is
# seeded already.
seed_token() {
  local key=$1 what=$2 out v
  shift 2
  [[ -z $(seed_get "$key") ]] || return 0
  log "seeding $what"
  run_cli out staff create "$@"
  v=$(last_value "$out"); [[ -n $v ]] || die "staff create printed no token"
  seed_set "$key" "$v"
}

# ---------------------------------------------------------------- commands

load_stack_env() {
  [[ -f $STACK_ENV ]] || return 1
  PG_USER=$(getkv "$STACK_ENV" PG_USER)
  PGDATA=$(getkv "$STACK_ENV" PGDATA)
  PG_ROOT=$(getkv "$STACK_ENV" PG_ROOT)
  PG_PORT=$(getkv "$STACK_ENV" PG_PORT)
  PG_LOG=$(getkv "$STACK_ENV" PG_LOG)
  PG_SOCKET_DIR=$(getkv "$STACK_ENV" PG_SOCKET_DIR)
  REDIS_PORT=$(getkv "$STACK_ENV" REDIS_PORT)
  local b; b=$(getkv "$STACK_ENV" PG_BIN); [[ -n $b ]] && PG_BIN=$b
  return 0
}

write_stack_env() {
  write_env "$STACK_ENV" \
    STACK_DIR "$DIR" \
    PGDATA "$PGDATA" \
    PG_ROOT "$PG_ROOT" \
    PG_BIN "$PG_BIN" \
    PG_PORT "$PG_PORT" \
    PG_SOCKET_DIR "$PG_SOCKET_DIR" \
    PG_USER "$PG_USER" \
    PG_SUPERUSER "$PG_SUPERUSER" \
    PG_LOG "$PG_LOG" \
    REDIS_PORT "$REDIS_PORT" \
    REDIS_PIDFILE "$REDIS_PIDFILE" \
    REDIS_CONF "$REDIS_CONF" \
    REDIS_LOG "$REDIS_LOG"
}

cmd_start() {
  lock_dir
  local prev_pg_port prev_redis_port prev_banksim_port prev_feegate_port
  prev_pg_port=$(getkv "$STACK_ENV" PG_PORT)
  prev_redis_port=$(getkv "$STACK_ENV" REDIS_PORT)
  prev_banksim_port=$(getkv "$ENV_FILE" BANKSIM_PORT)
  prev_feegate_port=$(getkv "$ENV_FILE" FEEGATE_PORT)

  local skip_app=${STACK_SKIP_APP:-0}
  if [[ $skip_app != 1 ]]; then
    FEEGATE_BIN=${FEEGATE_BIN:-$REPO/build/feegate}
    FEEGATE_MIGRATIONS=${FEEGATE_MIGRATIONS:-$REPO/migrations}
    [[ $FEEGATE_BIN == /* ]] || FEEGATE_BIN=$PWD/$FEEGATE_BIN
    [[ $FEEGATE_MIGRATIONS == /* ]] || FEEGATE_MIGRATIONS=$PWD/$FEEGATE_MIGRATIONS
    [[ -x $FEEGATE_BIN ]] || die "gateway binary $FEEGATE_BIN not found (run make, or set FEEGATE_BIN)"
    [[ -d $FEEGATE_MIGRATIONS ]] || die "migrations folder $FEEGATE_MIGRATIONS not found"
    export FEEGATE_BIN FEEGATE_MIGRATIONS
  fi

  # --- PostgreSQL and Redis: ports first (the previous ones when still free), then start
  choose_pg_user
  PG_CREATED=0
  resolve_pg_root yes
  pg_init_if_needed
  local pg_up=0 redis_up=0
  if pg_running; then
    pg_up=1
    PG_PORT=$(sed -nE 's/^port = ([0-9]+)$/\1/p' "$PGDATA/feegate.conf" 2>/dev/null | tail -n 1)
    [[ -n $PG_PORT ]] || PG_PORT=$prev_pg_port
    PICKED_PORTS+="$PG_PORT "
  else
    pick_port PG_PORT "$prev_pg_port"
  fi
  if redis_pid >/dev/null && [[ -n $prev_redis_port ]]; then
    redis_up=1
    REDIS_PORT=$prev_redis_port
    PICKED_PORTS+="$REDIS_PORT "
  else
    pick_port REDIS_PORT "$prev_redis_port"
  fi
  ((pg_up)) || pg_write_conf "$PG_PORT"
  ((redis_up)) || redis_write_conf "$REDIS_PORT"
  write_stack_env
  pg_start "$PG_PORT"
  redis_start "$REDIS_PORT"

  # --- database, role, fresh password
  pg_setup_db
  DATABASE_URL="postgresql://$DB_ROLE:$DB_PASSWORD@127.0.0.1:$PG_PORT/$DB_NAME"
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"

  # --- gateway and banksim ports
  local free_ports=${STACK_FREE_PORTS:-0}
  if [[ $free_ports == 1 || ${FEEGATE_PORT:-} == 0 ]]; then
    # a free port (the previous one when still free, but never the default 8080)
    [[ $prev_feegate_port == 8080 ]] && prev_feegate_port=
    pick_port FEEGATE_PORT "$prev_feegate_port"
  elif [[ -n ${FEEGATE_PORT:-} ]]; then
    [[ $FEEGATE_PORT =~ ^[0-9]+$ ]] || die "FEEGATE_PORT must be a number"
    port_free "$FEEGATE_PORT" || log "warning: port $FEEGATE_PORT (FEEGATE_PORT) is in use now"
    PICKED_PORTS+="$FEEGATE_PORT "
  elif [[ $PICKED_PORTS != *" 8080 "* ]] && port_free 8080; then
    FEEGATE_PORT=8080
    PICKED_PORTS+="8080 "
  else
    pick_port FEEGATE_PORT "$prev_feegate_port"
    log "port 8080 is taken; the gateway will use $FEEGATE_PORT"
  fi
  local seeded_banksim_port
  seeded_banksim_port=$(seed_get SEED_WEBHOOK_URL | sed -nE 's#^http://127\.0\.0\.1:([0-9]+)/.*#\1#p')
  if [[ $free_ports == 1 || ${BANKSIM_PORT:-} == 0 ]]; then
    pick_port BANKSIM_PORT "${seeded_banksim_port:-$prev_banksim_port}"
  elif [[ -n ${BANKSIM_PORT:-} ]]; then
    [[ $BANKSIM_PORT =~ ^[0-9]+$ ]] || die "BANKSIM_PORT must be a number"
    port_free "$BANKSIM_PORT" || log "warning: port $BANKSIM_PORT (BANKSIM_PORT) is in use now"
    PICKED_PORTS+="$BANKSIM_PORT "
  else
    # keep the port the demo client's webhook URL was seeded with
    pick_port BANKSIM_PORT "${seeded_banksim_port:-$prev_banksim_port}"
  fi
  FEEGATE_URL="http://127.0.0.1:$FEEGATE_PORT"
  BANKSIM_URL="http://127.0.0.1:$BANKSIM_PORT"

  # --- migrations and demo data
  if [[ $skip_app != 1 ]]; then
    if [[ $PG_CREATED == 1 || $DB_CREATED == 1 ]] && [[ -f $SEED_ENV ]]; then
      log "new database: forgetting the old demo data in $SEED_ENV"
      rm -f "$SEED_ENV"
    elif [[ ! -f $SEED_ENV && $DB_CREATED == 0 ]]; then
      pg_recreate_db
    fi
    seed_credentials
    local k
    for k in FEEGATE_VNPAY_TMN_CODE FEEGATE_VNPAY_HASH_SECRET FEEGATE_MOMO_PARTNER_CODE \
      FEEGATE_MOMO_ACCESS_KEY FEEGATE_MOMO_SECRET_KEY FEEGATE_VIETQR_WEBHOOK_SECRET; do
      printf -v "$k" '%s' "$(seed_get "$k")"
      export "${k?}"
    done
    # the receipt signing key (Ed25519), kept across restarts like the data it signs
    FEEGATE_RECEIPT_KEY=$DIR/receipt-key.pem
    if [[ ! -f $FEEGATE_RECEIPT_KEY ]]; then
      log "generating the receipt signing key"
      "$FEEGATE_BIN" receipt keygen "$FEEGATE_RECEIPT_KEY" >/dev/null || die "cannot generate $FEEGATE_RECEIPT_KEY"
    fi
    export DATABASE_URL REDIS_URL FEEGATE_URL FEEGATE_PORT BANKSIM_URL BANKSIM_PORT
    log "applying migrations from $FEEGATE_MIGRATIONS"
    local out
    run_cli out migrate
    [[ -n $out ]] && printf '%s\n' "$out" | sed 's/^/  migrate: /' >&2
    if [[ $(seed_get SEED_DONE) != 1 ]]; then
      seed_demo
    fi
    seed_staff
    local wh
    wh=$(seed_get SEED_WEBHOOK_URL)
    if [[ -n $wh && $wh != "$BANKSIM_URL/portal/webhook" ]]; then
      log "warning: the demo client's webhook URL is $wh, but banksim now listens on $BANKSIM_URL"
    fi
    write_env "$ENV_FILE" \
      FEEGATE_URL "$FEEGATE_URL" \
      FEEGATE_PORT "$FEEGATE_PORT" \
      FEEGATE_API_KEY "$(seed_get FEEGATE_API_KEY)" \
      FEEGATE_CLIENT_ID "$(seed_get FEEGATE_CLIENT_ID)" \
      FEEGATE_WEBHOOK_SECRET "$(seed_get FEEGATE_WEBHOOK_SECRET)" \
      FEEGATE_AGENCY XNC \
      FEEGATE_AGENCY_2 DKKD \
      FEEGATE_AGENCY_TOKEN "$(seed_get FEEGATE_AGENCY_TOKEN)" \
      FEEGATE_FINANCE_TOKEN "$(seed_get FEEGATE_FINANCE_TOKEN)" \
      FEEGATE_FINANCE2_TOKEN "$(seed_get FEEGATE_FINANCE2_TOKEN)" \
      FEEGATE_AGENCY_ACCOUNT "$(seed_get FEEGATE_AGENCY_ACCOUNT)" \
      FEEGATE_CONSOLE_URL "$FEEGATE_URL/console/" \
      FEEGATE_FINANCE_EMAIL "$(seed_get FEEGATE_FINANCE_EMAIL)" \
      FEEGATE_FINANCE_PASSWORD "$(seed_get FEEGATE_FINANCE_PASSWORD)" \
      FEEGATE_FINANCE_TOTP_SECRET "$(seed_get FEEGATE_FINANCE_TOTP_SECRET)" \
      FEEGATE_AGENCY_EMAIL "$(seed_get FEEGATE_AGENCY_EMAIL)" \
      FEEGATE_AGENCY_PASSWORD "$(seed_get FEEGATE_AGENCY_PASSWORD)" \
      FEEGATE_ADMIN_TOKEN "$(seed_get FEEGATE_ADMIN_TOKEN)" \
      FEEGATE_AUDITOR_TOKEN "$(seed_get FEEGATE_AUDITOR_TOKEN)" \
      DATABASE_URL "$DATABASE_URL" \
      REDIS_URL "$REDIS_URL" \
      BANKSIM_URL "$BANKSIM_URL" \
      BANKSIM_PORT "$BANKSIM_PORT" \
      FEEGATE_VNPAY_TMN_CODE "$FEEGATE_VNPAY_TMN_CODE" \
      FEEGATE_VNPAY_HASH_SECRET "$FEEGATE_VNPAY_HASH_SECRET" \
      FEEGATE_MOMO_PARTNER_CODE "$FEEGATE_MOMO_PARTNER_CODE" \
      FEEGATE_MOMO_ACCESS_KEY "$FEEGATE_MOMO_ACCESS_KEY" \
      FEEGATE_MOMO_SECRET_KEY "$FEEGATE_MOMO_SECRET_KEY" \
      FEEGATE_VIETQR_WEBHOOK_SECRET "$FEEGATE_VIETQR_WEBHOOK_SECRET" \
      FEEGATE_RECEIPT_KEY "$FEEGATE_RECEIPT_KEY"
  else
    log "STACK_SKIP_APP=1: no migrations, no demo data"
    write_env "$ENV_FILE" \
      FEEGATE_URL "$FEEGATE_URL" \
      FEEGATE_PORT "$FEEGATE_PORT" \
      DATABASE_URL "$DATABASE_URL" \
      REDIS_URL "$REDIS_URL" \
      BANKSIM_URL "$BANKSIM_URL" \
      BANKSIM_PORT "$BANKSIM_PORT"
  fi
  log "ready: PostgreSQL 127.0.0.1:$PG_PORT, Redis 127.0.0.1:$REDIS_PORT; env in $ENV_FILE"
}

# For stop/pg-*/redis-*/destroy: the facts of the last start.
need_stack_env() {
  load_stack_env || die "$STACK_ENV not found: was '$PROG start $DIR' run?"
}

cmd_stop() {
  if ! load_stack_env; then log "nothing to stop in $DIR"; return 0; fi
  redis_stop
  pg_stop
}

cmd_pg_stop() { need_stack_env; pg_stop; }
cmd_pg_start() {
  need_stack_env
  [[ -f $PGDATA/PG_VERSION ]] || die "no PostgreSQL cluster in $PGDATA"
  pg_start "$PG_PORT"
}
cmd_redis_stop() { need_stack_env; redis_stop; }
cmd_redis_start() {
  need_stack_env
  [[ -f $REDIS_CONF ]] || die "$REDIS_CONF not found"
  redis_start "$REDIS_PORT"
}

cmd_destroy() {
  if load_stack_env; then
    redis_stop
    if [[ -d $PGDATA ]]; then pg_stop; fi
  else
    # no stack.env: still remove what may be there
    PG_ROOT=
    if [[ -L $PG_LINK ]]; then PG_ROOT=$(readlink "$PG_LINK"); elif [[ -d $PG_LINK ]]; then PG_ROOT=$PG_LINK; fi
    PG_SOCKET_DIR=/tmp/feegate-pg-$DIR_HASH-sock
  fi
  exec 9>&-
  if [[ -n ${PG_ROOT:-} && $PG_ROOT != "$PG_LINK" ]]; then
    case $PG_ROOT in
      /var/tmp/feegate-pg-*) rm -rf -- "$PG_ROOT" ;;
      *) log "warning: not removing unexpected PostgreSQL folder $PG_ROOT" ;;
    esac
  fi
  case ${PG_SOCKET_DIR:-} in
    /tmp/feegate-pg-*-sock) rm -rf -- "$PG_SOCKET_DIR" ;;
  esac
  rm -rf -- "$PG_LINK" "$REDIS_DIR" "$DIR/logs"
  rm -f -- "$ENV_FILE" "$STACK_ENV" "$SEED_ENV" "$LOCK_FILE"
  rmdir -- "$DIR" 2>/dev/null || true
  log "destroyed the stack in $DIR"
}

cmd_status() {
  need_stack_env
  if pg_running; then echo "postgresql: running on 127.0.0.1:$PG_PORT ($PGDATA)"; else echo "postgresql: stopped"; fi
  if redis_pid >/dev/null; then echo "redis: running on 127.0.0.1:$REDIS_PORT"; else echo "redis: stopped"; fi
}

main() {
  (($# == 2)) || usage
  local cmd=$1 dir=$2
  [[ -n $dir ]] || usage
  case $cmd in
    start) mkdir -p -- "$dir" ;;
    stop | pg-stop | pg-start | redis-stop | redis-start | destroy | status)
      if [[ ! -d $dir ]]; then
        case $cmd in
          stop | destroy) log "nothing to $cmd: $dir does not exist"; exit 0 ;;
          *) die "$dir does not exist" ;;
        esac
      fi ;;
    *) usage ;;
  esac
  set_paths "$dir"
  case $cmd in
    start) cmd_start ;; # takes the lock itself
    stop) lock_dir; cmd_stop ;;
    pg-stop) lock_dir; cmd_pg_stop ;;
    pg-start) lock_dir; cmd_pg_start ;;
    redis-stop) lock_dir; cmd_redis_stop ;;
    redis-start) lock_dir; cmd_redis_start ;;
    destroy) lock_dir; cmd_destroy ;;
    status) cmd_status ;;
  esac
}

main "$@"
