"""What a fault-tolerant run would cost (ALGORITHM.md §7): ``estimate`` (logical bill and the
classical cost of the same steps), ``physical`` (surface-code model and the Azure estimator),
``breakeven`` (the active-set size at which the quantum bill would win)."""
