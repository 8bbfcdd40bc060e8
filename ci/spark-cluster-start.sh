#!/usr/bin/env bash
# Start a real standalone Spark cluster on 127.0.0.1 from the pyspark wheel (which ships
# bin/spark-class but no sbin/start-master.sh): one master and SPARK_CI_WORKERS one-core
# workers, each with its own --work-dir. Process ids and logs go to SPARK_CI_DIR; stop it with
# ci/spark-cluster-stop.sh. Prints the master URL.
#
#   PYTHON            the interpreter whose pyspark runs the cluster (python3)
#   SPARK_CI_DIR      state folder: pids, logs, work dirs (/tmp/pyfront-spark-ci)
#   SPARK_MASTER_PORT master port (7077)
#   SPARK_CI_WORKERS  number of workers (2), each with SPARK_WORKER_MEMORY (1g) and one core
#   PYTHONPATH, PYSPARK_PYTHON   passed on to executors (how they import pyfront)
set -euo pipefail

PYTHON="${PYTHON:-python3}"
STATE="${SPARK_CI_DIR:-/tmp/pyfront-spark-ci}"
PORT="${SPARK_MASTER_PORT:-7077}"
WORKERS="${SPARK_CI_WORKERS:-2}"
MEMORY="${SPARK_WORKER_MEMORY:-1g}"
TIMEOUT="${SPARK_CI_TIMEOUT:-180}"

SPARK_HOME="$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME
export SPARK_LOCAL_IP=127.0.0.1
PYSPARK_PYTHON="${PYSPARK_PYTHON:-$(command -v "$PYTHON")}"
export PYSPARK_PYTHON
export SPARK_NO_DAEMONIZE=1

mkdir -p "$STATE"
if [ -f "$STATE/master.pid" ] && kill -0 "$(cat "$STATE/master.pid")" 2>/dev/null; then
    echo "a cluster started from $STATE is running already (master pid $(cat "$STATE/master.pid"))" >&2
    exit 1
fi

wait_for() {   # wait_for FILE PATTERN PID WHAT
    local waited=0
    until grep -q "$2" "$1" 2>/dev/null; do
        if ! kill -0 "$3" 2>/dev/null; then
            echo "$4 exited before it was ready; its log ($1):" >&2
            tail -n 40 "$1" >&2
            exit 1
        fi
        if [ "$waited" -ge "$TIMEOUT" ]; then
            echo "$4 not ready after ${TIMEOUT}s; its log ($1):" >&2
            tail -n 40 "$1" >&2
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

# spark-class ends in exec, so $! is the JVM's own process id
"$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$PORT" --webui-port 0 >"$STATE/master.log" 2>&1 &
echo $! >"$STATE/master.pid"
wait_for "$STATE/master.log" "I have been elected leader" "$!" "the master"

URL="spark://127.0.0.1:$PORT"
for i in $(seq 1 "$WORKERS"); do
    mkdir -p "$STATE/work-$i"
    "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker "$URL" \
        --host 127.0.0.1 --cores 1 --memory "$MEMORY" --work-dir "$STATE/work-$i" \
        --webui-port 0 >"$STATE/worker-$i.log" 2>&1 &
    echo $! >"$STATE/worker-$i.pid"
done
for i in $(seq 1 "$WORKERS"); do
    wait_for "$STATE/worker-$i.log" "Successfully registered with master" \
        "$(cat "$STATE/worker-$i.pid")" "worker $i"
done
echo "$URL" >"$STATE/master-url"
echo "$URL"
