#!/usr/bin/env bash
# Build jvm-bridge/build/pyfront-bridge.jar with the JDK's javac and jar against the py4j jar
# that the py4j wheel ships. No Maven, no network. Needs a JDK 17+ and `pip install py4j`.
#
#   jvm-bridge/build.sh            # prints the jar's path
#   PYTHON=python3.11 jvm-bridge/build.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-python3}"
PY4J_JAR="${PY4J_JAR:-$("$PYTHON" -c 'from py4j.java_gateway import find_jar_path; print(find_jar_path())')}"
JAVAC="${JAVA_HOME:+$JAVA_HOME/bin/}javac"
JAR="${JAVA_HOME:+$JAVA_HOME/bin/}jar"
[ -f "$PY4J_JAR" ] || { echo "py4j jar not found (pip install py4j, or set PY4J_JAR)" >&2; exit 1; }

out="$here/build"
classes="$(mktemp -d)"
trap 'rm -rf "$classes"' EXIT
find "$here/src/main/java" -name '*.java' > "$classes/sources.txt"
"$JAVAC" --release 17 -encoding UTF-8 -Xlint:all -Xlint:-options -Xlint:-serial \
    -cp "$PY4J_JAR" -d "$classes/out" @"$classes/sources.txt"
mkdir -p "$out"
printf 'Manifest-Version: 1.0\nImplementation-Title: pyfront-bridge\nAutomatic-Module-Name: org.pyfront\n' \
    > "$classes/manifest.mf"
"$JAR" --create --file "$out/pyfront-bridge.jar" --manifest "$classes/manifest.mf" -C "$classes/out" .
echo "$out/pyfront-bridge.jar"
echo "run with: java -cp $out/pyfront-bridge.jar:$PY4J_JAR:your-classes YourMain" >&2
