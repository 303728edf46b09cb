"""Reconciliation: what was billed against what was logged (``billing``)."""
