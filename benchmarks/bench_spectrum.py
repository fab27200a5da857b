"""Benchmark: top Hessian eigenvalue and SLQ density, qcarleman vs PyHessian and
hessian-eigenthings, on the same model and batch; HVP cost relative to a gradient.

The two reference packages are NOT project dependencies. Install them in a separate folder and
point this script at it::

    .venv/bin/pip install --no-deps --target /tmp/qcarleman-bench-env pyhessian hessian-eigenthings
    .venv/bin/python benchmarks/bench_spectrum.py --bench-env /tmp/qcarleman-bench-env

Models: an MLP with about 1M parameters (no batch norm, no dropout: train and eval mode are the
same function, so all methods see the same Hessian), the digits CNN (configs/digits-cnn.toml model,
with batch norm: PyHessian puts the model in eval mode — running statistics — and
hessian-eigenthings here shares that model, while qcarleman uses train-mode batch statistics, so
their Hessians differ) and the same CNN without batch norm (like for like). One batch of
scikit-learn digits, float32 for every timed method (float64 for the reference λ_max), torch and
NumPy's BLAS with ``--threads`` threads on both sides. qcarleman uses
``LossOperators(hvp_mode="cached")`` (one gradient graph per batch, one reverse pass per product);
every timing runs from the model and the batch to the answer (our operator construction and graph,
PyHessian's gradient graph in its constructor included). Timings are the best of 2 runs for the top
eigenvalue, one run for SLQ. PyHessian's density() needs a shim for torch.eig (removed from torch),
applied here. Prints a markdown section and appends it to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time

import numpy as np
import torch
from common import RESULTS, append_results, load, machine

from qcarleman.autodiff.operators import LossOperators
from qcarleman.errors import format_bytes
from qcarleman.spectral import lanczos, slq
from qcarleman.training.data import load_dataset
from qcarleman.training.models import build_model, count_parameters

CE = torch.nn.functional.cross_entropy


def machine_line() -> str:
    return (
        f"{machine()}, torch {torch.__version__}, torch and BLAS threads "
        f"{torch.get_num_threads()}; load average {load()} "
        "(machine shared with other jobs: timings are noisy)"
    )


#: Our Lanczos tolerances timed (residual relative to |λ_max|; the λ error is far smaller).
OUR_TOLS = (1e-3, 1e-2)


def timed(fn, repeat: int = 1):
    """Result and the best wall time of ``repeat`` runs (the machine is shared)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def _torch_eig_shim(T, eigenvectors=False):
    """PyHessian's density() calls torch.eig, removed in torch 1.9+: the same (values as
    (m, 2) real/imaginary columns, vectors) from torch.linalg.eigh of the symmetric T."""
    w, V = torch.linalg.eigh(T)
    return torch.stack([w, torch.zeros_like(w)], dim=1), V


def bench_model(name, spec, batch, probes, iters, log, caveat=None):
    torch.manual_seed(0)
    model = build_model(spec).float()
    x, y = batch
    P = count_parameters(model)
    log(f"\n### {name}: {P:,} parameters, batch {len(y)}, float32\n")
    if caveat:
        log(f"Caveat: {caveat}\n")

    def cached32():
        return LossOperators(model, CE, [(x, y)], dtype=torch.float32, hvp_mode="cached")

    fun32 = LossOperators(model, CE, [(x, y)], dtype=torch.float32)
    ops32 = cached32()
    # warm-up (functorch first-call overhead) for every method below
    fun32.linear_operator().matvec(np.ones(fun32.n))
    ops32.linear_operator().matmat(np.ones((ops32.n, 2)))

    # HVP vs gradient cost
    u = torch.randn(ops32.n)
    U = torch.randn(ops32.n, probes)
    reps = 5
    _, tg = timed(lambda: [ops32.grad_at(ops32.theta) for _ in range(reps)], 2)
    tg /= reps

    def module_grad():
        model.zero_grad()
        CE(model(x), y).backward()

    _, tm = timed(lambda: [module_grad() for _ in range(reps)], 2)
    tm /= reps
    _, tf = timed(lambda: [fun32.hvp(u) for _ in range(reps)], 2)
    _, tbuild = timed(lambda: cached32().hvp_path, 2)  # copy + forward + gradient graph
    _, tc = timed(lambda: [ops32.hvp(u) for _ in range(reps)], 2)
    _, tb = timed(lambda: ops32.hvp_batch(U), 2)
    rows = [
        ("gradient (qcarleman, torch.func)", tg),
        ("gradient (plain loss.backward on the module)", tm),
        ("HVP functional mode (jvp of grad), one vector", tf / reps),
        ("cached mode: operators + gradient graph, once per θ̄", tbuild),
        ("HVP cached mode, one vector", tc / reps),
        (f"HVP cached mode, block of {probes}, per vector", tb / probes),
    ]
    sys_mods = _import_refs()
    if sys_mods:
        pyh, he = sys_mods
        m = build_model(spec).float()
        m.load_state_dict(model.state_dict())
        op = he.HessianOperator(m, [(x, y)], he.supervised_loss(CE))
        _, te = timed(lambda: [op.matvec(u) for _ in range(reps)], 2)
        rows.append(("HVP hessian-eigenthings (graph rebuilt per product), one vector", te / reps))
    log(
        f"Graph of the cached mode: {format_bytes(ops32.graph_bytes)} predicted "
        f"(path: {ops32.hvp_path}).\n"
    )
    log("| operation | seconds | × gradient (qcarleman) | × gradient (plain) |\n|---|---|---|---|")
    for r in rows:
        log(f"| {r[0]} | {r[1]:.4f} | {r[1] / tg:.2f} | {r[1] / tm:.2f} |")
    hvp_ratio = (tc / reps) / min(tg, tm)
    log(
        f"\nHVP cost target (≤ 3× a gradient; cached HVP / the faster gradient): "
        f"{hvp_ratio:.2f}× — **{'met' if hvp_ratio <= 3 else 'not met'}**"
    )

    # reference λ_max in float64, tight tolerance
    ops64 = LossOperators(model, CE, [(x, y)], dtype=torch.float64, hvp_mode="cached")
    ref = lanczos(ops64.linear_operator(), k=1, which="largest", tol=1e-10, maxiter=300)
    lam_ref = float(ref.largest[0])
    del ops64

    results = []  # (method, λ_max, seconds, HVPs)
    for tol in OUR_TOLS:  # residual tolerance relative to |λ_max| (qcarleman.spectral.lanczos)
        ours, t = timed(
            lambda tol=tol: lanczos(
                cached32().linear_operator(), k=1, which="largest", tol=tol, maxiter=100
            ),
            2,
        )
        lam = float(ours.largest[0])
        results.append((f"qcarleman Lanczos (tol {tol:g})", lam, t, ours.matvecs))

    if sys_mods:
        torch.manual_seed(0)

        def pyhessian_top():
            hc = pyh.hessian(m, CE, data=(x, y), cuda=False)  # builds its gradient graph
            return hc.eigenvalues(maxIter=100, tol=1e-3, top_n=1)

        (ev, _), t = timed(pyhessian_top, 2)
        results.append(("PyHessian power iteration (tol 1e-3)", float(ev[0]), t, None))
        op = he.HessianOperator(m, [(x, y)], he.supervised_loss(CE))
        r, t = timed(lambda: he.power_iteration_one(op, max_iter=100, tol=1e-3, seed=0), 2)
        results.append(("hessian-eigenthings power iteration (tol 1e-3)", float(r[0]), t, r[3]))
        r, t = timed(lambda: he.lanczos(op, k=1, max_iter=30, which="LA", seed=0), 2)
        results.append(("hessian-eigenthings Lanczos (30 steps)", float(r.eigenvalues[0]), t, 30))

    log(f"\nTop eigenvalue (reference λ_max = {lam_ref:.6g}, float64 Lanczos to 1e-10):\n")
    log("| method | λ_max | rel. error | seconds | HVPs |\n|---|---|---|---|---|")
    for meth, lam, t, mv in results:
        log(f"| {meth} | {lam:.6g} | {abs(lam / lam_ref - 1):.2e} | {t:.2f} | {mv or '?'} |")
    nours = len(OUR_TOLS)
    good = [r for r in results[nours:] if abs(r[1] / lam_ref - 1) <= 0.01]
    if not good:
        log("\nNo reference within 1% of the reference λ_max: the speed target does not apply.")
    for meth, lam, t, _ in results[:nours] if good else []:
        fastest = min(good, key=lambda r: r[2])
        sp = fastest[2] / t
        ok = abs(lam / lam_ref - 1) <= 0.01 and sp >= 1.5
        log(
            f"\nSpeed-up of {meth} over the fastest reference within 1% "
            f"({fastest[0]}): **{sp:.2f}×** — target (≤ 1% error, ≥ 1.5×): "
            f"**{'met' if ok else 'not met'}**"
        )

    # SLQ density: same probes × steps everywhere
    out, t = timed(lambda: slq(cached32().linear_operator(), probes=probes, iters=iters, seed=0))
    dens = [("qcarleman SLQ (batched probes, full reorth)", out.moment(1), out.moment(2), t)]
    if sys_mods:
        torch.manual_seed(0)
        torch.eig = _torch_eig_shim  # PyHessian shim for current torch (see docstring)
        (eig, w), t = timed(
            lambda: pyh.hessian(m, CE, data=(x, y), cuda=False).density(iter=iters, n_v=probes)
        )
        eig, w = np.array(eig), np.array(w)
        dens.append(
            (
                "PyHessian density",
                float(np.mean([np.sum(wi * ei) for ei, wi in zip(eig, w)])),
                float(np.mean([np.sum(wi * ei**2) for ei, wi in zip(eig, w)])),
                t,
            )
        )
        r, t = timed(lambda: he.spectral_density(op, num_runs=probes, lanczos_steps=iters, seed=0))
        nodes, wts = r.raw_eigenvalues.double().numpy(), r.raw_weights.double().numpy()
        wts = wts / wts.sum(axis=-1, keepdims=True)
        dens.append(
            (
                "hessian-eigenthings spectral_density",
                float(np.mean(np.sum(wts * nodes, axis=-1))),
                float(np.mean(np.sum(wts * nodes**2, axis=-1))),
                t,
            )
        )
    log(f"\nSLQ ({probes} probes × {iters} Lanczos steps; moments are stochastic estimates):\n")
    log("| method | tr(H)/n | tr(H²)/n | seconds |\n|---|---|---|---|")
    for meth, m1, m2, t in dens:
        log(f"| {meth} | {m1:.4e} | {m2:.4e} | {t:.2f} |")
    if len(dens) > 1:
        fastest = min(dens[1:], key=lambda r: r[3])
        log(
            f"\nSLQ speed-up over the fastest reference ({fastest[0]}): "
            f"{fastest[3] / dens[0][3]:.2f}×"
        )


_REFS = None


def hvp_ratio(name, spec, batch, log, rounds: int = 15) -> None:
    """HVP / plain gradient, interleaved side by side (one round = one of each), medians: the
    cached HVP through the fused batch norm (what the operators run) and through the
    elementary-op BatchStatNorm (what ran before), against ``loss.backward`` on the module."""
    from torch.func import grad, jvp

    torch.manual_seed(0)
    model = build_model(spec).float()
    x, y = batch
    ops = LossOperators(model, CE, [(x, y)], dtype=torch.float32, hvp_mode="cached")
    u = torch.randn(ops.n)

    # the old path: the cached graph built through the elementary-op copy
    old = LossOperators(model, CE, [(x, y)], dtype=torch.float32, hvp_mode="cached")
    old.module = old._elementary()

    def module_grad():
        model.zero_grad()
        CE(model(x), y).backward()

    def functional_hvp():
        return ops._sum(lambda b: jvp(lambda t: grad(ops.batch_loss)(t, b), (ops.theta,), (u,))[1])

    fns = {
        "gradient (loss.backward)": module_grad,
        "HVP cached, fused BN": lambda: ops.hvp(u),
        "HVP cached, elementary BN": lambda: old.hvp(u),
        "HVP functional (jvp of grad), fused BN": functional_hvp,
    }
    for f in fns.values():  # warm-up and graph building
        f()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    g = med["gradient (loss.backward)"]
    log(f"\n#### {name}: {count_parameters(model):,} params, n = {ops.n:,}, batch {len(y)}\n")
    log("| operation | median s | × gradient |\n|---|---|---|")
    for k, t in med.items():
        log(f"| {k} | {t:.4f} | {t / g:.2f} |")
    r = med["HVP cached, fused BN"] / g
    log(f"\nHVP / gradient target ≤ 2.2×: {r:.2f}× — **{'met' if r <= 2.2 else 'not met'}**")


def _import_refs():
    global _REFS
    if _REFS is None:
        try:
            import hessian_eigenthings as he
            import pyhessian as pyh

            _REFS = (pyh, he)
        except ImportError as exc:
            print(f"reference packages not importable ({exc}); timing qcarleman only")
            _REFS = ()
    return _REFS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench-env", default="/tmp/qcarleman-bench-env")
    ap.add_argument("--probes", type=int, default=8)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch threads, both sides (1)")
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument(
        "--hvp-ratio",
        action="store_true",
        help="only the interleaved HVP / gradient ratios (fused vs elementary batch norm)",
    )
    args = ap.parse_args()
    sys.path.insert(0, args.bench_env)
    torch.set_num_threads(max(1, args.threads))
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    threadpool_limits(max(1, args.threads))  # NumPy's BLAS (Lanczos recurrences) too
    data = load_dataset({"name": "digits"})
    x, y = data.train
    batch = (x[: args.batch], y[: args.batch])
    lines: list[str] = []

    def log(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    log(f"\n## Hessian spectra vs PyHessian / hessian-eigenthings ({datetime.date.today()})\n")
    log(f"Machine: {machine_line()}.")
    log(
        f"Command: `python benchmarks/bench_spectrum.py --probes {args.probes} --iters "
        f"{args.iters} --batch {args.batch} --threads {args.threads}`"
    )
    mlp = {"name": "mlp", "in_features": 64, "classes": 10, "hidden": [1000, 900]}
    cnn = {
        "name": "smallcnn",
        "width": 32,
        "stages": 2,
        "in_channels": 1,
        "classes": 10,
        "image_size": 8,
    }
    if args.hvp_ratio:
        log(f"\n## HVP / gradient, fused vs elementary batch norm ({datetime.date.today()})\n")
        log(f"Machine: {machine_line()}.")
        log(f"Command: `python benchmarks/bench_spectrum.py --hvp-ratio --batch {args.batch}`;")
        log("interleaved rounds (one of each operation per round), medians of 15 rounds.")
        hvp_ratio("MLP 64-1000-900-10 (no batch norm)", mlp, batch, log)
        hvp_ratio("digits CNN (SmallCNN width 32, 2 stages, batch norm)", cnn, batch, log)
        if not args.no_append:
            append_results("\n".join(lines))
        return
    bench_model("MLP 64-1000-900-10 (no batch norm)", mlp, batch, args.probes, args.iters, log)
    bench_model(
        "digits CNN (SmallCNN width 32, 2 stages, batch norm)",
        cnn,
        batch,
        args.probes,
        args.iters,
        log,
        caveat="PyHessian switches the model to eval mode (running statistics; hessian-eigenthings "
        "shares that model here), qcarleman uses train-mode batch statistics: different Hessians, "
        "so λ_max and the moments differ by construction and the 1% comparison does not apply.",
    )
    bench_model(
        "digits CNN without batch norm (like for like)",
        cnn | {"bn": False},
        batch,
        args.probes,
        args.iters,
        log,
    )
    if not args.no_append:
        append_results("\n".join(lines))
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
