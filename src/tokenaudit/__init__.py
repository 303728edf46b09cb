"""tokenaudit: where did our LLM tokens go?

A local FinOps analyzer for LLM spend. The library never prints; the CLI in
``tokenaudit.cli`` is a thin layer over it. Importing this package is cheap:
heavy modules (duckdb, polars, genai-prices, tiktoken) load only where needed.
"""

__version__ = "0.1.0"
