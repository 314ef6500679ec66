#!/usr/bin/env bash
# One command for the whole benchmark suite: bash benchmarks/run.sh [--quick] [more options]
# Installs what is missing (nginx and wrk from Debian, reader into benchmarks/work/reader-venv),
# then runs benchmarks/run.py with the project's venv.  See benchmarks/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    echo "no .venv: run 'make install' first" >&2
    exit 2
fi
exec .venv/bin/python -m benchmarks.run "$@"
