"""Benchmark: Hessian-vector products, λ_max and SLQ, qcarleman vs PyHessian,
hessian-eigenthings and curvlinops, side by side on the same model, batch, dtype and threads.

The peers are NOT project dependencies; install them into the venv by hand::

    .venv/bin/python -m pip install --no-deps pyhessian hessian-eigenthings \
        curvlinops-for-pytorch einops einconv opt-einsum backpack-for-pytorch linear_operator
    .venv/bin/python benchmarks/bench_spectrum.py

Models: an MLP with about 1M parameters (no batch norm) and the digits CNN with batch norm. The
peers get a copy whose batch-norm layers use batch statistics in every mode
(``track_running_stats=False``, as qcarleman's fused copy), so PyHessian's ``model.eval()``
changes nothing and all four compute the same H (checked: the HVPs agree to float32 rounding).
One batch of scikit-learn digits, float32, torch and NumPy's BLAS at ``--threads`` threads for
everyone. Every comparison is **interleaved**: a round runs each method once, and the table
gives medians over ``--rounds`` rounds (the machine is shared). Timings run from the model and
the batch to the answer (our operators and cached graph, PyHessian's graph in its constructor).

* HVP: one product, per method.
* λ_max to 1e-3 relative against a float64 reference (qcarleman Lanczos, residual 1e-10): ours
  with the gap rule at tol 1e-3 from the gradient start (``rule="gap", v0="gradient"``: the
  Kato–Temple bound λ_max − θ ≤ r²/gap ≤ 1e-3·θ), with and without reorthogonalization
  (``reorth=False``: two vectors kept), with the residual rule from a random start
  and, once, with the probabilistic certificate of :mod:`qcarleman.autodiff.lanczos` at 1e-3;
  each peer's own routine at the cheapest tolerance (or step count) of a ladder that reaches
  1e-3 (chosen by a calibration run against the reference — an oracle our rules do not use).
* SLQ at equal probes × steps: per-probe moments tr(H)/n and tr(H²)/n, mean ± standard error,
  and their z-scores against ours (agreement within probe noise: z ≲ 2); ours with full
  reorthogonalization and without (``reorth=False``).

``--parts`` picks hvp, top (λ_max), slq; ``--no-certified`` skips the certified λ_max run (480
products at n ≈ 1M). ``--hvp-ratio`` times only the HVP / gradient ratios (fused vs elementary
batch norm). Prints a markdown section and appends it to benchmarks/RESULTS.md (results of
2026-12-01 there: issue 14, "peers side by side").
"""

from __future__ import annotations

import argparse
import copy
import datetime
import sys
import time

import numpy as np
import torch
from common import RESULTS, append_results, load, machine

from qcarleman.autodiff.operators import LossOperators
from qcarleman.training.data import load_dataset
from qcarleman.training.models import build_model, count_parameters

CE = torch.nn.functional.cross_entropy


#: The two benchmark models: (title, build_model spec).
MODELS = {
    "mlp": (
        "MLP 64-1000-900-10 (no batch norm)",
        {"name": "mlp", "in_features": 64, "classes": 10, "hidden": [1000, 900]},
    ),
    "cnn": (
        "digits CNN (SmallCNN width 32, 2 stages, batch norm)",
        {
            "name": "smallcnn",
            "width": 32,
            "stages": 2,
            "in_channels": 1,
            "classes": 10,
            "image_size": 8,
        },
    ),
    "resnet": (
        "ResNet-20 (widen 1, 19 batch-norm layers) on digits",
        {"name": "resnet", "depth": 20, "widen": 1, "in_channels": 1, "classes": 10},
    ),
}


def digits_batch(size: int):
    """The first ``size`` scikit-learn digits of the training split (x, y)."""
    x, y = load_dataset({"name": "digits"}).train
    return x[:size], y[:size]


def machine_line() -> str:
    return (
        f"{machine()}, torch {torch.__version__}, torch and BLAS threads "
        f"{torch.get_num_threads()}; load average {load()} "
        "(machine shared with other jobs: timings are noisy)"
    )


def _torch_eig_shim(T, eigenvectors=False):
    """PyHessian's density() calls torch.eig, removed in torch 1.9+: the same (values as
    (m, 2) real/imaginary columns, vectors) from torch.linalg.eigh of the symmetric T."""
    w, V = torch.linalg.eigh(T)
    return torch.stack([w, torch.zeros_like(w)], dim=1), V


def peer_model(model):
    """The peers' copy of ``model``: batch norm on batch statistics in any mode
    (``track_running_stats=False``, no buffers — what qcarleman's fused copy does), so
    PyHessian's ``model.eval()`` leaves the Hessian unchanged and every method sees the same H."""
    m = copy.deepcopy(model)
    for sub in m.modules():
        if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
            sub.track_running_stats = False
            sub.running_mean = sub.running_var = sub.num_batches_tracked = None
    return m


class Count:
    """Wraps a product function and counts the vectors it is applied to."""

    def __init__(self):
        self.n = 0

    def wrap(self, fn, cols=lambda *a: 1):
        def counted(*a, **k):
            self.n += cols(*a)
            return fn(*a, **k)

        return counted


class Peers:
    """PyHessian, hessian-eigenthings and curvlinops on one model and batch (not project
    dependencies: installed into the venv by hand, see the module docstring). Every routine
    returns (answer, products); construction (their gradient graph) is inside."""

    def __init__(self, model, batch):
        import curvlinops
        import hessian_eigenthings
        import pyhessian  # noqa: F401 — registers pyhessian.hessian
        from curvlinops.papyan2020traces import spectrum as cl_spectrum

        self.he, self.cl, self.cls = hessian_eigenthings, curvlinops, cl_spectrum
        self.pyh = sys.modules["pyhessian.hessian"]
        torch.eig = _torch_eig_shim  # PyHessian's density() calls torch.eig (removed from torch)
        self.count = Count()
        self._pyh_hvp = self.pyh.hessian_vector_product
        self.pyh.hessian_vector_product = self.count.wrap(self._pyh_hvp)
        self.model, self.batch = peer_model(model), batch

    # -- operators -----------------------------------------------------------------------
    def pyhessian(self):
        return self.pyh.hessian(self.model, CE, data=self.batch, cuda=False)

    def eigenthings(self):
        op = self.he.HessianOperator(self.model, [self.batch], self.he.supervised_loss(CE))
        op.matvec = self.count.wrap(op.matvec)
        return op

    def curvlinops(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        A = self.cl.HessianLinearOperator(
            self.model,
            torch.nn.CrossEntropyLoss(),
            params,
            [self.batch],
            check_deterministic=False,
        )
        A._matmat = self.count.wrap(A._matmat, lambda X: X[0].shape[-1])
        return A

    def hvps(self, u):
        """One HVP per package on the flat vector u (parameter order), for timing and checks."""
        ph, op, A = self.pyhessian(), self.eigenthings(), self.curvlinops()
        parts = [
            t.reshape(p.shape) for t, p in zip(u.split([p.numel() for p in ph.params]), ph.params)
        ]
        flat = lambda hs: torch.cat([h.reshape(-1) for h in hs])
        return {
            "PyHessian (cached graph)": lambda: flat(self._pyh_hvp(ph.gradsH, ph.params, parts)),
            "hessian-eigenthings (graph per product)": lambda: op.matvec(u),
            "curvlinops (jvp of jacrev)": lambda: A @ u,
        }

    # -- λ_max ---------------------------------------------------------------------------
    def top(self, kind, knob):
        """λ_max by one package's own routine at ``knob`` (its tolerance or its step count)."""
        self.count.n = 0
        torch.manual_seed(0)
        if kind == "PyHessian power iteration":
            lam = self.pyhessian().eigenvalues(maxIter=2000, tol=knob, top_n=1)[0][0]
        elif kind == "hessian-eigenthings power iteration":
            lam = self.he.power_iteration_one(self.eigenthings(), max_iter=2000, tol=knob, seed=0)[
                0
            ]
        elif kind == "hessian-eigenthings Lanczos":
            r = self.he.lanczos(self.eigenthings(), k=1, max_iter=knob, which="LA", seed=0)
            lam = r.eigenvalues[0]
        else:  # curvlinops: ARPACK (scipy eigsh) on its operator, its boundary routine
            lam = self.cls.approximate_boundaries(
                self.curvlinops(), tol=knob, boundaries=(0.0, None)
            )[1]
        return float(lam), self.count.n

    # -- SLQ: per-probe (tr(H)/n, tr(H²)/n) estimates ------------------------------------------
    def density(self, kind, probes, iters):
        self.count.n = 0
        torch.manual_seed(0)
        if kind == "PyHessian density":
            eig, w = self.pyhessian().density(iter=iters, n_v=probes)
            rules = [(np.array(e), np.array(wi)) for e, wi in zip(eig, w)]
        elif kind == "hessian-eigenthings spectral_density":
            r = self.he.spectral_density(
                self.eigenthings(), num_runs=probes, lanczos_steps=iters, seed=0
            )
            rules = list(zip(r.raw_eigenvalues.double().numpy(), r.raw_weights.double().numpy()))
        else:  # curvlinops: its Lanczos quadrature (Papyan 2020 Alg. 2, no reorthogonalization)
            A = self.curvlinops()
            rules = []
            for _ in range(probes):
                ev, V = self.cls.fast_lanczos(A, iters)
                rules.append((ev.double().numpy(), (V[0] ** 2).double().numpy()))
        return moments(rules), self.count.n


def moments(rules):
    """Per probe (Σ w θ, Σ w θ²)/Σ w from Gauss rules (θ, w): two (probes,) arrays."""
    m = np.array([[np.sum(w * t) / np.sum(w), np.sum(w * t**2) / np.sum(w)] for t, w in rules])
    return m[:, 0], m[:, 1]


def ours_moments(res):
    """Per-probe moments of a qcarleman SLQResult."""
    return moments(
        [(res.nodes[res.probe == c], res.weights[res.probe == c]) for c in range(res.probes)]
    )


def interleave(fns, rounds, warm=False):
    """Medians over ``rounds`` rounds, one call of each function per round (side by side);
    ``warm``: one untimed call of each first (graphs, vmap tracing)."""
    times = {k: [] for k in fns}
    out = {k: f() for k, f in fns.items()} if warm else {}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            out[k] = f()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}, out


#: Peer routines for λ_max and the knob ladders tried, cheapest first, to reach 1e-3.
TOP_LADDERS = {
    "PyHessian power iteration": [1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 1e-6],
    "hessian-eigenthings power iteration": [1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5],
    "hessian-eigenthings Lanczos": [8, 10, 12, 14, 16, 20, 25, 30, 40, 60],
    "curvlinops eigsh (ARPACK)": [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 1e-6],
}
TARGET = 1e-3  # relative error of λ_max


def compare(name, spec, batch, args, log):
    """Side by side on one model: HVP, λ_max to 1e-3, SLQ at equal probes × steps."""
    torch.manual_seed(0)
    model = build_model(spec).float()
    peers = Peers(model, batch)
    cached = lambda: LossOperators(model, CE, [batch], dtype=torch.float32, hvp_mode="cached")
    log(f"\n### {name}: {cached().n:,} parameters, batch {len(batch[1])}, float32\n")
    parts = args.parts.split(",")
    if "hvp" in parts:
        _compare_hvp(model, batch, peers, cached(), max(15, args.rounds), log)
    if "top" in parts:
        _compare_top(model, batch, peers, cached, args, log)
    if "slq" in parts:
        _compare_slq(peers, cached, args, log)


def _compare_hvp(model, batch, peers, ops, rounds, log):
    x, y = batch
    u = torch.randn(ops.n)

    def grad_step():
        model.zero_grad()
        CE(model(x), y).backward()

    ours, gname = "qcarleman (cached graph, fused BN)", "gradient (loss.backward)"
    fns = {gname: grad_step, ours: lambda: ops.hvp(u)} | peers.hvps(u)
    med, out = interleave(fns, rounds, warm=True)
    log(
        f"HVP, one vector (medians of {rounds} interleaved rounds after one warm-up; "
        "rel. diff. = ‖Hu − H_ours u‖/‖H_ours u‖, the same H):\n"
    )
    log("| method | median s | × gradient | method / qcarleman | rel. diff. |")
    log("|---|---|---|---|---|")
    for k, t in med.items():
        diff = "" if k == gname else f"{float((out[k] - out[ours]).norm() / out[ours].norm()):.1e}"
        log(f"| {k} | {t:.4f} | {t / med[gname]:.2f} | {t / med[ours]:.2f} | {diff} |")


def _compare_top(model, batch, peers, cached, args, log):
    from qcarleman.autodiff.lanczos import lanczos as tl

    rounds = args.rounds

    ops64 = LossOperators(model, CE, [batch], dtype=torch.float64, hvp_mode="cached")
    lam_ref = float(tl(ops64, k=1, which="largest", tol=1e-10, maxiter=300).largest[0])
    del ops64
    err = lambda lam: abs(lam / lam_ref - 1)

    def ours(certify=None, tol=TARGET, maxiter=1000, **kw):
        r = tl(cached(), k=1, which="largest", tol=tol, certify=certify, maxiter=maxiter, **kw)
        bound = r.bound_largest if certify else r.error_largest[0]
        return float(r.largest[0]), r.matvecs, bound

    fns = {
        "qcarleman Lanczos (gap rule ≤ 1e-3·θ, gradient start, no reorth.)": lambda: ours(
            rule="gap", v0="gradient", reorth=False
        ),
        "qcarleman Lanczos (gap rule ≤ 1e-3·θ, gradient start)": lambda: ours(
            rule="gap", v0="gradient"
        ),
        "qcarleman Lanczos (residual ≤ 1e-3·θ, random start)": ours,
    } | _calibrated(peers, err, log)
    med, out = interleave(fns, rounds)
    t0 = time.perf_counter()
    cert = ours(TARGET) if args.certified else None
    tc = time.perf_counter() - t0
    log(
        f"\nλ_max to {TARGET:g} (reference {lam_ref:.6g}: float64 qcarleman Lanczos, residual "
        f"1e-10; peers at the cheapest knob of their ladder that reached {TARGET:g}; medians of "
        f"{rounds} interleaved rounds; the certified run once, after them):\n"
    )
    log("| method | λ_max | rel. error | median s | HVPs | bound at stop: λ_max − θ ≤ |")
    log("|---|---|---|---|---|---|")
    for k, t in med.items():
        r = out[k]
        cb = f"{r[2] / r[0]:.1e}·θ" if len(r) > 2 else "none"
        log(f"| {k} | {r[0]:.6g} | {err(r[0]):.1e} | {t:.3f} | {r[1]} | {cb} |")
    if args.certified:
        log(
            f"| qcarleman Lanczos, certified (bound ≤ 1e-3·θ, δ = 1e-3), one run | {cert[0]:.6g} "
            f"| {err(cert[0]):.1e} | {tc:.3f} | {cert[1]} | {cert[2] / cert[0]:.1e}·θ |"
        )
    ok = {
        k: t for k, t in med.items() if not k.startswith("qcarleman") and err(out[k][0]) <= TARGET
    }
    if ok:
        best = min(ok, key=ok.get)
        ours_t = {k: t for k, t in med.items() if k.startswith("qcarleman")}
        if args.certified:
            ours_t["certified"] = tc
        speed = "; ".join(f"{k}: **{ok[best] / t:.2f}×**" for k, t in ours_t.items())
        log(f"\nFastest peer at ≤ {TARGET:g}: {best}. Speed-up over it (target ≥ 1.3×): {speed}.")


def _calibrated(peers, err, log):
    """Every peer at the cheapest knob of its ladder that reaches λ_max to 1e-3 (calibrated
    against the reference: an oracle our stopping rules do not need)."""
    fns = {}
    for kind, ladder in TOP_LADDERS.items():
        for knob in ladder:
            if err(peers.top(kind, knob)[0]) <= TARGET:
                name = f"steps {knob}" if isinstance(knob, int) else f"tol {knob:g}"
                fns[f"{kind} ({name})"] = lambda k=kind, v=knob: peers.top(k, v)
                break
        else:
            log(f"\n{kind} did not reach {TARGET:g} on its ladder {ladder}")
    return fns


def _compare_slq(peers, cached, args, log):
    from qcarleman.autodiff.lanczos import slq as tslq

    P, M, rounds = args.probes, args.iters, args.rounds
    ours = "qcarleman SLQ (torch, block probes, full reorth)"

    def ours_slq(reorth=True):
        r = tslq(cached(), probes=P, iters=M, seed=0, reorth=reorth)
        return ours_moments(r), r.matvecs

    fns = {ours: ours_slq, PLAIN: lambda: ours_slq(False)}
    for k in PEER_SLQ:
        fns[k] = lambda k=k: peers.density(k, P, M)
    med, out = interleave(fns, rounds)
    (o1, o2), _ = out[ours]
    se = lambda a: float(np.std(a, ddof=1) / np.sqrt(len(a)))
    z = lambda a, o: abs(a.mean() - o.mean()) / max(float(np.hypot(se(a), se(o))), 1e-300)
    log(
        f"\nSLQ, {P} probes × {M} Lanczos steps (per-probe moments, mean ± standard error; "
        f"z = |Δ|/√(se₁² + se₂²) against qcarleman; medians of {rounds} interleaved rounds):\n"
    )
    log("| method | tr(H)/n | tr(H²)/n | z (tr H, tr H²) | median s | HVPs | method / qcarleman |")
    log("|---|---|---|---|---|---|---|")
    for k, t in med.items():
        (a1, a2), mv = out[k]
        log(
            f"| {k} | {a1.mean():.4e} ± {se(a1):.1e} | {a2.mean():.4e} ± {se(a2):.1e} | "
            f"{z(a1, o1):.1f}, {z(a2, o2):.1f} | {t:.3f} | {mv} | {t / med[ours]:.2f} |"
        )
    best = min(PEER_SLQ, key=med.get)
    log(
        f"\nFastest peer: {best}; qcarleman **{med[best] / med[ours]:.2f}×** faster with full "
        f"reorthogonalization, **{med[best] / med[PLAIN]:.2f}×** without (target ≥ 1.5×)."
    )


PLAIN = "qcarleman SLQ (torch, reorth=False)"
PEER_SLQ = (
    "PyHessian density",
    "hessian-eigenthings spectral_density",
    "curvlinops fast_lanczos (no reorth)",
)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--probes", type=int, default=4)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads, everyone")
    ap.add_argument("--models", default="mlp,cnn", help="comma list of mlp, cnn, resnet")
    ap.add_argument("--parts", default="hvp,top,slq", help="comma list of hvp, top, slq")
    ap.add_argument(
        "--no-certified", dest="certified", action="store_false", help="skip the certified λ_max"
    )
    ap.add_argument("--no-append", action="store_true")
    ap.add_argument(
        "--hvp-ratio",
        action="store_true",
        help="only the interleaved HVP / gradient ratios (fused vs elementary batch norm)",
    )
    args = ap.parse_args()
    torch.set_num_threads(max(1, args.threads))
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    threadpool_limits(max(1, args.threads))  # NumPy's BLAS too
    batch = digits_batch(args.batch)
    lines: list[str] = []

    def log(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    if args.hvp_ratio:
        log(f"\n## HVP / gradient, fused vs elementary batch norm ({datetime.date.today()})\n")
        log(f"Machine: {machine_line()}.")
        log(f"Command: `python benchmarks/bench_spectrum.py --hvp-ratio --batch {args.batch}`;")
        log("interleaved rounds (one of each operation per round), medians of 15 rounds.")
        for key in args.models.split(","):
            hvp_ratio(*MODELS[key], batch, log)
    else:
        today = datetime.date.today()
        log(f"\n## Spectra vs PyHessian, hessian-eigenthings, curvlinops ({today})\n")
        log(f"Machine: {machine_line()}.")
        log(
            f"Command: `python benchmarks/bench_spectrum.py --probes {args.probes} "
            f"--iters {args.iters} --batch {args.batch} --rounds {args.rounds} --threads "
            f"{args.threads} --models {args.models} --parts {args.parts}"
            f"{'' if args.certified else ' --no-certified'}`"
        )
        for key in args.models.split(","):
            compare(*MODELS[key], batch, args, log)
        log(f"\nLoad average at the end: {load()}.")
    if not args.no_append:
        append_results("\n".join(lines))
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
