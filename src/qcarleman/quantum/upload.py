r"""Upload: preparing the initial state |θ̄_S⟩ / |y_in⟩ (ALGORITHM.md §5 "Upload cost").

Small vectors get a real circuit (PennyLane) with its gate count:

* **sparse** (s nonzeros out of 2^q): ``qml.Superposition`` — a ⌈log2 s⌉-qubit ``StatePrep`` of
  the s coefficients followed by a permutation of basis states with one work wire (PennyLane
  docs; the construction of Malvetti, Iten, Colbeck, Quantum 5, 412 (2021) §4).
* **dense**: ``qml.MottonenStatePreparation`` (Möttönen, Vartiainen, Bergholm, Salomaa, QIC 5,
  467 (2005)), uniformly controlled RY/RZ rotations, O(2^q) CNOTs.

Gate counts are computed by decomposing to {CNOT, single-qubit rotations, X, multi-controlled
X} with ``qml.transforms.decompose`` and counted with ``qml.specs`` (:func:`count_gates`).

Large vectors get cost formulas (:func:`upload_cost`), each with its source:

* sparse state preparation, Gleinig & Wille, "An efficient algorithm for sparse quantum state
  preparation", DAC 2021: O(s·q) CNOTs for s nonzeros on q = ⌈log2 P⌉ qubits; reported as s·q
  CNOTs (leading order, constant 1).
* Möttönen dense preparation: per level k = 0..q−1 one uniformly controlled RY and one RZ with
  k controls, each costing 2^k CNOTs for k ≥ 1 (Möttönen et al., PRL 93, 130502 (2004)), so
  2·Σ_{k=1}^{q−1} 2^k = 2^{q+1} − 4 CNOTs as PennyLane builds it (the test checks this against
  the decomposed circuit); a real state needs only the RY half, 2^q − 2.
* QRAM, bucket brigade (Giovannetti, Lloyd, Maccone, PRL 100, 160501 (2008)): one query has
  depth O(q) and activates O(q) routers over a memory of P cells; state preparation with the
  Kerenidis–Prakash binary-tree data structure (ITCS 2017, arXiv:1603.08675, Thm 5.1) needs q
  queries (one per tree level) plus q controlled rotations: depth O(q²) = O(log² P).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UsageError

__all__ = ["state_prep_circuit", "count_gates", "upload_circuit", "upload_cost"]


def _wires_for(n: int) -> int:
    return max(1, int(np.ceil(np.log2(n))))


def state_prep_circuit(vector, method: str | None = None):
    """Quantum function preparing |v⟩ = v/‖v‖ on q = ⌈log2 len(v)⌉ wires (wire 0 = MSB).

    method: "sparse" (qml.Superposition, one extra work wire) or "dense" (Möttönen); default
    sparse when at most a quarter of the entries are nonzero. Returns (qfunc, n_wires, method).
    """
    import pennylane as qml

    v = np.asarray(vector, dtype=float).ravel()
    nrm = np.linalg.norm(v)
    if v.size == 0 or nrm == 0 or not np.isfinite(nrm):
        raise UsageError("the vector to upload must be non-zero and finite")
    q = _wires_for(v.size)
    full = np.zeros(1 << q)
    full[: v.size] = v / nrm
    nz = np.flatnonzero(full)
    if method is None:
        method = "sparse" if 4 * nz.size <= full.size else "dense"
    if method == "sparse":
        if nz.size == 1:
            bits = [int(b) for b in np.binary_repr(nz[0], q)]

            def qfunc() -> None:
                qml.BasisState(np.array(bits), wires=range(q))
                if full[nz[0]] < 0:
                    qml.GlobalPhase(np.pi, wires=range(q))

            return qfunc, q, method
        bases = np.array([[int(b) for b in np.binary_repr(i, q)] for i in nz])

        def qfunc() -> None:
            qml.Superposition(full[nz], bases, wires=range(q), work_wire=q)

        return qfunc, q + 1, method
    if method == "dense":

        def qfunc() -> None:
            qml.MottonenStatePreparation(full, wires=range(q))

        return qfunc, q, method
    raise UsageError(f"method must be 'sparse' or 'dense'; got {method!r}")


def count_gates(qfunc, n_wires: int) -> dict[str, Any]:
    """Gate counts after decomposing to CNOT, RY, RZ, X, Hadamard, multi-controlled X,
    GlobalPhase (PennyLane graph decomposition)."""
    import pennylane as qml

    gate_set = {"CNOT", "RY", "RZ", "PauliX", "Hadamard", "MultiControlledX", "GlobalPhase"}
    dev = qml.device("default.qubit", wires=n_wires)

    def circuit():
        qfunc()
        return qml.state()

    qnode = qml.transforms.decompose(qml.QNode(circuit, dev), gate_set=gate_set)
    res = qml.specs(qnode)().resources
    types = dict(res.gate_types)
    return {
        "gate_types": types,
        "num_gates": int(res.num_gates),
        "cnots": int(types.get("CNOT", 0)),
        "depth": int(res.depth),
    }


def upload_circuit(vector, method: str | None = None) -> dict[str, Any]:
    """Build the state-preparation circuit, simulate it and count gates.

    Returns {"state": prepared amplitudes on the data wires (work wire traced at |0⟩),
    "fidelity": |⟨v̂|state⟩|², "qubits", "method", and the :func:`count_gates` fields}.
    """
    import pennylane as qml

    v = np.asarray(vector, dtype=float).ravel()
    qfunc, nw, method = state_prep_circuit(v, method)
    q = _wires_for(v.size)
    dev = qml.device("lightning.qubit", wires=nw)

    def circuit():
        qfunc()
        return qml.state()

    psi = np.asarray(qml.QNode(circuit, dev)()).reshape(1 << q, -1)[:, 0]
    target = np.zeros(1 << q)
    target[: v.size] = v / np.linalg.norm(v)
    out = {
        "state": psi,
        "fidelity": float(abs(np.vdot(target, psi)) ** 2),
        "qubits": nw,
        "method": method,
    }
    out.update(count_gates(qfunc, nw))
    return out


def upload_cost(n: int, P: int) -> dict[str, Any]:
    """Cost formulas for uploading an n-sparse vector of P entries (module doc, with sources).

    q = ⌈log2 P⌉. Returns leading-order counts, each with its formula and source.
    """
    if n < 1 or P < n:
        raise UsageError(f"need 1 <= n <= P; got n={n}, P={P}")
    q = _wires_for(P)
    mottonen = 2 ** (q + 1) - 4 if q > 1 else 0
    return {
        "n": int(n),
        "P": int(P),
        "qubits": q,
        "sparse_state_prep": {
            "cnots": int(n * q),
            "formula": "s·q CNOTs (leading order, constant 1)",
            "source": "Gleinig & Wille, DAC 2021, 'An efficient algorithm for sparse quantum "
            "state preparation'",
        },
        "dense_state_prep": {
            "cnots": int(mottonen),
            "formula": "2^(q+1) − 4 CNOTs (uniformly controlled RY + RZ; RY only: 2^q − 2)",
            "source": "Möttönen et al., QIC 5, 467 (2005); PRL 93, 130502 (2004)",
        },
        "qram": {
            "queries": int(q),
            "depth_per_query": int(q),
            "depth": int(q * q),
            "memory_cells": int(P),
            "formula": "q queries of depth q (bucket brigade) → depth q² = O(log² P); P cells",
            "source": "Giovannetti, Lloyd, Maccone, PRL 100, 160501 (2008); Kerenidis & "
            "Prakash, ITCS 2017 (arXiv:1603.08675) Thm 5.1",
        },
    }
