"""`tokenaudit ingest` and `tokenaudit formats`."""

from __future__ import annotations

import sys
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


def print_notices(summary: object) -> None:
    """What ingest wants said once (a tokenizer not available offline, ...), on stderr."""
    from tokenaudit.api import IngestSummary

    assert isinstance(summary, IngestSummary)
    for notice in summary.meta.get("notices", []):
        err.print(f"[yellow]note[/]: {notice}", soft_wrap=True)


def ingest_table(summary: object) -> Table:
    from tokenaudit.api import IngestSummary

    assert isinstance(summary, IngestSummary)
    table = Table(title="Ingest", title_justify="left", header_style="bold", show_footer=True)
    t = summary.totals()
    table.add_column(
        "file", footer=f"{t['files']} file{'' if t['files'] == 1 else 's'}", overflow="fold"
    )
    table.add_column("format")
    table.add_column("kind")
    table.add_column("read", justify="right", footer=f"{t['records_read']:,}")
    table.add_column("loaded", justify="right", footer=f"{t['rows_loaded']:,}")
    table.add_column("quarantined", justify="right", footer=f"{t['rows_quarantined']:,}")
    table.add_column("status")
    for f in summary.files:
        status = {
            "skipped": "already loaded",
            "empty": "empty file",
            "unrecognised": "unrecognised, skipped",
        }.get(f.status, f.status)
        q = f"[yellow]{f.rows_quarantined:,}[/]" if f.rows_quarantined else "0"
        table.add_row(
            f.path, f.format, f.kind, f"{f.records_read:,}", f"{f.rows_loaded:,}", q, status
        )
    return table


@app.command()
@handle_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive); .gz is read.")],
    input_format: Annotated[
        str | None,
        typer.Option("--input-format", help="Skip detection; see 'tokenaudit formats'."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--map",
            help="Read every file with this mapping (TOML: file type, field paths, token "
            "conventions, cost unit) instead of a known format.",
        ),
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    output: OutputOption = None,
    config: ConfigOption = None,
) -> None:
    """Load usage exports, request logs and traces into the database."""
    from tokenaudit import api
    from tokenaudit.config import load_config
    from tokenaudit.report import render

    if mapping is not None and input_format is not None:
        raise typer.BadParameter("cannot be combined with --input-format", param_hint="'--map'")
    cfg = load_config(config)
    if sys.stderr.isatty():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            task = progress.add_task("loading", total=None)

            def on_file(path: Path, done: int, total: int) -> None:
                progress.update(task, completed=done, total=total, description=path.name)

            summary = api.ingest(db_path(db), paths, input_format, cfg, on_file, mapping)
    else:
        summary = api.ingest(db_path(db), paths, input_format, cfg, custom_map=mapping)
    print_notices(summary)
    if fmt == Format.json:
        rows = [
            {
                **f.as_dict(),
                "quarantined_lines": [
                    {"line": n, "reason": r} for n, r in summary.quarantine.get(f.path, [])
                ],
            }
            for f in summary.files
        ]
        emit(
            render.to_json(
                {
                    "rows": rows,
                    "totals": summary.totals(),
                    "meta": {"db": summary.db, **summary.meta},
                }
            ),
            output,
        )
        return
    if fmt in (Format.csv, Format.markdown):
        header = [
            "path",
            "format",
            "kind",
            "status",
            "records_read",
            "rows_loaded",
            "rows_quarantined",
        ]
        body = [
            [
                render.safe_cell(f.path),
                f.format,
                f.kind,
                f.status,
                str(f.records_read),
                str(f.rows_loaded),
                str(f.rows_quarantined),
            ]
            for f in summary.files
        ]
        text = (
            render.rows_csv(header, body)
            if fmt == Format.csv
            else render.rows_markdown(header, body, 4)
        )
        emit(text, output)
        return
    console = console_for(output)
    console.print(ingest_table(summary))
    for path, lines in summary.quarantine.items():
        err.print(f"[yellow]quarantined in {path}:[/]", highlight=False)
        for n, reason in lines[:10]:
            err.print(f"  line {n}: {reason}", highlight=False, markup=False)
        more = next(f.rows_quarantined for f in summary.files if f.path == path) - len(lines[:10])
        if more > 0:
            err.print(f"  … and {more} more (--format json lists up to 100 per file)")


@app.command()
@handle_errors
def formats(fmt: FormatOption = Format.table, output: OutputOption = None) -> None:
    """List the input formats and what detects each."""
    from tokenaudit.ingest import INGESTERS
    from tokenaudit.report import render

    rows = [{"name": i.name, "kind": i.kind, "detects": i.detects} for i in INGESTERS]
    if fmt == Format.json:
        emit(render.to_json({"rows": rows, "totals": {"formats": len(rows)}, "meta": {}}), output)
        return
    if fmt in (Format.csv, Format.markdown):
        body = [[r["name"], r["kind"], r["detects"]] for r in rows]
        header = ["name", "kind", "detects"]
        emit(
            render.rows_csv(header, body)
            if fmt == Format.csv
            else render.rows_markdown(header, body, 3),
            output,
        )
        return
    table = Table(title="Input formats", title_justify="left", header_style="bold")
    table.add_column("--input-format")
    table.add_column("kind")
    table.add_column("detected by", overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["kind"], r["detects"])
    console_for(output).print(table)
    err.print(
        "[dim]any other JSON lines or CSV log: 'tokenaudit ingest --map mapping.toml PATH' "
        "(see docs/formats.md)[/]",
        soft_wrap=True,
    )
