"""`tokenaudit reconcile`."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

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
from tokenaudit.cli.report_cmd import SinceOption, UntilOption, _date
from tokenaudit.errors import TokenauditError


def fraction(value: str | None, option: str) -> Decimal | None:
    """A share given as 0.95, 95 or 95%: returned as a fraction."""
    if value is None:
        return None
    text = value.strip().rstrip("%")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise TokenauditError(f"{option} '{value}' is not a number (e.g. 0.95 or 95%)") from None
    if value.strip().endswith("%") or number > 1:
        number /= 100
    if not 0 <= number <= 1:
        raise TokenauditError(f"{option} '{value}' is not between 0 and 100%")
    return number


@app.command()
@handle_errors
def reconcile(
    billing: Annotated[
        bool, typer.Option("--billing", help="Billing exports against the logs (the default).")
    ] = True,
    grain: Annotated[
        str, typer.Option("--grain", help="Period of a row: hour, day or month.")
    ] = "day",
    since: SinceOption = None,
    until: UntilOption = None,
    tolerance: Annotated[
        str,
        typer.Option("--tolerance", help="A row within this of a 100% capture is matched."),
    ] = "1%",
    fail_under: Annotated[
        str | None,
        typer.Option(
            "--fail-under", help="Exit 1 when the total capture rate is below this (e.g. 95%)."
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Also split rows by project (where both sides carry the same project ids).",
        ),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", "-n", help="Show the N largest gaps (unmatched rows).")
    ] = 20,
    show_all: Annotated[
        bool, typer.Option("--all", help="Show every unmatched row in the table.")
    ] = False,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """Billed against logged: capture rate per period, provider and model, gaps by cause."""
    from tokenaudit import api
    from tokenaudit.config import load_config
    from tokenaudit.reconcile import render
    from tokenaudit.reconcile.billing import Options

    if not billing:
        raise TokenauditError("nothing to reconcile", hint="pass --billing")
    tol = fraction(tolerance, "--tolerance")
    floor = fraction(fail_under, "--fail-under")
    opts = Options(
        grain=grain,
        since=_date(since, "--since"),
        until=_date(until, "--until"),
        tolerance=tol if tol is not None else Decimal("0.01"),
        by=tuple(x.strip() for x in (by or "").split(",") if x.strip()),
    )
    rec = api.reconcile_billing(db_path(db), opts, load_config(config))
    if not rec.rows:
        err.print(
            "[yellow]no billing lines to reconcile[/]: load a provider usage or cost export "
            "first ('tokenaudit formats' lists them)"
        )
    if fmt == Format.json:
        emit(render.reconcile_json(rec), output)
    elif fmt == Format.csv:
        emit(render.reconcile_csv(rec), output)
    elif fmt == Format.markdown:
        emit(render.reconcile_markdown(rec), output)
    elif rec.rows:
        print_reconciliation(rec, None if show_all else top, output)
    capture = rec.totals["capture_rate"]
    if floor is not None and capture is not None and capture < floor:
        err.print(f"[red]capture rate {capture:.2%} is below --fail-under {floor:.2%}[/]")
        raise typer.Exit(1)


def print_reconciliation(rec: object, top: int | None, output: Path | None) -> None:
    from tokenaudit.reconcile import render
    from tokenaudit.reconcile.billing import Reconciliation

    assert isinstance(rec, Reconciliation)
    console = console_for(output)
    table, hidden = render.rows_table(rec, top)
    console.print(table)
    notes = [render.summary_line(rec)]
    if hidden:
        notes.append(f"{hidden:,} more unmatched rows (--all shows them)")
    no_model = rec.meta.get("billed_without_model_usd")
    if no_model:
        notes.append(f"billed without a model (tools, storage, other services): ${no_model:,.2f}")
    without = rec.meta.get("providers_without_billing")
    if without:
        notes.append("not reconciled, no billing loaded: " + ", ".join(without))
    err.print("[dim]" + "; ".join(notes) + "[/]", soft_wrap=True)
    if rec.causes:
        console.print()
        console.print(render.causes_table(rec))
