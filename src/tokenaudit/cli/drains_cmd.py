"""`tokenaudit drains`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from tokenaudit.cli.anomaly_cmd import dollars
from tokenaudit.cli.app import (
    ConfigOption,
    DbOption,
    Format,
    FormatOption,
    OutputOption,
    app,
    console_for,
    db_path,
    emit,
    err,
    handle_errors,
)
from tokenaudit.cli.report_cmd import SinceOption, UntilOption, WhereOption, filters


@app.command()
@handle_errors
def drains(
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            "-k",
            help="Only these kinds (repeatable or comma-separated): duplicate_call, "
            "retry_storm, context_bloat, runaway_loop, cache_miss, model_overkill, rejected_work.",
        ),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    where: WhereOption = None,
    min_waste: Annotated[
        str | None, typer.Option("--min-waste", help="Leave out findings under this ($).")
    ] = None,
    top: Annotated[
        int, typer.Option("--top", "-n", help="Show the N costliest findings in the table.")
    ] = 25,
    show_all: Annotated[bool, typer.Option("--all", help="Show every finding.")] = False,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """The waste catalogue: duplicate calls, retry storms, context bloat, runaway loops,
    cache misses, model overkill and rejected work, with dollars, evidence and a fix."""
    from tokenaudit import api
    from tokenaudit.config import load_config
    from tokenaudit.report.queries import Filters

    kinds = tuple(k.strip() for item in kind or [] for k in item.split(",") if k.strip())
    flt = filters(since, until, where)
    assert isinstance(flt, Filters)
    floor = Decimal(0) if min_waste is None else dollars(min_waste, "--min-waste")
    rep = api.drains(db_path(db), flt, kinds or None, floor, load_config(config))
    print_drains(rep, fmt, output, None if show_all else top)


def print_drains(rep: object, fmt: Format, output: Path | None, top: int | None) -> None:
    from tokenaudit.drains import DrainReport, render

    assert isinstance(rep, DrainReport)
    if fmt == Format.json:
        emit(render.drains_json(rep), output)
    elif fmt == Format.csv:
        emit(render.drains_csv(rep), output)
    elif fmt == Format.markdown:
        emit(render.drains_markdown(rep, top), output)
    else:
        console = console_for(output)
        if rep.findings:
            console.print(render.findings_table(rep, top))
            console.print()
            console.print(render.summary_table(rep))
            console.print()
            console.print(render.workflows_table(rep))
        hidden = len(rep.findings) - top if top is not None and len(rep.findings) > top else 0
        line = render.summary_line(rep) + (f"; {hidden:,} more (--all)" if hidden else "")
        err.print("[dim]" + line + "[/]", soft_wrap=True)
