"""`tokenaudit report` and `tokenaudit audit`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

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
from tokenaudit.errors import TokenauditError

ByOption = Annotated[
    str,
    typer.Option(
        "--by",
        "-b",
        help="Dimensions, comma-separated: workflow, team, tenant, user, agent, prompt_version, "
        "environment, project, provider, model, model_id, service_tier, api_key, session_id, "
        "trace_id, status, source, day, week, month, hour.",
    ),
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="First day (YYYY-MM-DD, UTC), inclusive.")
]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="Last day (YYYY-MM-DD, UTC), inclusive.")
]
WhereOption = Annotated[
    list[str] | None,
    typer.Option("--where", "-w", help="Keep rows where DIM=VALUE (repeatable)."),
]
TopOption = Annotated[
    int | None, typer.Option("--top", "-n", help="Show the N costliest groups; fold the rest.")
]


class ReportFormat(StrEnum):
    """``Format`` plus ``html``, which only ``report`` writes."""

    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    html = "html"


BudgetsOption = Annotated[
    Path | None,
    typer.Option(
        "--budgets",
        help="Budgets file: --format html shows the states of its monthly spend rules.",
    ),
]
HtmlOption = Annotated[
    Path | None,
    typer.Option("--html", help="Also write the self-contained HTML report to this file."),
]


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise TokenauditError(f"{option} '{value}' is not a date (YYYY-MM-DD)") from None


def filters(since: str | None, until: str | None, where: list[str] | None) -> object:
    from tokenaudit.report.queries import Filters

    pairs = []
    for item in where or []:
        dim, sep, value = item.partition("=")
        if not sep or not dim.strip():
            raise TokenauditError(f"--where '{item}' is not DIM=VALUE")
        pairs.append((dim.strip(), value.strip()))
    return Filters(_date(since, "--since"), _date(until, "--until"), tuple(pairs))


def render_report(report: object, fmt: Format, output: Path | None, title: str) -> None:
    from tokenaudit.report import render
    from tokenaudit.report.queries import Report

    assert isinstance(report, Report)
    if fmt == Format.json:
        emit(render.report_json(report), output)
    elif fmt == Format.csv:
        emit(render.report_csv(report), output)
    elif fmt == Format.markdown:
        emit(render.report_markdown(report), output)
    else:
        console = console_for(output)
        console.print(render.report_table(report, title, console.width))
        unpriced = report.totals["unpriced_requests"]
        if unpriced:
            err.print(
                f"[yellow]{unpriced:,} {'call is' if unpriced == 1 else 'calls are'} unpriced[/] "
                "(no price for their model): "
                "see 'tokenaudit prices --unpriced'; add a price file in pricing/ to price them"
            )


@app.command()
@handle_errors
def report(
    by: ByOption = "workflow",
    since: SinceOption = None,
    until: UntilOption = None,
    where: WhereOption = None,
    top: TopOption = None,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="Order: cost (default), cost_per_accepted (highest first), acceptance "
            "(lowest first), rejected (rejected or escalated spend), requests.",
        ),
    ] = "cost",
    db: DbOption = None,
    fmt: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            "-f",
            help="Output format; html: one self-contained page with charts (use --output).",
        ),
    ] = ReportFormat.table,
    output: OutputOption = None,
    config: ConfigOption = None,
    budgets: BudgetsOption = None,
) -> None:
    """Rank spend by any dimensions (cost, tokens, outcomes, rejected spend, retries)."""
    from tokenaudit import api
    from tokenaudit.config import load_config
    from tokenaudit.report.queries import Filters

    dims = [d.strip() for d in by.split(",") if d.strip()]
    flt = filters(since, until, where)
    assert isinstance(flt, Filters)
    if fmt == ReportFormat.html:
        page = api.html_report(db_path(db), flt, load_config(config), budgets, top or 15)
        emit(page, output)
        return
    result = api.report(db_path(db), dims, flt, top, load_config(config), sort)
    order = "" if sort == "cost" else f", by {sort.replace('_', ' ')}"
    render_report(result, Format(fmt.value), output, f"Spend by {', '.join(dims)}{order}")


@app.command()
@handle_errors
def audit(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to load first.")],
    top: TopOption = 15,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    config: ConfigOption = None,
    html: HtmlOption = None,
) -> None:
    """Ingest, then spend by workflow, the top drains and any anomaly, billing and token
    reconciliation: start here."""
    from tokenaudit import api
    from tokenaudit.cli.ingest_cmd import ingest_table, print_notices
    from tokenaudit.config import load_config
    from tokenaudit.drains.render import payload as drains_payload
    from tokenaudit.reconcile.render import reconcile_payload
    from tokenaudit.reconcile.tokens import Options as TokenOptions
    from tokenaudit.reconcile.tokens_render import tokens_payload
    from tokenaudit.report import render

    cfg = load_config(config)
    summary = api.ingest(db_path(db), paths, None, cfg)
    print_notices(summary)
    result = api.report(db_path(db), ["workflow"], None, top, cfg)
    rec = api.reconcile_billing(db_path(db), None, cfg)
    trec = api.reconcile_tokens(db_path(db), TokenOptions(top=5), cfg)
    has_tokens = bool(trec.models or trec.gateway)
    drains = api.drains(db_path(db), None, None, Decimal(0), cfg)
    spikes = api.anomalies(db_path(db), None, cfg)
    if html is not None:
        known = api.Known(result if top else None, drains, rec, trec)
        emit(api.html_report(db_path(db), None, cfg, None, top or 15, known), html)
    if fmt == Format.json:
        payload: dict[str, Any] = {
            "ingest": {"rows": [f.as_dict() for f in summary.files], "totals": summary.totals()},
            "report": {"rows": result.rows, "totals": result.totals, "meta": result.meta},
            "drains": drains_payload(drains),
            "anomalies": {
                "rows": spikes.rows,
                "velocity": spikes.velocity,
                "totals": spikes.totals,
                "meta": spikes.meta,
            },
            "reconcile": reconcile_payload(rec),
        }
        if has_tokens:
            payload["tokens"] = tokens_payload(trec)
        emit(render.to_json(payload), output)
        return
    if fmt != Format.table:
        render_report(result, fmt, output, "")
        return
    console = console_for(output)
    console.print(ingest_table(summary))
    console.print()
    render_report(result, fmt, output, "Spend by workflow")
    window = f"{result.meta.get('first_ts') or '—'} → {result.meta.get('last_ts') or '—'} UTC"
    err.print(
        f"[dim]window {window}; prices {result.meta.get('price_snapshot')}[/]", soft_wrap=True
    )
    if drains.findings:
        from tokenaudit.drains.render import findings_table, summary_line

        console.print()
        console.print(findings_table(drains, 8))
        err.print(f"[dim]{summary_line(drains)}; 'tokenaudit drains' for all[/]", soft_wrap=True)
    if spikes.rows or spikes.velocity:
        from tokenaudit.cli.anomaly_cmd import print_anomalies

        console.print()
        print_anomalies(spikes, Format.table, output)
    if rec.rows:
        from tokenaudit.cli.reconcile_cmd import print_reconciliation

        console.print()
        print_reconciliation(rec, 10, output)
    if has_tokens:
        from tokenaudit.cli.reconcile_cmd import print_token_reconciliation

        console.print()
        print_token_reconciliation(trec, output, brief=True)
