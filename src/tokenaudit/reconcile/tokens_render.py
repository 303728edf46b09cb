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
    if m["method"] == "calibrated" and m["band"]:
        lo, hi = m["band"]
        return f"calibrated ×{m['reference_ratio']:.3f} [{lo:.3f}–{hi:.3f}]"
    if m["method"] == "uncalibrated":
        return "uncalibrated (too few requests)"
    return "exact"


def sections(rec: TokenReconciliation) -> list[Section]:
    out = [
        Section(
            "Token drift by model (reported − local)",
            [
                "model",
                "tokenizer",
                "method",
                "requests",
                "median drift",
                "p95 |drift|",
                "median tokens",
                "outside",
            ],
            [
                [
                    _label(m["model"]),
                    m["tokenizer"],
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
            3,
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
                        o["cause"] + (f": {o['detail']}" if o["detail"] else ""),
                    ]
                    for o in rec.outliers
                ],
                3,
                7,
            )
        )
    return out


def tables(rec: TokenReconciliation) -> list[Table]:
    out = []
    for s in sections(rec):
        end = len(s.header) if s.numeric_to is None else s.numeric_to
        table = Table(title=s.title, title_justify="left", title_style="bold")
        for i, h in enumerate(s.header):
            table.add_column(h, justify="right" if s.numeric_from <= i < end else "left")
        for row in s.rows:
            table.add_row(*row)
        out.append(table)
    return out


def tokens_markdown(rec: TokenReconciliation) -> str:
    parts = [
        f"### {s.title}\n\n" + rows_markdown(s.header, s.rows, s.numeric_from, s.numeric_to)
        for s in sections(rec)
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
