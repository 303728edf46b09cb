"""`tokenaudit check` (the CI gate) and `tokenaudit baseline`."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from tokenaudit.cli.app import (
    ConfigOption,
    DbOption,
    OutputOption,
    app,
    console_for,
    db_path,
    emit,
    err,
    handle_errors,
)


class CheckFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    junit = "junit"
    github = "github"


BudgetsOption = Annotated[
    Path,
    typer.Option(
        "--budgets",
        "-b",
        help="The budgets file (a list of rule tables, see budgets.example.toml).",
    ),
]


@app.command()
@handle_errors
def check(
    budgets: BudgetsOption = Path("budgets.toml"),
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Compare against this file from 'tokenaudit baseline'."),
    ] = None,
    fmt: Annotated[
        CheckFormat, typer.Option("--format", "-f", help="Output format.")
    ] = CheckFormat.table,
    only_changed: Annotated[
        bool,
        typer.Option("--only-changed", help="Show only the fails and warnings (quiet if none)."),
    ] = False,
    db: DbOption = None,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """The CI gate: exit 1 when a rule of the budgets file breaches its fail level (or
    regresses beyond its limit against --baseline), 0 otherwise; warnings never fail."""
    from tokenaudit import api
    from tokenaudit.config import load_config
    from tokenaudit.gate import render

    result = api.check(db_path(db), budgets, baseline, load_config(config))
    if fmt == CheckFormat.json:
        emit(render.as_json(result, only_changed), output)
    elif fmt == CheckFormat.markdown:
        emit(render.markdown(result, only_changed), output)
    elif fmt == CheckFormat.junit:
        emit(render.junit(result), output)
    elif fmt == CheckFormat.github:
        emit(render.github(result, only_changed), output)
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file:
            with open(summary_file, "a", encoding="utf-8") as f:
                f.write(render.markdown(result, only_changed))
    elif not only_changed or any(v.verdict in render.CHANGED for v in result.verdicts):
        console = console_for(output)
        console.print(render.table(result, only_changed))
        for line in render.notes(result, only_changed):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    counts = result.counts()
    if counts["warn"]:
        err.print(f"[yellow]warning:[/] {counts['warn']} rule(s) at their warn level")
    err.print(("[red]" if result.failed else "[dim]") + render.summary(result) + "[/]")
    if result.failed:
        raise typer.Exit(1)


@app.command()
@handle_errors
def baseline(
    budgets: BudgetsOption = Path("budgets.toml"),
    db: DbOption = None,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """Store the budgets file's metrics per group (with sample sizes and the price
    snapshot) for 'tokenaudit check --baseline FILE' to compare against."""
    from tokenaudit import api
    from tokenaudit.config import load_config
    from tokenaudit.gate.baseline import dumps

    emit(dumps(api.baseline(db_path(db), budgets, load_config(config))), output)
