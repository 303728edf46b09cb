"""The waste catalogue: one small detector per kind (DESIGN.md section 5), SQL over the
calls in the window. ``detect`` runs the chosen kinds and ranks the findings by waste.

Every detector's rules and thresholds are in its module's docstring; thresholds come from
``base.DEFAULTS`` and ``[drains.<kind>]`` in ``tokenaudit.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokenaudit.drains import bloat, cache, duplicate, overkill, rejected, retry, runaway
from tokenaudit.drains.base import Finding, Settings, prepare
from tokenaudit.errors import TokenauditError

if TYPE_CHECKING:
    import duckdb

DETECTORS = {m.KIND: m.find for m in (duplicate, retry, bloat, runaway, cache, overkill, rejected)}
KINDS = tuple(DETECTORS)


@dataclass
class DrainReport:
    findings: list[Finding]
    by_kind: list[dict[str, Any]]
    by_workflow: list[dict[str, Any]]
    totals: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def _summary(findings: list[Finding], key: str) -> list[dict[str, Any]]:
    acc: dict[Any, dict[str, Any]] = {}
    for f in findings:
        k = f.kind if key == "kind" else f.group.get("workflow")
        row = acc.setdefault(k, {key: k, "findings": 0, "calls": 0, "waste_usd": Decimal(0)})
        row["findings"] += 1
        row["calls"] += f.calls
        row["waste_usd"] += f.waste_usd
    return sorted(acc.values(), key=lambda r: (-r["waste_usd"], str(r[key])))


def detect(
    con: duckdb.DuckDBPyConnection,
    where: str = "true",
    params: list[Any] | None = None,
    kinds: tuple[str, ...] = KINDS,
    settings: Settings | None = None,
    min_waste: Decimal = Decimal(0),
) -> DrainReport:
    for kind in kinds:
        if kind not in DETECTORS:
            raise TokenauditError(f"unknown drain kind '{kind}'", hint="kinds: " + ", ".join(KINDS))
    settings = settings or Settings()
    calls = prepare(con, where, params or [])
    findings: list[Finding] = []
    try:
        for kind in kinds:
            findings += DETECTORS[kind](con, settings)
    finally:
        con.execute("DROP TABLE IF EXISTS _dr")
    findings = [f for f in findings if f.waste_usd >= min_waste]
    findings.sort(key=lambda f: (-f.waste_usd, f.kind, f.first_seen, f.request_ids[:1]))
    total = sum((f.waste_usd for f in findings), Decimal(0))
    return DrainReport(
        findings,
        _summary(findings, "kind"),
        _summary(findings, "workflow"),
        {"findings": len(findings), "waste_usd": total, "calls_scanned": calls},
    )
