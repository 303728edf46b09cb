"""The CI gate: budgets and baseline regressions judged over the loaded data
(``metrics`` computes, ``check`` judges, ``baseline`` stores, ``render`` writes)."""
