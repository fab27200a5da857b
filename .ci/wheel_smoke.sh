#!/usr/bin/env bash
# Build the wheel and sdist with `python -m build`, install each into a clean venv (no system
# site-packages; torch from TORCH_SPEC, the rest from the package's own requirements), and run
# the installed CLI from an empty folder outside the source tree.
# Usage: .ci/wheel_smoke.sh [PYTHON]   (default: python3.11, else python3; must be >= 3.11)
# TORCH_SPEC overrides the torch requirement (default torch==2.13.0, the local CPU wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-$(command -v python3.11 || command -v python3)}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), sys.version'
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qcarleman-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)

"$PY" -m venv "$WORK/build-env"
"$WORK/build-env/bin/python" -m pip install -q build
"$WORK/build-env/bin/python" -m build --outdir "$WORK/dist" . 2>&1 | tee "$WORK/build.log" | tail -n 3
if grep -qi "deprecat" "$WORK/build.log"; then
    echo "wheel_smoke: the build printed a deprecation warning:" >&2
    grep -i -B2 -A2 "deprecat" "$WORK/build.log" >&2
    exit 1
fi
WHEEL=$(ls "$WORK"/dist/qcarleman-*.whl)
SDIST=$(ls "$WORK"/dist/qcarleman-*.tar.gz)
# list the wheel into a file first: `unzip -l | grep -q` under pipefail fails when grep exits early
"$PY" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' \
    "$WHEEL" > "$WORK/wheel.txt"
grep -q "qcarleman/py.typed" "$WORK/wheel.txt" || { echo "py.typed missing from $WHEEL" >&2; exit 1; }
grep -q "qcarleman/configs/digits-cnn.toml" "$WORK/wheel.txt" || { echo "configs missing" >&2; exit 1; }

smoke() {  # $1: venv; run the installed CLI from an empty folder (never the source tree)
    local bin=$1/bin run
    run=$(mktemp -d "$WORK/run.XXXX") && cd "$run"
    "$bin/qcarleman" --help > /dev/null
    "$bin/qcarleman" configs > /dev/null
    "$bin/qcarleman" estimate --params 100000 --active 10000 --steps 5 --order 2 --epsilon 1e-2 \
        --no-qsharp --json --out est.json > /dev/null
    "$bin/python" -c '
import json, os, stat
r = json.load(open("est.json"))
assert r, "empty estimate"
mode = stat.S_IMODE(os.stat("est.json").st_mode)
want = 0o666 & ~os.umask(0)
assert mode == want, f"est.json mode {mode:o}, want {want:o}"
import qcarleman, pathlib
assert (pathlib.Path(qcarleman.__file__).parent / "py.typed").exists()
'
    cd - > /dev/null
}

# One clean venv: torch first (the local CPU wheel), then the wheel with its dependencies; then the
# sdist built from source over it (--no-deps: the same dependencies are already there).
env=$WORK/venv
"$PY" -m venv "$env"
"$env/bin/python" -m pip install -q "$TORCH_SPEC"
"$env/bin/python" -m pip install -q "$WHEEL"
smoke "$env"
echo "wheel_smoke: wheel $(basename "$WHEEL") installs and runs ($(( $(date +%s) - start )) s)"
"$env/bin/python" -m pip install -q --force-reinstall --no-deps "$SDIST"
smoke "$env"
echo "wheel_smoke: sdist $(basename "$SDIST") installs and runs"
echo "wheel_smoke: ok in $(( $(date +%s) - start )) s"
