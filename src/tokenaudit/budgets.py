"""Budgets files: the ``[[rule]]`` tables of the CI gate (DESIGN.md section 6) as ``Rule``s.

One reader for every command that needs budgets: ``forecast`` uses the spend rules
(``metric = "spend_usd"``, ``period = "month"``); the gate can evaluate all of them.

```toml
[[rule]]
name = "support spend"                      # optional; defaults to metric + scope
scope = { workflow = "ticket-*", environment = "prod" }
metric = "spend_usd"
period = "month"
warn = 4000
fail = 5000
```

Scope: dimension -> pattern or list of patterns (any of them), where ``*`` matches any run
of characters (``ticket-*``; ``*`` alone matches any value, not a missing one); no scope is
all calls. A rule limits the calls its scope selects taken together: the rule above budgets
the ticket workflows' total. ``per = ["workflow"]`` splits the scope and judges each value
on its own; a scope dimension whose pattern is ``*`` alone splits it too (``workflow = "*"``
is each workflow). Limits are exact decimals (``warn``, ``fail``, and for regressions
against a baseline ``max_increase``, ``max_increase_pct`` with ``min_samples``); for
``capture_rate`` lower is worse, so its ``fail`` lies at or below its ``warn``.
``on_no_data = "ok" | "warn" | "fail"`` says what a scope (or group) without data is.

Every mistake is a ``ConfigError`` (exit 2) naming the file, the line of the key where it
can be found, the rule (numbered from 1) and the key: unknown keys, metrics, periods and
dimensions are errors, so a typo never silently does nothing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenaudit.errors import ConfigError
from tokenaudit.model import DIMENSIONS

METRICS = (
    "spend_usd",
    "cost_per_accepted_usd",
    "tokens_per_request_p50",
    "tokens_per_request_p95",
    "retry_rate",
    "waste_share",
    "capture_rate",
)
PERIODS = ("day", "week", "month", "all")
LIMITS = ("warn", "fail", "max_increase", "max_increase_pct")
KEYS = ("name", "scope", "per", "metric", "period", *LIMITS, "min_samples", "on_no_data")
LOWER_IS_WORSE = ("capture_rate",)
NO_DATA = ("ok", "warn", "fail")
BILLING_DIMENSIONS = ("provider", "model")  # what billing lines carry: capture_rate scopes
Pattern = str | tuple[str, ...]  # one pattern, or any of several
_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")


@dataclass(frozen=True)
class Rule:
    """One ``[[rule]]``: what it limits (metric over a period, in a scope) and its levels."""

    name: str
    metric: str
    scope: tuple[tuple[str, Pattern], ...] = ()  # (dimension, pattern(s)), in file order
    period: str | None = None
    warn: Decimal | None = None
    fail: Decimal | None = None
    max_increase: Decimal | None = None  # against a baseline, in the metric's unit
    max_increase_pct: Decimal | None = None
    min_samples: int | None = None
    line: int | None = None  # of its [[rule]] header
    per: tuple[str, ...] = ()  # judge each value of these dimensions on its own
    on_no_data: str = "ok"  # what a scope without data is: ok | warn | fail

    @property
    def lower_is_worse(self) -> bool:
        return self.metric in LOWER_IS_WORSE

    def split_dims(self) -> tuple[str, ...]:
        """The dimensions whose values are judged one by one: ``per``, else the scope
        dimensions whose pattern is ``*`` alone."""
        if self.per:
            return self.per
        return tuple(d for d, p in self.scope if p == "*" or p == ("*",))

    def key(self) -> str:
        """What identifies the rule in a baseline: metric, period, scope and split."""
        split = ",".join(self.split_dims())
        return f"{self.metric}|{self.period or ''}|{self.scope_label()}|per={split}"

    def matches(self, group: Mapping[str, Any]) -> bool:
        """Whether a group (dimension -> value) lies inside the scope: it names every scope
        dimension, with a value matching one of its patterns."""
        return all(
            d in group
            and group[d] is not None
            and any(_regex(x).fullmatch(str(group[d])) is not None for x in _patterns(p))
            for d, p in self.scope
        )

    def scope_sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause (and its parameters) selecting the calls in the scope."""
        from tokenaudit.report.queries import dim_sql

        clauses, params = [], []
        for dim, patterns in self.scope:
            anyof = []
            for pattern in _patterns(patterns):
                if "*" in pattern:
                    escaped = re.sub(r"([\\%_])", r"\\\1", pattern).replace("*", "%")
                    anyof.append(f"{dim_sql(dim)} LIKE ? ESCAPE '\\'")
                    params.append(escaped)
                else:
                    anyof.append(f"{dim_sql(dim)} = ?")
                    params.append(pattern)
            clauses.append(anyof[0] if len(anyof) == 1 else "(" + " OR ".join(anyof) + ")")
        return " AND ".join(clauses) or "true", params

    def scope_label(self) -> str:
        return _label(self.scope)


@dataclass(frozen=True)
class Budgets:
    path: Path
    rules: tuple[Rule, ...]

    def spend_rules(self, period: str = "month") -> list[Rule]:
        return [r for r in self.rules if r.metric == "spend_usd" and r.period == period]


def _patterns(pattern: Pattern) -> tuple[str, ...]:
    return (pattern,) if isinstance(pattern, str) else pattern


def _label(scope: tuple[tuple[str, Pattern], ...]) -> str:
    return ", ".join(f"{d}={'|'.join(_patterns(p))}" for d, p in scope) or "all calls"


def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


class _Reader:
    """Checks one file's rules; errors name the file, line, rule and key."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.headers = [i + 1 for i, line in enumerate(self.lines) if _RULE_HEADER.match(line)]

    def line_of(self, n: int, key: str) -> int | None:
        """The line of ``key`` in the n-th rule (or of the rule's header)."""
        if n > len(self.headers):
            return None
        start = self.headers[n - 1]
        end = self.headers[n] if n < len(self.headers) else len(self.lines) + 1
        name = re.compile(rf"""(^|[\s{{,])["']?{re.escape(key)}["']?\s*=""")
        for number in range(start, end):
            if name.search(self.lines[number - 1]):
                return number
        return start

    def error(self, n: int, key: str, problem: str, hint: str | None = None) -> ConfigError:
        line = self.line_of(n, key.split(".")[-1])
        where = f"{self.path}" + (f", line {line}" if line else "")
        return ConfigError(f"{where}: rule {n}: '{key}' {problem}", hint=hint)

    def number(self, n: int, table: dict[str, Any], key: str) -> Decimal | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.error(n, key, f"must be a number >= 0, not {value!r}")
        return Decimal(str(value))

    def rule(self, n: int, table: Any) -> Rule:
        if not isinstance(table, dict):
            raise self.error(n, "rule", "must be a table ([[rule]])")
        for key in table:
            if key not in KEYS:
                raise self.error(n, key, "is not a rule key", hint="keys: " + ", ".join(KEYS))
        metric = table.get("metric")
        if metric is None:
            raise self.error(n, "metric", "is missing", hint="metrics: " + ", ".join(METRICS))
        if metric not in METRICS:
            hint = "metrics: " + ", ".join(METRICS)
            raise self.error(n, "metric", f"is not a metric: {metric!r}", hint=hint)
        period = table.get("period")
        if period is not None and period not in PERIODS:
            hint = "periods: " + ", ".join(PERIODS)
            raise self.error(n, "period", f"is not a period: {period!r}", hint=hint)
        if period is None and metric == "spend_usd":
            hint = "period = " + " | ".join(f'"{p}"' for p in PERIODS)
            raise self.error(n, "period", "is missing (a spend rule needs one)", hint=hint)
        scope = table.get("scope", {})
        if not isinstance(scope, dict):
            raise self.error(n, "scope", 'must be a table, e.g. { workflow = "ticket-*" }')
        allowed = BILLING_DIMENSIONS if metric == "capture_rate" else DIMENSIONS
        for dim, pattern in scope.items():
            if dim not in allowed:
                hint = "dimensions: " + ", ".join(allowed)
                raise self.error(n, f"scope.{dim}", "is not a dimension", hint=hint)
            items = pattern if isinstance(pattern, list) else [pattern]
            if not items or not all(isinstance(x, str) and x for x in items):
                raise self.error(
                    n, f"scope.{dim}", f"must be a non-empty text or list of texts, not {pattern!r}"
                )
        per = table.get("per", [])
        per = [per] if isinstance(per, str) else per
        if not isinstance(per, list) or not all(isinstance(d, str) and d in allowed for d in per):
            hint = "dimensions: " + ", ".join(allowed)
            raise self.error(n, "per", f"must be a list of dimensions, not {per!r}", hint=hint)
        on_no_data = table.get("on_no_data", "ok")
        if on_no_data not in NO_DATA:
            hint = "on_no_data = " + " | ".join(f'"{x}"' for x in NO_DATA)
            raise self.error(n, "on_no_data", f"is not one of them: {on_no_data!r}", hint=hint)
        limits = {key: self.number(n, table, key) for key in LIMITS}
        if all(v is None for v in limits.values()):
            raise self.error(
                n, "warn", "is missing: the rule sets no limit", hint=", ".join(LIMITS)
            )
        warn, fail = limits["warn"], limits["fail"]
        if warn is not None and fail is not None:
            if metric in LOWER_IS_WORSE and warn < fail:
                raise self.error(n, "warn", f"({warn}) is below 'fail' ({fail}): lower is worse")
            if metric not in LOWER_IS_WORSE and warn > fail:
                raise self.error(n, "warn", f"({warn}) is above 'fail' ({fail})")
        samples = table.get("min_samples")
        if samples is not None and (
            isinstance(samples, bool) or not isinstance(samples, int) or samples < 0
        ):
            raise self.error(n, "min_samples", f"must be a whole number >= 0, not {samples!r}")
        pairs: tuple[tuple[str, Pattern], ...] = tuple(
            (str(d), tuple(p) if isinstance(p, list) else str(p)) for d, p in scope.items()
        )
        name = table.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise self.error(n, "name", f"must be a non-empty text, not {name!r}")
        default = f"{metric} {_label(pairs)}"
        return Rule(
            name=name or default,
            metric=metric,
            scope=pairs,
            period=period,
            warn=warn,
            fail=fail,
            max_increase=limits["max_increase"],
            max_increase_pct=limits["max_increase_pct"],
            min_samples=samples,
            line=self.headers[n - 1] if n <= len(self.headers) else None,
            per=tuple(per),
            on_no_data=on_no_data,
        )


def load_budgets(path: Path) -> Budgets:
    """Read and check a budgets file."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such budgets file")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    unknown = sorted(set(data) - {"rule"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown key '{unknown[0]}'", hint="a budgets file holds [[rule]] tables"
        )
    tables = data.get("rule")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(
            f"{path}: no [[rule]] tables", hint="see the budgets format in docs/commands.md"
        )
    reader = _Reader(path, text)
    return Budgets(path, tuple(reader.rule(n, t) for n, t in enumerate(tables, start=1)))
