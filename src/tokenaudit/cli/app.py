"""The typer app, shared options and the error boundary of every command."""

from __future__ import annotations

import functools
import io
import os
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from tokenaudit.errors import TokenauditError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="tokenaudit",
    help="Where did our LLM tokens go? Load usage exports, gateway logs and traces into one "
    "local DuckDB file, price every call, and rank spend by workflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)

err = Console(stderr=True, highlight=False)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="DuckDB file (default: ./tokenaudit.duckdb, or $TOKENAUDIT_DB).",
        show_default=False,
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings file (default: ./tokenaudit.toml, or the tool.tokenaudit table of "
        "pyproject.toml).",
    ),
]


def db_path(value: Path | None) -> Path:
    from tokenaudit.db import default_db_path

    return value if value is not None else default_db_path()


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """User errors print one line (and a hint) on stderr and exit with their code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = fn(*args, **kwargs)
            _write_file_consoles()
            return result
        except typer.Exit:
            _write_file_consoles()  # a finding (exit 1) still writes its report
            raise
        except TokenauditError as e:
            err.print(f"[red]error:[/] {e}", markup=True, soft_wrap=True, highlight=False)
            if e.hint:
                err.print(f"[dim]hint: {e.hint}[/]", soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("[red]interrupted[/]: the file being loaded was rolled back")
            raise typer.Exit(130) from None
        finally:
            _FILE_CONSOLES.clear()

    return wrapper


def emit(text: str, output: Path | None) -> None:
    """Write data to stdout, or atomically to ``output``."""
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    err.print(f"wrote {output}")


PIPE_WIDTH = 150  # rich tables written to a pipe or a file get this width ($COLUMNS wins)


def pipe_width() -> int:
    value = os.environ.get("COLUMNS", "")
    return int(value) if value.isdigit() and int(value) >= 40 else PIPE_WIDTH


_FILE_CONSOLES: dict[Path, Console] = {}


def console_for(output: Path | None) -> Console:
    """A console for rich tables: the terminal, a pipe, or a file.

    Every table a command writes to ``--output FILE`` goes to one console, whose text is
    written to the file (atomically) when the command ends (``handle_errors``).
    """
    if output is None:
        console = Console(highlight=False)
        if not console.is_terminal:
            console = Console(highlight=False, width=pipe_width())
        return console
    key = output.resolve()
    if key not in _FILE_CONSOLES:
        _FILE_CONSOLES[key] = Console(
            file=io.StringIO(), width=pipe_width(), highlight=False, color_system=None
        )
    return _FILE_CONSOLES[key]


def _write_file_consoles() -> None:
    for path, console in _FILE_CONSOLES.items():
        assert isinstance(console.file, io.StringIO)
        emit(console.file.getvalue(), path)
    _FILE_CONSOLES.clear()
