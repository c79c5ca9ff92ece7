#!/bin/bash
# DATA encoding speed (csrc/data.c) next to memcpy of the same bytes, the
# limit. The goal is at least 1 GB/s. Best of N rounds (default 8).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/bench
mkdir -p "$out"
${CC:-cc} -std=c99 -O2 -g -Icsrc -o "$out/data_bench" bench/data_bench.c csrc/data.c csrc/session.c csrc/reply.c csrc/classify.c
"$out/data_bench" "${ROUNDS:-8}" crlf
"$out/data_bench" "${ROUNDS:-8}" lf
