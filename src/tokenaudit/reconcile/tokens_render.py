"""Turning a token reconciliation into text: rich tables, JSON, CSV and markdown.

Each view is a list of sections (title, header, rows as strings, first numeric column), so
the terminal tables and the markdown say the same thing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rich.table import Table

from tokenaudit.reconcile.tokens import TokenReconciliation
from tokenaudit.report.render import rows_csv, rows_markdown, safe_cell, to_json


@dataclass(frozen=True)
class Section:
    title: str
    header: list[str]
    rows: list[list[str]]
    numeric_from: int
    numeric_to: int | None = None
    drop: tuple[str, ...] = ()  # columns left out, in this order, when a terminal is narrow


def tokens_payload(rec: TokenReconciliation) -> dict[str, Any]:
    """``rows``: one per model (the contract's row list), then the other views."""
    payload = asdict(rec)
    return {"rows": payload.pop("models"), **payload}


def tokens_json(rec: TokenReconciliation) -> str:
    return to_json(tokens_payload(rec))


def signed_pct(value: float | None) -> str:
    if value is None:
        return "—"
    text = f"{value * 100:+.1f}%"
    return "0.0%" if text in ("+0.0%", "-0.0%") else text


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _tokens(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    text = f"{value:+,.0f}" if signed else f"{value:,.0f}"
    return "0" if text in ("+0", "-0") else text


def _label(value: Any) -> str:
    return "(none)" if value is None else safe_cell(str(value))


def _method(m: dict[str, Any]) -> str:
    """How a model's prompts are estimated: ``o200k_base exact``, ``o200k_base ×1.149
    ±4.6%`` (calibrated: median ratio and the band's half-width), or uncalibrated."""
    tokenizer = m["tokenizer"]
    if m["method"] == "calibrated" and m["band"]:
        lo, hi = m["band"]
        ratio = m["reference_ratio"]
        return f"{tokenizer} ×{ratio:.3f} ±{(hi - lo) / 2 / ratio * 100:.1f}%"
    if m["method"] == "uncalibrated":
        return f"{tokenizer}, too few to calibrate"
    return f"{tokenizer} exact"


def sections(rec: TokenReconciliation, detail: bool = False) -> list[Section]:
    """``detail``: each outlier's cause with its one-line explanation."""
    out = [
        Section(
            "Token drift by model (reported − local)",
            [
                "model",
                "counted with",
                "requests",
                "median drift",
                "p95 |drift|",
                "median tokens",
                "outside",
            ],
            [
                [
                    _label(m["model"]),
                    _method(m),
                    f"{m['requests']:,}",
                    signed_pct(m["median_drift_pct"]),
                    _pct(m["p95_abs_drift_pct"]),
                    _tokens(m["median_drift_tokens"], signed=True),
                    "—"
                    if m["outside_share"] is None
                    else f"{m['outside']:,} ({_pct(m['outside_share'])})",
                ]
                for m in rec.models
            ],
            2,
            drop=("median tokens", "p95 |drift|"),
        )
    ]
    if rec.workflows:
        out.append(
            Section(
                "Token drift by workflow",
                ["workflow", "models", "requests", "median drift", "p95 |drift|", "outside"],
                [
                    [
                        _label(w["workflow"]),
                        f"{w['models']:,}",
                        f"{w['requests']:,}",
                        signed_pct(w["median_drift_pct"]),
                        _pct(w["p95_abs_drift_pct"]),
                        f"{w['outside']:,} ({_pct(w['outside_share'])})",
                    ]
                    for w in rec.workflows
                ],
                1,
            )
        )
    if rec.gaps:
        out.append(
            Section(
                "What an estimate that leaves a part out would miss",
                [
                    "model",
                    "left out",
                    "requests",
                    "share of prompt",
                    "drift if left out",
                    "drift counted",
                ],
                [
                    [
                        _label(g["model"]),
                        g["part"],
                        f"{g['requests']:,}",
                        _pct(g["median_share"]),
                        signed_pct(g["median_drift_pct_if_ignored"]),
                        signed_pct(g["median_drift_pct"]),
                    ]
                    for g in rec.gaps
                ],
                2,
                drop=("share of prompt",),
            )
        )
    if rec.gateway:
        out.append(
            Section(
                "Gateway estimates against the provider (reported − gateway)",
                [
                    "model",
                    "requests",
                    "median drift",
                    "p95 |drift|",
                    "median tokens",
                    "outside",
                    "suspected cause",
                ],
                [
                    [
                        _label(g["model"]),
                        f"{g['requests']:,}",
                        signed_pct(g["median_drift_pct"]),
                        _pct(g["p95_abs_drift_pct"]),
                        _tokens(g["median_drift_tokens"], True),
                        _pct(g["outside_share"]),
                        g["suspected_cause"] or "—",
                    ]
                    for g in rec.gateway
                ],
                1,
                6,
            )
        )
    if rec.outliers:
        out.append(
            Section(
                "Largest outliers",
                [
                    "model",
                    "request",
                    "workflow",
                    "reported",
                    "estimated",
                    "drift",
                    "drift %",
                    "suspected cause",
                ],
                [
                    [
                        _label(o["model"]),
                        _label(o["request_id"] or o["trace_id"]),
                        _label(o["workflow"]),
                        f"{o['reported_tokens']:,}",
                        _tokens(o["estimated_tokens"]),
                        _tokens(o["drift_tokens"], signed=True),
                        signed_pct(o["drift_pct"]),
                        o["cause"] + (f": {o['detail']}" if detail and o["detail"] else ""),
                    ]
                    for o in rec.outliers
                ],
                3,
                7,
                drop=("estimated", "workflow", "drift"),
            )
        )
    return out


def tables(rec: TokenReconciliation, brief: bool = False, width: int | None = None) -> list[Table]:
    """Every section as a table; ``brief``: the per-model drift and the outliers only;
    ``width``: columns of a section's ``drop`` list are left out until a table fits."""
    out = []
    for s in sections(rec):
        if brief and not s.title.startswith(("Token drift by model", "Largest outliers")):
            continue
        shown = list(s.header)
        table = _table(s, shown)
        for name in s.drop if width else ():
            if _width(table) <= (width or 0):
                break
            shown.remove(name)
            table = _table(s, shown)
        out.append(table)
    return out


def _width(table: Table) -> int:
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=10_000)
    return Measurement.get(console, console.options, table).maximum


def _table(s: Section, shown: list[str]) -> Table:
    end = len(s.header) if s.numeric_to is None else s.numeric_to
    table = Table(title=s.title, title_justify="left", title_style="bold")
    index = [i for i, h in enumerate(s.header) if h in shown]
    for i in index:
        h = s.header[i]
        numeric = s.numeric_from <= i < end
        keep = numeric or h in ("model", "request", "left out")  # ids, counts: never wrapped
        table.add_column(h, justify="right" if numeric else "left", no_wrap=keep)
    for row in s.rows:
        table.add_row(*(row[i] for i in index))
    return table


def tokens_markdown(rec: TokenReconciliation) -> str:
    parts = [
        f"### {s.title}\n\n" + rows_markdown(s.header, s.rows, s.numeric_from, s.numeric_to)
        for s in sections(rec, detail=True)
    ]
    return "\n".join(parts)


_CSV_COLUMNS = (
    "requests",
    "median_drift_pct",
    "p95_abs_drift_pct",
    "median_drift_tokens",
    "p95_abs_drift_tokens",
    "outside",
    "outside_share",
    "reported_tokens",
    "estimated_tokens",
)


def tokens_csv(rec: TokenReconciliation) -> str:
    """One row per model, then one per workflow (``scope`` says which); exact numbers."""
    header = ["scope", "name", "tokenizer", "method", "reference_ratio", *_CSV_COLUMNS]
    rows: list[list[str]] = []

    def cell(v: Any) -> str:
        return "" if v is None else safe_cell(str(v))

    for m in rec.models:
        rows.append(
            ["model", cell(m["model"]), m["tokenizer"], m["method"], cell(m["reference_ratio"])]
            + [cell(m[c]) for c in _CSV_COLUMNS]
        )
    for w in rec.workflows:
        rows.append(
            ["workflow", cell(w["workflow"]), "", "", ""] + [cell(w[c]) for c in _CSV_COLUMNS]
        )
    return rows_csv(header, rows)


def summary_line(rec: TokenReconciliation) -> str:
    t = rec.totals
    models = f"{t['models']:,} model" + ("" if t["models"] == 1 else "s")
    line = (
        f"{t['requests']:,} requests compared over {models} "
        f"({t['models_exact']} exact, {t['models_calibrated']} calibrated"
        + (f", {t['models_uncalibrated']} uncalibrated" if t["models_uncalibrated"] else "")
        + f"); {t['outside']:,} outside tolerance ({_pct(rec.meta['tolerance'])}"
        f" or {rec.meta['slack_tokens']} tokens; calibrated: the band)"
    )
    skipped = rec.meta.get("skipped_without_provider_count")
    if skipped:
        line += f"; {skipped:,} calls without a provider count left out"
    return line
