"""`tokenaudit prices` and `tokenaudit sample`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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


@app.command()
@handle_errors
def prices(
    model: Annotated[str | None, typer.Argument(help="A model name as logged, or its id.")] = None,
    unpriced: Annotated[
        bool, typer.Option("--unpriced", help="List the models in the data that have no price.")
    ] = False,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """Show resolved prices per million tokens, with source and effective dates."""
    from tokenaudit import api
    from tokenaudit.config import load_config
    from tokenaudit.report import render

    info = api.prices(db_path(db), None if unpriced else model, load_config(config))
    rows = info.unpriced if unpriced else info.rows
    if fmt == Format.json:
        emit(
            render.to_json(
                {
                    "rows": rows,
                    "totals": {"rows": len(rows)},
                    "meta": {"price_snapshot": info.snapshot},
                }
            ),
            output,
        )
        return
    if fmt in (Format.csv, Format.markdown):
        header = list(rows[0]) if rows else []
        body = [[render.safe_cell("" if v is None else str(v)) for v in r.values()] for r in rows]
        emit(
            render.rows_csv(header, body)
            if fmt == Format.csv
            else render.rows_markdown(header, body, len(header)),
            output,
        )
        return
    console = console_for(output)
    if unpriced:
        table = Table(
            title="Unpriced models (cost shown as unpriced, never $0)",
            title_justify="left",
            header_style="bold",
        )
        for col in ("provider", "model", "calls", "input tokens", "output tokens", "days", "why"):
            table.add_column(col, justify="right" if "tokens" in col or col == "calls" else "left")
        for r in rows:
            table.add_row(
                r["provider"] or "—",
                r["model"],
                f"{r['calls']:,}",
                f"{r['input_tokens_all']:,}",
                f"{r['output_tokens']:,}",
                f"{r['first_day']} → {r['last_day']}",
                r["detail"] or "",
            )
        if rows:
            console.print(table)
        else:
            err.print("every call is priced")
        return
    title = f"Prices per million tokens ({info.snapshot})"
    for table in render.prices_tables(rows, title, console.width) if rows else []:
        console.print(table)
    if model is not None and not rows:
        err.print(
            f"[yellow]{model}: no price[/] in the catalogue or the price files; "
            "calls to it are reported as unpriced"
        )


@app.command()
@handle_errors
def sample(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the dataset into.")],
    events: Annotated[int, typer.Option("--events", help="Number of calls.")] = 20000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 7,
) -> None:
    """Write a realistic synthetic dataset with injected drains and a labels file."""
    from tokenaudit.sample import generate

    summary = generate(out, events=events, seed=seed)
    err.print(f"wrote {summary.events_written:,} calls in {len(summary.files)} files to {out}")
