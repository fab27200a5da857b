#!/usr/bin/env bash
# Device check of issue 14 (see benchmarks/device_check.py): ResNet-32x4 and ResNet-56x11 at 90%
# pruning, batch 128, on the GPU when present; writes $OUT/device_check.json and .md.
#   bash benchmarks/device_check.sh            # the full check (≤ 8 minutes on one large GPU)
#   bash benchmarks/device_check.sh --tiny     # tiny ResNets on the CPU in seconds (CI)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export OUT="${OUT:-$ROOT/device-check-out}"
mkdir -p "$OUT"
exec "$PY" "$ROOT/benchmarks/device_check.py" --out "$OUT" "$@"
