"""What a fault-tolerant run would cost (ALGORITHM.md §7), one module per concept: ``inputs``
(the value types Problem, Conditioning, CostModel), ``formulas`` (one pure function per cost
formula, with its source), ``estimate`` (the bill of one segment), ``bill`` (ResourceEstimate
and its JSON form), ``physical`` (surface-code model and the Azure estimator), ``breakeven``
(the active-set size at which the quantum bill would win)."""
