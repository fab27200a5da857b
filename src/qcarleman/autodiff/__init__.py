"""Automatic differentiation of a PyTorch loss over the active set S (ALGORITHM.md §1, §6).

``operators`` (:class:`ActiveParams`, :class:`LossOperators`: gradient, Hessian-vector and
third-order products), ``distributed`` (the same operators with the data sharded over
``torch.distributed`` processes), ``gdmap`` (:class:`GDMap`, gradient descent as a quadratic map)
and ``lowrank`` (order-1/order-2 Carleman emulation in low-rank form). First layer that imports
torch.
"""
