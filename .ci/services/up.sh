#!/usr/bin/env bash
# Start the real services the scale-out tests need, all on loopback under one directory:
# PostgreSQL, and a single-node Ceph cluster (one monitor, one BlueStore OSD in a sparse file)
# with two RADOS gateways on the same cluster (two stateless replicas of one S3 endpoint).
#
#   .ci/services/up.sh [DIR]      DIR defaults to a new mktemp directory under /tmp
#
# Installs the Debian packages first if they are missing. Progress and timings go to stderr;
# stdout carries only `export NAME=value` lines, so `eval "$(.ci/services/up.sh)"` works. The same
# variables are written to DIR/services.env. Stop everything with `.ci/services/down.sh DIR`.
# Settings and why: /work/shared/SERVICES.md and docs/deploy.md ("Local services for tests").
set -euo pipefail

PACKAGES=(postgresql radosgw ceph-mon ceph-osd)
S3_ACCESS_KEY=tracker-test-access-key
S3_SECRET_KEY=tracker-test-secret-key-0123456789abcdef
S3_BUCKET=tracker-test
PG_DATABASE=tracker_test
HERE=$(cd "$(dirname "$0")" && pwd)

say() { printf 'services: %s\n' "$*" >&2; }
now() { printf '%s' "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t_begin=$(now)

# ---- the directory (checked before anything is installed or started) -------------------------
if [ -n "${1:-}" ]; then
    DIR=$(realpath -m -- "$1")
    if [ -e "$DIR/pids" ]; then
        say "$DIR already holds services (DIR/pids exists); stop them with down.sh $DIR first"
        exit 2
    fi
    # down.sh removes DIR as a whole, so it must hold nothing else
    if [ -e "$DIR" ] && { [ ! -d "$DIR" ] || [ -n "$(ls -A "$DIR")" ]; }; then
        say "DIR must be an empty directory or not exist yet (down.sh removes it); got $DIR"
        exit 2
    fi
    # Unix socket paths (admin sockets, PostgreSQL's socket) are limited to 107 bytes in all
    if ((${#DIR} > 70)); then
        say "DIR must be at most 70 characters (Unix socket paths); got ${#DIR}: $DIR"
        exit 2
    fi
fi

# ---- install what is missing ----------------------------------------------------------------
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || { say "missing packages ${missing[*]}: run as root or install them"; exit 1; }
        sudo=(sudo)
    fi
    say "installing ${missing[*]} (about a minute)"
    "${sudo[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        </dev/null >&2
fi
t_installed=$(now)
say "packages ready in $(elapsed "$t_begin") s"

DIR=${DIR:-$(mktemp -d /tmp/tsvc.XXXXXX)}
mkdir -p "$DIR/log" "$DIR/run" "$DIR/crash" "$DIR/mon/ceph-a" "$DIR/osd/ceph-0" "$DIR/rgw"
: >"$DIR/pids"

started_ok=0
on_exit() {
    ((started_ok)) && return
    say "start failed; stopping what was started and removing $DIR"
    # a PostgreSQL still starting in the background would come up after down.sh looked
    [ -z "${PG_JOB:-}" ] || wait "$PG_JOB" 2>/dev/null || true
    "$HERE/down.sh" "$DIR" >&2 || true
}
trap on_exit EXIT
trap 'exit 130' INT   # an interrupted start cleans up too
trap 'exit 143' TERM

fail() {  # fail MESSAGE LOG...: print the end of each log and stop (the EXIT trap cleans up)
    local message=$1 log
    shift
    say "$message"
    for log in "$@"; do
        [ -f "$log" ] || continue
        printf -- '----- last lines of %s -----\n' "$log" >&2
        tail -n 40 "$log" >&2
    done
    exit 1
}

# wait_ready WHAT SECONDS PID LOGS COMMAND...: poll COMMAND until it succeeds, the daemon PID
# exits, or SECONDS pass; a progress line every 2 s. LOGS is a space-separated list.
wait_ready() {
    local what=$1 limit=$2 pid=$3 logs=$4 start next=2 waited
    shift 4
    start=$(now)
    until "$@" >/dev/null 2>&1; do
        waited=$(elapsed "$start")
        if [ -n "$pid" ] && { ! kill -0 "$pid" 2>/dev/null || [ "$(sed 's/.*) //; s/ .*//' "/proc/$pid/stat" 2>/dev/null)" = Z ]; }; then
            # shellcheck disable=SC2086
            fail "$what exited before it was ready" $logs
        fi
        if awk -v w="$waited" -v l="$limit" 'BEGIN { exit !(w >= l) }'; then
            # shellcheck disable=SC2086
            fail "$what not ready after ${limit} s" $logs
        fi
        if awk -v w="$waited" -v n="$next" 'BEGIN { exit !(w >= n) }'; then
            say "waiting for $what (${waited} s)"
            next=$((next + 2))
        fi
        sleep 0.1
    done
}

# start NAME SIGNAL COMMAND...: run a daemon in the foreground of its own session, stdin from
# /dev/null, output to DIR/log/NAME.out; record "NAME PID SIGNAL" for down.sh.
start() {
    local name=$1 signal=$2
    shift 2
    setsid "$@" </dev/null >"$DIR/log/$name.out" 2>&1 &
    echo "$name $! $signal" >>"$DIR/pids"
    LAST_PID=$!
}

read -r PG_PORT MON_PORT RGW_PORT_1 RGW_PORT_2 < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

# ---- PostgreSQL (in the background, while Ceph starts) ------------------------------------------
start_postgres() {
    local t_pg pgbin started=0
    t_pg=$(now)
    pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    local as_pg=()
    mkdir -p "$DIR/pg"
    if ((EUID == 0)); then
        # initdb refuses root; mktemp's mode 0700 would keep the postgres user out of DIR
        as_pg=(runuser -u postgres --)
        chmod o+x "$DIR"
        chown postgres:postgres "$DIR/pg"
    fi
    "${as_pg[@]}" "$pgbin/initdb" -D "$DIR/pg/data" -U postgres -A trust -E UTF8 --locale=C -N \
        </dev/null >"$DIR/log/initdb.out" 2>&1 || fail "initdb failed" "$DIR/log/initdb.out"
    # fsync=off and friends: test data only, never kept
    setsid "${as_pg[@]}" "$pgbin/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w -t 30 \
        -o "-p $PG_PORT -k $DIR/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start </dev/null >"$DIR/log/pg_ctl.out" 2>&1 && started=1
    # recorded even when the wait failed, so that down.sh stops a postmaster that came up late
    if [ -s "$DIR/pg/data/postmaster.pid" ]; then
        echo "postgres $(head -n 1 "$DIR/pg/data/postmaster.pid") INT" >>"$DIR/pids"  # SIGINT: fast shutdown
    fi
    ((started)) || fail "PostgreSQL did not start" "$DIR/log/pg_ctl.out" "$DIR/pg/postgres.log"
    "$pgbin/createdb" -h "$DIR/pg" -p "$PG_PORT" -U postgres "$PG_DATABASE" </dev/null >"$DIR/log/createdb.out" 2>&1 \
        || fail "createdb failed" "$DIR/log/createdb.out" "$DIR/pg/postgres.log"
    say "PostgreSQL on 127.0.0.1:$PG_PORT in $(elapsed "$t_pg") s"
}
start_postgres &
PG_JOB=$!

# ---- Ceph monitor ------------------------------------------------------------------------------
t_ceph=$(now)
export CEPH_CONF=$DIR/ceph.conf
FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
cat >"$CEPH_CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
# auth none everywhere; without "crc secure" the gateway hangs in AUTH_CONNECTING (-13)
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
keyring = $DIR/keyring
# every default location inside DIR
run dir = $DIR/run
crash dir = $DIR/crash
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
log to syslog = false
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
rgw data = $DIR/rgw/\$cluster-\$id
# deleted objects free their space at once (the default waits two hours): repeated test runs on
# one services instance would otherwise fill the 10 GiB OSD
rgw gc obj min wait = 0
rgw gc processor period = 10
# one OSD: one copy, few placement groups, no warning for a small disk
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon data avail warn = 1
mon data avail crit = 0
# expected here, so `ceph -s` reports HEALTH_OK
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
# speed: the default 1 s wait per map change made start-up 18 s and the first puts ~2 s each
paxos propose interval = 0.05
mon osd reporter subtree level = osd

[osd]
osd objectstore = bluestore
# a sparse file outside the OSD data directory
bluestore block path = $DIR/osd-block
bluestore block create = true
bluestore block size = 10737418240
bluestore fsck on mkfs = false
bluestore fsck on mount = false
osd op num shards = 1
osd memory target = 939524096
osd mon shutdown timeout = 1

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT_1
rgw thread pool size = 64

[client.rgw.b]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT_2
rgw thread pool size = 64
EOF
ceph_() { timeout 30 ceph --connect-timeout 20 "$@" </dev/null; }
{
    ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *'
    ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *'
    monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap"
    ceph-mon --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring"
} </dev/null >"$DIR/log/mon-mkfs.out" 2>&1 || fail "monitor creation failed" "$DIR/log/mon-mkfs.out"
start mon.a TERM ceph-mon -f -i a -c "$CEPH_CONF"
MON_PID=$LAST_PID
wait_ready "the Ceph monitor" 30 "$MON_PID" "$DIR/log/mon.a.out $DIR/log/mon.a.log" ceph_ mon stat

# ---- Ceph OSD ----------------------------------------------------------------------------------
# the uuid given to `osd new` must be the one the OSD is made with
OSD_ID=$(ceph_ osd new "$OSD_UUID" 2>"$DIR/log/osd-new.out") || fail "ceph osd new failed" "$DIR/log/osd-new.out"
[ "$OSD_ID" = 0 ] || fail "expected OSD id 0, got '$OSD_ID'" "$DIR/log/osd-new.out"
timeout 60 ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" -c "$CEPH_CONF" </dev/null >"$DIR/log/osd-mkfs.out" 2>&1 \
    || fail "OSD creation failed" "$DIR/log/osd-mkfs.out" "$DIR/log/osd.0.log"
start osd.0 TERM ceph-osd -f -i 0 -c "$CEPH_CONF"
osd_up() { ceph_ osd dump 2>/dev/null | grep -q '^osd\.0 up'; }
wait_ready "the Ceph OSD" 60 "$LAST_PID" "$DIR/log/osd.0.out $DIR/log/osd.0.log" osd_up
say "Ceph monitor and OSD in $(elapsed "$t_ceph") s"

# ---- two RADOS gateways and the S3 user ---------------------------------------------------------
t_rgw=$(now)
start rgw.a TERM radosgw -f -n client.rgw.a -c "$CEPH_CONF"
RGW_PID_1=$LAST_PID
start rgw.b TERM radosgw -f -n client.rgw.b -c "$CEPH_CONF"
RGW_PID_2=$LAST_PID
answers() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/"; }
wait_ready "RADOS gateway a" 60 "$RGW_PID_1" "$DIR/log/rgw.a.out $DIR/log/client.rgw.a.log" answers "$RGW_PORT_1"
wait_ready "RADOS gateway b" 60 "$RGW_PID_2" "$DIR/log/rgw.b.out $DIR/log/client.rgw.b.log" answers "$RGW_PORT_2"
timeout 60 radosgw-admin user create --uid tracker-test --display-name "tracker tests" \
    --access-key "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY" </dev/null >"$DIR/log/rgw-user.out" 2>&1 \
    || fail "creating the S3 user failed" "$DIR/log/rgw-user.out"
# the bucket the tests use, through the S3 API itself (signed request)
status=$(curl -s -o "$DIR/log/bucket.out" -w '%{http_code}' --max-time 30 -X PUT \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "http://127.0.0.1:$RGW_PORT_1/$S3_BUCKET") || true
[ "$status" = 200 ] || fail "creating bucket $S3_BUCKET answered HTTP $status" "$DIR/log/bucket.out"
say "two RADOS gateways on 127.0.0.1:$RGW_PORT_1 and :$RGW_PORT_2 in $(elapsed "$t_rgw") s"

wait "$PG_JOB" || fail "PostgreSQL did not start (see above)"

# ---- the environment for the tests ------------------------------------------------------------
cat >"$DIR/services.env.tmp" <<EOF
TRACKER_SERVICES_DIR=$DIR
TRACKER_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/$PG_DATABASE
TRACKER_TEST_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT_1
TRACKER_TEST_S3_ENDPOINT_2=http://127.0.0.1:$RGW_PORT_2
TRACKER_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
TRACKER_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
TRACKER_TEST_S3_BUCKET=$S3_BUCKET
EOF
mv "$DIR/services.env.tmp" "$DIR/services.env"
started_ok=1
say "started in $(elapsed "$t_installed") s (install check included: $(elapsed "$t_begin") s); env in $DIR/services.env"
sed 's/^/export /' "$DIR/services.env"
