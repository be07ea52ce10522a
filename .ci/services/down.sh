#!/usr/bin/env bash
# Stop the services .ci/services/up.sh started, by the PIDs it recorded, and remove their directory.
#
#   .ci/services/down.sh [DIR]    DIR defaults to $TRACKER_SERVICES_DIR (set by services.env)
#
# TRACKER_SERVICES_STOP_TIMEOUT (seconds, default 20) bounds each wait.
#
# A PID is signalled only while it is alive and its command line names DIR, so a PID reused by
# another process is never touched. An exited daemon may stay a zombie until its new parent
# reaps it; a zombie counts as stopped. The wait is bounded: after it, SIGKILL.
set -euo pipefail

say() { printf 'services: %s\n' "$*" >&2; }

DIR=${1:-${TRACKER_SERVICES_DIR:-}}
if [ -z "$DIR" ]; then
    say "usage: down.sh DIR (or set TRACKER_SERVICES_DIR)"
    exit 2
fi
if [ ! -d "$DIR" ]; then
    say "$DIR does not exist; nothing to stop"
    exit 0
fi
DIR=$(cd "$DIR" && pwd)
t_begin=$EPOCHREALTIME
LIMIT=${TRACKER_SERVICES_STOP_TIMEOUT:-20}
if ! [[ $LIMIT =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    say "TRACKER_SERVICES_STOP_TIMEOUT must be a number of seconds; got '$LIMIT'"
    exit 2
fi

# ours PID: the process is alive (not a zombie) and its command line names DIR
ours() {
    local state
    state=$(sed 's/.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null) || return 1  # after "(comm)"
    [ "$state" != Z ] || return 1
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$DIR"
}

# stop_group SECONDS NAME...: signal the named daemons, wait for them, SIGKILL what is left
stop_group() {
    local limit=$1 name pid signal deadline left
    shift
    local pids=()
    while read -r name pid signal; do
        [[ " $* " == *" $name "* ]] || continue
        if ours "$pid"; then
            kill -s "$signal" "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done <"$DIR/pids"
    ((${#pids[@]})) || return 0
    deadline=$(awk -v t="$EPOCHREALTIME" -v l="$limit" 'BEGIN { printf "%.3f", t + l }')
    while :; do
        left=()
        for pid in "${pids[@]}"; do ours "$pid" && left+=("$pid"); done
        ((${#left[@]})) || return 0
        if awk -v t="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(t >= d) }'; then
            say "still running after ${limit} s, killing: $*"
            for pid in "${left[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
            sleep 0.2
            return 0
        fi
        sleep 0.05
    done
}

if [ -f "$DIR/pids" ]; then
    # in this order: a gateway whose OSD is gone hangs in its shutdown (up to its 120 s alarm),
    # and an OSD that stops tells the monitor first
    stop_group "$LIMIT" rgw.a rgw.b postgres
    stop_group "$LIMIT" osd.0
    stop_group "$LIMIT" mon.a
fi
rm -rf "$DIR"
say "stopped and removed $DIR in $(awk -v a="$t_begin" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
