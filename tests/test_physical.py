"""Surface-code model (Beverland et al. formulas) and the qsharp estimator path."""

from __future__ import annotations

import importlib.util
import warnings

import pytest

from qcarleman.errors import UsageError
from qcarleman.quantum.cost import physical as ph

HAS_QSHARP = ph.qsharp_available()
needs_qsharp = pytest.mark.skipif(
    not HAS_QSHARP, reason="qsharp/qdk not installed (pip install 'qcarleman[estimator]')"
)


def test_logical_error_rate_formula():
    # P_L = 0.03 (p/0.01)^((d+1)/2): d = 21, p = 1e-3 → 0.03·0.1^11 = 3e-13.
    assert ph.logical_error_rate(21, 1e-3) == pytest.approx(3e-13)
    assert ph.logical_error_rate(9, 1e-4) == pytest.approx(3e-12)


def test_worked_example_beverland_layout_and_distance():
    # 100 logical qubits, 1e6 T gates, p = 1e-3, budget 1e-3:
    # Q_alg = 2·100 + ⌈√800⌉ + 1 = 230; required P_L = 5e-4/(230·1e6) = 2.17e-12 → d = 21;
    # 2d² = 882 qubits per patch; cycle = (4·50 + 2·100)·21 ns = 8.4 µs; runtime 8.4 s.
    r = ph.surface_code_model(100, 1e6)
    assert r.feasible and r.producer == "surface-code model"
    assert r.algorithmic_logical_qubits == 230
    assert r.code_distance == 21
    assert r.physical_qubits_algorithm == 230 * 882
    assert r.logical_cycle_ns == pytest.approx(8400.0)
    assert r.runtime_ns == pytest.approx(8.4e9)
    f = r.factory
    assert f.output_error <= 5e-4 / 1e6
    assert r.physical_qubits == r.physical_qubits_algorithm + r.physical_qubits_factories


def test_model_monotone_in_t_count_and_error_rate():
    small, big = ph.surface_code_model(50, 1e6), ph.surface_code_model(50, 1e12)
    assert big.code_distance >= small.code_distance
    assert big.runtime_ns > small.runtime_ns
    good = ph.surface_code_model(50, 1e9, qubit="qubit_gate_ns_e4")
    bad = ph.surface_code_model(50, 1e9, qubit="qubit_gate_ns_e3")
    assert good.code_distance < bad.code_distance
    assert good.physical_qubits < bad.physical_qubits


def test_infeasible_and_extended_distance():
    r = ph.surface_code_model(50, 1e25)
    assert not r.feasible and "distance" in r.reason
    r2 = ph.surface_code_model(50, 1e25, max_distance=199)
    assert r2.feasible and r2.code_distance > 50


def test_bad_inputs():
    with pytest.raises(UsageError):
        ph.surface_code_model(0, 10)
    with pytest.raises(UsageError, match="unknown"):
        ph.surface_code_model(10, 10, qubit="nope")


def test_qsharp_absent_returns_none(monkeypatch):
    monkeypatch.setattr(ph, "qsharp_available", lambda: False)
    assert ph.qsharp_estimate(10, 1e6) is None
    q, s = ph.physical_estimate(10, 1e6)
    assert q is None and s.feasible
    d = s.to_dict()  # JSON form: the qubit model as a dict, unset fields dropped, no raw report
    assert d["qubit"]["name"] == "qubit_gate_ns_e3" and "raw" not in d and "reason" not in d


def test_qsharp_refuses_beyond_64_bit_range():
    assert ph.qsharp_estimate(10, 10 * ph.QSHARP_MAX_T) is None


def _direct(q, t, qubit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if importlib.util.find_spec("qdk") is not None:
            from qdk.estimator import LogicalCounts
        else:  # pragma: no cover
            from qsharp.estimator import LogicalCounts
    counts = LogicalCounts({"numQubits": q, "tCount": t, "measurementCount": 0})
    return counts.estimate(params={"errorBudget": 1e-3, "qubitParams": {"name": qubit}})


@needs_qsharp
@pytest.mark.parametrize(
    "q,t,qubit", [(100, 10**6, "qubit_gate_ns_e3"), (60, 10**12, "qubit_gate_ns_e3")]
)
def test_qsharp_path_agrees_with_direct_call(q, t, qubit):
    ours = ph.qsharp_estimate(q, t, qubit=qubit)
    direct = _direct(q, t, qubit)
    assert ours.producer == "qsharp"
    assert ours.physical_qubits == direct["physicalCounts"]["physicalQubits"]
    assert ours.runtime_ns == direct["physicalCounts"]["runtime"]
    assert ours.code_distance == direct["logicalQubit"]["codeDistance"]
    assert ours.t_factories == direct["physicalCounts"]["breakdown"]["numTfactories"]


@needs_qsharp
@pytest.mark.parametrize(
    "q,t,qubit",
    [
        (100, 1e6, "qubit_gate_ns_e3"),
        (60, 1e12, "qubit_gate_ns_e3"),
        (200, 1e9, "qubit_gate_ns_e4"),
    ],
)
def test_model_matches_qsharp(q, t, qubit):
    # The re-derived formulas reproduce the estimator's layout, distance and runtime exactly;
    # the factory model (no failure overhead, unit types not optimized) within 25%.
    qs, sc = ph.physical_estimate(q, t, qubit=qubit)
    for key in ("algorithmic_logical_qubits", "code_distance", "physical_qubits_algorithm"):
        assert getattr(sc, key) == getattr(qs, key), key
    assert sc.runtime_ns == pytest.approx(qs.runtime_ns)
    assert sc.factory.code_distance_per_round == qs.raw["tfactory"]["codeDistancePerRound"]
    assert sc.physical_qubits == pytest.approx(qs.physical_qubits, rel=0.25)
