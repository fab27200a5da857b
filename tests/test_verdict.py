"""The verdict: sentences computed from summary.json (both window shapes, parts absent), human
units, and the console summary leading with it."""

from __future__ import annotations

import copy

import pytest

from qcarleman.quantity import human_count, human_seconds
from qcarleman.report.verdict import ESTIMATE_ROWS, GLOSSARY, human, verdict

SUMMARY = {
    "title": "t",
    "window": 21,
    "window_closed": True,
    "regime": "non-dissipative",
    "rho": 1.0868,
    "horizon": 20,
    "classical_sparse_accuracy": 0.8719,
    "hybrid_accuracy": 0.8747,
    "accuracy_gap_points": 0.2786,
    "total_steps": 20,
    "quantum_steps": 20,
    "emulation_error_max": 0.2412,
    "readout_error_max": 0.0174,
    "estimate": {
        "n": 820,
        "T": 5,
        "N": 2,
        "logical_qubits": 179,
        "kappa": {"value": 45.7, "kind": "assumed"},
        "epsilon": 0.01,
        "shots_for_epsilon": 244742813162,
        "flop_rate": 1e15,
        "quantum_seconds": 1.86e15,
        "classical_seconds": 6.456e-9,
        "physical_qubits": 5_900_000,
        "winner": "classical",
    },
}


def test_verdict_plain_gd_shape():
    s = verdict(
        SUMMARY, crossovers=[{"regime": "fully dissipative", "download": True, "crossover_n": None}]
    )
    assert len(s) == 4
    assert "first 21 steps" in s[0] and "plain gradient-descent" in s[0]
    assert "ρ = 1.087" in s[0] and "non-dissipative over a horizon of 20 steps" in s[0]
    assert "87.5%" in s[1] and "87.2%" in s[1] and "+0.28 percentage points" in s[1]
    assert "24.1%" in s[1] and "1.74%" in s[1]
    assert "58.9 million years" in s[2] and "5.9 million physical qubits" in s[2]
    assert "6.46 ns" in s[2] and "245 billion" in s[2] and "κ = 45.7, assumed" in s[2]
    assert "Classical training wins" in s[3] and "no size" in s[3]


def test_verdict_both_windows_and_a_crossover():
    s = dict(SUMMARY, window=14, window_paper=33, window_closed_paper=False, momentum=0.9)
    s.update(regime="almost dissipative", rho_paper=1.3, regime_paper="non-dissipative")
    cross = [
        {"regime": "fully dissipative", "download": True, "crossover_n": 3.2e7},
        {"regime": "fully dissipative", "download": False, "crossover_n": 1e4},
    ]
    out = verdict(s, crossovers=cross)
    assert "first 14 steps" in out[0] and "map actually trained" in out[0]
    assert "at least the first 33 steps" in out[0] and "paper's plain" in out[0]
    none = verdict(dict(s, window=0))[0]
    assert "trained (SGD with momentum μ = 0.9), early sparse training after pruning is not" in none
    assert "it is dissipative for at least the first 33 steps" in none
    assert "no efficiency guarantee" not in out[0] and "μ = 0.9" in out[0]
    assert "without momentum ρ = 1.3 (non-dissipative)" in out[0]
    plain = verdict(dict(SUMMARY, window_paper=21, momentum=0.0))[0]  # the two maps coincide
    assert "plain gradient-descent definition" in plain and "map actually trained" not in plain
    assert "32 million" in out[3] and "10 thousand" not in out[3]  # read-out included only


def test_verdict_no_window_and_missing_parts():
    s = {"window": 0, "window_closed": True, "rho": 1.3, "regime": "non-dissipative"}
    out = verdict(s)
    assert len(out) == 1 and "not dissipative" in out[0]
    assert verdict({}) == []
    partial = copy.deepcopy(SUMMARY)
    partial["emulation_error_max"] = None
    del partial["estimate"]
    out = verdict(partial)
    assert len(out) == 2 and "differs" not in out[1]


@pytest.mark.parametrize(
    "seconds,text",
    [
        (6.456e-9, "6.46 ns"),
        (0.3, "300 ms"),
        (600, "10 minutes"),
        (3 * 86400, "3 days"),
        (1.86e15, "58.9 million years"),
    ],
)
def test_human_seconds(seconds, text):
    assert human_seconds(seconds) == text


def test_human_counts_and_rows():
    assert human_count(5.9e6, "qubits") == "5.9 million qubits"
    assert human_count(1e15) == "10¹⁵" and human_count(9.49e19) == "9.5 × 10¹⁹"
    assert human_count(179) == "179"
    assert "years" in human_seconds(6.3e19) and "age of the universe" in human_seconds(6.3e19)
    assert human(1.86e15, "s").startswith("1.86e+15 s (≈ 58.9 million years")
    assert human({"value": 45.7, "kind": "bound"}) == "45.7 (bound)"
    assert human(None) == "—"
    assert all(meaning for meaning, _ in ESTIMATE_ROWS.values())
    for term in ("t*", "horizon", "ρ", "regime", "κ", "P_succ"):
        assert GLOSSARY[term][0] and GLOSSARY[term][1]


def test_console_summary_leads_with_the_verdict(capsys):
    from qcarleman.cli.demo import print_summary

    s = copy.deepcopy(SUMMARY)
    s.update(
        parameters=1922,
        n_active=820,
        dense_accuracy=0.96,
        pruned_accuracy=0.35,
        window_statement="w",
        quantum_steps_reason="r",
        backend="carleman",
        order=2,
        segment_steps=5,
        shots_per_segment=10**6,
        shots_total=24 * 10**6,
        seconds=3.0,
    )
    s["estimate"]["t_count"] = 9.49e19
    print_summary(s, "OUT")
    out = capsys.readouterr().out
    assert out.index("Verdict:") < out.index(" 1. Early sparse") < out.index("Details")
    assert "58.9 million years" in out
