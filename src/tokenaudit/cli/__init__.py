"""The command line: a thin typer layer over ``tokenaudit.api``."""

from __future__ import annotations

from tokenaudit.cli import (  # noqa: F401  (registers commands)
    anomaly_cmd,
    check_cmd,
    drains_cmd,
    ingest_cmd,
    prices_cmd,
    reconcile_cmd,
    report_cmd,
)
from tokenaudit.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
