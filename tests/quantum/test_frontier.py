"""The advantage frontier (issue 17, part 3) agrees with the break-even table where they overlap."""

import numpy as np
import pytest

from qcarleman.quantum.cost.breakeven import breakeven
from qcarleman.quantum.cost.frontier import frontier, what_would_have_to_be_true
from qcarleman.quantum.cost.inputs import CostModel


@pytest.mark.parametrize("logical_rate", [None, 1e9])
def test_frontier_matches_breakeven_crossovers(logical_rate):
    ns = [int(v) for v in np.unique(np.round(np.logspace(3, 18, 11)))]
    model = CostModel(logical_rate=logical_rate, flop_rate=1e15)
    be = breakeven(ns, Ts=(10,), N=2, epsilon=1e-2, rho_fully=0.9, sparsity=10, model=model)
    fr = frontier(
        ns,
        axes={
            "sparsity": (10,),
            "epsilon": (1e-2,),
            "T": (10,),
            "download": (True, False),
            "flop_rate": (1e15,),
            "logical_rate": (logical_rate,),
        },
        rho=0.9,
        model=model,
    )
    fully = {
        c["download"]: c["crossover_n"] for c in be["crossovers"] if c["regime"].startswith("fully")
    }
    assert len(fr["cells"]) == 2
    for cell in fr["cells"]:
        assert cell["crossover_n"] == fully[cell["download"]]
    rows = [r for r in be["rows"] if r["regime"].startswith("fully") and not r["download"]]
    ratio = rows[-1]["quantum_s"] / rows[-1]["classical_s"]
    nodl = next(c for c in fr["cells"] if not c["download"])
    assert nodl["ratio_at_n_max"] == pytest.approx(ratio, rel=1e-12)


def test_sentence_names_the_winning_conditions_or_says_none():
    ns = [10**3, 10**6, 10**9]
    small = frontier(
        ns,
        axes={
            "sparsity": (10,),
            "epsilon": (1e-2,),
            "T": (10,),
            "download": (True,),
            "flop_rate": (1e15,),
            "logical_rate": (None,),
        },
    )
    assert all(c["crossover_n"] is None for c in small["cells"])
    assert what_would_have_to_be_true(small, 10**6).startswith("Under no combination")
    big = frontier(
        np.logspace(3, 24, 8),
        axes={
            "sparsity": (10,),
            "epsilon": (1e-1,),
            "T": (10,),
            "download": (False,),
            "flop_rate": (1e15,),
            "logical_rate": (1e9,),
        },
    )
    c = big["cells"][0]
    assert c["crossover_n"] is not None
    text = what_would_have_to_be_true(big, 10**3)
    assert "no download" in text and "s ≤ 10" in text and "too small" in text
