"""Baselines: a budgets file's metrics per group, stored to be compared against later.

``tokenaudit baseline --budgets FILE --output baseline.json`` measures every rule of the
file (``gate.metrics``) and writes, per rule (by ``Rule.key``: metric, period, scope and
split), each group's value, sample size and, for cost per accepted outcome, the moments
of its per-trace (cost, accepted) pairs; plus the price snapshot the costs were priced
with and the data's window. A rule edited since no longer finds its entry ("not in the
baseline"), so a changed scope is never compared with another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenaudit.budgets import Budgets
from tokenaudit.errors import ConfigError
from tokenaudit.gate.metrics import Measure, measure
from tokenaudit.report.queries import meta

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.drains.base import Settings

VERSION = 1


def group_label(group: dict[str, Any]) -> str:
    return json.dumps(group, sort_keys=True)


@dataclass
class Baseline:
    path: str
    price_snapshot: str | None
    window: dict[str, Any]
    rules: dict[str, dict[str, Measure]]  # rule key -> group label -> measure


def build(
    con: duckdb.DuckDBPyConnection, budgets: Budgets, settings: Settings | None = None
) -> dict[str, Any]:
    """The baseline document (JSON-ready) of every rule of ``budgets``."""
    info = meta(con)
    rules: dict[str, Any] = {}
    for rule in budgets.rules:
        if rule.key() not in rules:
            groups = [m.as_dict() for m in measure(con, rule, settings)]
            rules[rule.key()] = {"metric": rule.metric, "groups": groups}
    return {
        "version": VERSION,
        "price_snapshot": info["price_snapshot"],
        "window": {"first_ts": info["first_ts"], "last_ts": info["last_ts"]},
        "budgets": str(budgets.path),
        "rules": rules,
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _measure(path: Path, key: str, raw: Any) -> Measure:
    try:
        value = raw["value"]
        return Measure(
            group=dict(raw["group"]),
            value=None if value is None else Decimal(str(value)),
            samples=int(raw["samples"]),
            period=raw.get("period"),
            stats={str(k): float(v) for k, v in (raw.get("stats") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as e:
        raise ConfigError(f"{path}: rule '{key}': a group is malformed ({e})") from None


def load(path: Path) -> Baseline:
    """Read a baseline written by ``tokenaudit baseline``; errors are ``ConfigError``s."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such baseline file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not a baseline file: {e}") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise ConfigError(
            f"{path}: not a version {VERSION} baseline",
            hint="write one with 'tokenaudit baseline --budgets FILE --output FILE'",
        )
    rules = doc.get("rules")
    if not isinstance(rules, dict):
        raise ConfigError(f"{path}: 'rules' is missing or not an object")
    out: dict[str, dict[str, Measure]] = {}
    for key, entry in rules.items():
        groups = entry.get("groups") if isinstance(entry, dict) else None
        if not isinstance(groups, list):
            raise ConfigError(f"{path}: rule '{key}': 'groups' is missing or not a list")
        measures = [_measure(path, key, g) for g in groups]
        out[key] = {group_label(m.group): m for m in measures}
    window = doc.get("window")
    window = window if isinstance(window, dict) else {}
    return Baseline(str(path), doc.get("price_snapshot"), window, out)
