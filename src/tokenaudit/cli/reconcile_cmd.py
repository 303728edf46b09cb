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
        bool, typer.Option("--billing", help="Billing exports against the logs.")
    ] = False,
    tokens: Annotated[
        bool,
        typer.Option("--tokens", help="Provider-reported against locally tokenized input counts."),
    ] = False,
    grain: Annotated[
        str, typer.Option("--grain", help="Billing: period of a row: hour, day or month.")
    ] = "day",
    since: SinceOption = None,
    until: UntilOption = None,
    tolerance: Annotated[
        str | None,
        typer.Option(
            "--tolerance",
            help="Billing: a row within this of a 100% capture is matched (1%). Tokens: a "
            "drift within this share of the count is noise (2%).",
        ),
    ] = None,
    fail_under: Annotated[
        str | None,
        typer.Option(
            "--fail-under", help="Exit 1 when the total capture rate is below this (e.g. 95%)."
        ),
    ] = None,
    fail_over: Annotated[
        str | None,
        typer.Option(
            "--fail-over",
            help="Exit 1 when the median token drift of any model is beyond this (e.g. 5%).",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Billing: also split rows by project (where both sides carry the same ids).",
        ),
    ] = None,
    top: Annotated[
        int,
        typer.Option("--top", "-n", help="Show the N largest gaps and token drift outliers."),
    ] = 20,
    show_all: Annotated[
        bool, typer.Option("--all", help="Show every unmatched row and every outlier.")
    ] = False,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """Billed against logged (capture rate, gaps by cause) and reported against locally
    counted tokens (drift per model and workflow, outliers by cause); both by default."""
    from tokenaudit import api
    from tokenaudit.config import load_config
    from tokenaudit.reconcile import render, tokens_render
    from tokenaudit.reconcile.billing import Options
    from tokenaudit.reconcile.tokens import Options as TokenOptions

    both = not billing and not tokens
    tol = fraction(tolerance, "--tolerance")
    floor = fraction(fail_under, "--fail-under")
    ceiling = fraction(fail_over, "--fail-over")
    start, end = _date(since, "--since"), _date(until, "--until")
    cfg = load_config(config)
    rec = trec = None
    if billing or both:
        opts = Options(
            grain=grain,
            since=start,
            until=end,
            tolerance=tol if tol is not None else Decimal("0.01"),
            by=tuple(x.strip() for x in (by or "").split(",") if x.strip()),
        )
        rec = api.reconcile_billing(db_path(db), opts, cfg)
    if tokens or both:
        topts = TokenOptions(
            since=start,
            until=end,
            tolerance=float(tol) if tol is not None else 0.02,
            top=0 if show_all else top,
        )
        trec = api.reconcile_tokens(db_path(db), topts, cfg)
        if both and not (trec.models or trec.gateway):
            trec = None  # nothing was tokenized locally: billing alone, as before
        elif both and rec is not None and not rec.rows:
            rec = None  # no billing loaded: the token reconciliation alone
    if rec is not None and not rec.rows and (not both or trec is None):
        err.print(
            "[yellow]no billing lines to reconcile[/]: load a provider usage or cost export "
            "first ('tokenaudit formats' lists them)"
        )
    if trec is not None and not (trec.models or trec.gateway):
        err.print(
            "[yellow]no locally counted prompts to compare[/]: load request logs or traces "
            "that carry the prompt text (see 'tokenaudit formats')"
        )
    if fmt == Format.json:
        from tokenaudit.report.render import to_json

        if rec is None and trec is not None:
            emit(tokens_render.tokens_json(trec), output)
        elif rec is not None:
            payload = render.reconcile_payload(rec)
            if trec is not None:  # both: the token reconciliation under "tokens"
                payload["tokens"] = tokens_render.tokens_payload(trec)
            emit(to_json(payload), output)
    elif fmt == Format.csv:
        if rec is not None and trec is not None:
            raise TokenauditError("--format csv holds one table", hint="pass --billing or --tokens")
        if rec is not None:
            emit(render.reconcile_csv(rec), output)
        elif trec is not None:
            emit(tokens_render.tokens_csv(trec), output)
    elif fmt == Format.markdown:
        parts = [render.reconcile_markdown(rec)] if rec is not None and rec.rows else []
        if trec is not None and (trec.models or trec.gateway):
            parts.append(tokens_render.tokens_markdown(trec))
        emit("\n".join(parts), output)
    else:
        if rec is not None and rec.rows:
            print_reconciliation(rec, None if show_all else top, output)
        if trec is not None and (trec.models or trec.gateway):
            if rec is not None and rec.rows:
                console_for(output).print()
            print_token_reconciliation(trec, output)
    failed = False
    capture = rec.totals["capture_rate"] if rec is not None else None
    if floor is not None and capture is not None and capture < floor:
        err.print(f"[red]capture rate {capture:.2%} is below --fail-under {floor:.2%}[/]")
        failed = True
    if ceiling is not None and trec is not None:
        for m in trec.models:
            drift = m["median_drift_pct"]
            if drift is not None and abs(drift) > ceiling:
                err.print(
                    f"[red]median token drift of {m['model']} is "
                    f"{tokens_render.signed_pct(drift)}, beyond --fail-over {ceiling:.1%}[/]"
                )
                failed = True
    if failed:
        raise typer.Exit(1)


def print_token_reconciliation(trec: object, output: Path | None, brief: bool = False) -> None:
    from tokenaudit.reconcile import tokens_render
    from tokenaudit.reconcile.tokens import TokenReconciliation

    assert isinstance(trec, TokenReconciliation)
    console = console_for(output)
    for i, table in enumerate(tokens_render.tables(trec, brief, console.width)):
        if i:
            console.print()
        console.print(table)
    err.print("[dim]" + tokens_render.summary_line(trec) + "[/]", soft_wrap=True)


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
