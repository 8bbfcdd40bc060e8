#!/usr/bin/env bash
# The README's test command: install pyfront with its test dependencies, run the whole suite.
# pytest's exit code 5 ("no tests collected") counts as success.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --quiet --disable-pip-version-check ".[test]" || exit $?
"$PYTHON" -m pytest -q "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests (exit code 5): treated as success"
    rc=0
fi
exit "$rc"
