"""Upload (quantum/upload.py): state-preparation circuits, gate counts, cost formulas."""

import numpy as np
import pytest

from qcarleman import UsageError
from qcarleman.quantum.upload import upload_circuit, upload_cost

pytest.importorskip("pennylane")


@pytest.mark.parametrize("q", [2, 3, 4])
def test_dense_state_prep_and_cnot_formula(q):
    v = np.random.default_rng(q).standard_normal(2**q)
    out = upload_circuit(v, "dense")
    assert out["fidelity"] == pytest.approx(1.0, abs=1e-10)
    assert out["cnots"] == upload_cost(2**q, 2**q)["dense_state_prep"]["cnots"]


def test_sparse_state_prep_signs_and_bit_order():
    v = np.zeros(64)
    v[[3, 17, 40]] = [0.5, -1.0, 2.0]
    out = upload_circuit(v)
    assert out["method"] == "sparse" and out["qubits"] == 7  # 6 data wires + 1 work wire
    assert out["fidelity"] == pytest.approx(1.0, abs=1e-10)
    # wire 0 is the most significant bit: amplitude index 17 = 0b010001
    assert np.real(out["state"][17]) == pytest.approx(-1.0 / np.linalg.norm(v), abs=1e-10)
    one = np.zeros(8)
    one[5] = -2.0
    out1 = upload_circuit(one)
    assert np.allclose(out1["state"], one / 2.0, atol=1e-12)
    # the sparse circuit is cheaper than the dense one for a 3-sparse vector on 6 qubits
    assert out["cnots"] < upload_circuit(v, "dense")["cnots"]


def test_upload_cost_formulas():
    c = upload_cost(n=1000, P=2**20)
    assert c["qubits"] == 20
    assert c["sparse_state_prep"]["cnots"] == 1000 * 20
    assert c["qram"]["depth"] == 400 and c["qram"]["queries"] == 20
    assert c["dense_state_prep"]["cnots"] == 2**21 - 4
    with pytest.raises(UsageError):
        upload_cost(n=5, P=3)
    with pytest.raises(UsageError):
        upload_circuit(np.zeros(4))
