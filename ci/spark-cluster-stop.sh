#!/usr/bin/env bash
# Stop the standalone cluster that ci/spark-cluster-start.sh started from SPARK_CI_DIR: the
# workers first (each stops its executors), then the master, by their recorded process ids.
set -uo pipefail

STATE="${SPARK_CI_DIR:-/tmp/pyfront-spark-ci}"

stop() {   # stop PIDFILE
    [ -f "$1" ] || return 0
    local pid
    pid="$(cat "$1")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "pid $pid ($1) ignored SIGTERM for 30s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$1"
}

for f in "$STATE"/worker-*.pid; do
    stop "$f"
done
stop "$STATE/master.pid"
rm -f "$STATE/master-url"
echo "stopped the cluster of $STATE"
