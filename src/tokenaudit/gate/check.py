"""Verdicts: every rule, per group of its scope, against its limits and the baseline.

A rule gives one verdict per group for its ``warn``/``fail`` limits (kind ``limit``) and,
with ``max_increase``/``max_increase_pct`` and a baseline, one per group for the
regression (kind ``regression``). Verdicts: ``pass``, ``warn``, ``fail``, ``no_data``,
``not_enough_data`` and ``skipped``; only ``fail`` fails the gate (exit 1).

Noise never fails a build: a regression needs ``min_samples`` (default 30) on both sides,
else it is "not enough data"; cost per accepted outcome is judged by an interval over
traces (the delta method on the ratio of the traces' summed cost to their accepted
outcomes, from the per-trace moments both sides keep): it fails only when the lower end of
the 90 % interval of the change (one-sided 95 %) is beyond the limit. Money metrics
against a baseline priced with another price snapshot are not compared but flagged
(``warn``), never silently mixed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from tokenaudit.budgets import Budgets, Rule
from tokenaudit.gate.baseline import Baseline, group_label
from tokenaudit.gate.metrics import MONEY_METRICS, Measure, measure, shown
from tokenaudit.report.queries import meta

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.drains.base import Settings

DEFAULT_MIN_SAMPLES = 30
Z = 1.6449  # one-sided 95 % (the lower end of a two-sided 90 % interval)
VERDICTS = ("fail", "warn", "no_data", "not_enough_data", "skipped", "pass")  # by importance


@dataclass
class Verdict:
    rule: Rule
    kind: str  # limit | regression
    group: dict[str, Any]
    value: Decimal | None
    limit: Decimal | None
    level: str | None  # the level of the limit judged: warn | fail
    verdict: str
    samples: int = 0
    period: str | None = None
    baseline: Decimal | None = None
    change_pct: Decimal | None = None  # against the baseline, in percent
    interval_pct: tuple[Decimal, Decimal] | None = None
    message: str = ""

    @property
    def scope(self) -> str:
        label = self.rule.scope_label()
        if self.group:
            label += " / " + ", ".join(f"{d}={v}" for d, v in self.group.items())
        return label

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "metric": self.rule.metric,
            "kind": self.kind,
            "scope": dict(self.rule.scope),
            "group": self.group,
            "period": self.period,
            "value": self.value,
            "limit": self.limit,
            "level": self.level,
            "verdict": self.verdict,
            "samples": self.samples,
            "baseline": self.baseline,
            "change_pct": self.change_pct,
            "interval_pct": list(self.interval_pct) if self.interval_pct else None,
            "message": self.message,
            "line": self.rule.line,
        }


@dataclass
class Result:
    verdicts: list[Verdict]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(v.verdict == "fail" for v in self.verdicts)

    def counts(self) -> dict[str, int]:
        return {k: sum(v.verdict == k for v in self.verdicts) for k in VERDICTS}


def _worse(rule: Rule, value: Decimal, limit: Decimal) -> bool:
    return value < limit if rule.lower_is_worse else value > limit


def _no_data(rule: Rule, kind: str, m: Measure, why: str) -> Verdict:
    verdict = {"ok": "no_data", "warn": "warn", "fail": "fail"}[rule.on_no_data]
    level = None if rule.on_no_data == "ok" else rule.on_no_data
    return Verdict(rule, kind, m.group, None, None, level, verdict, m.samples, message=why)


def _limits(rule: Rule, m: Measure) -> Verdict:
    if m.value is None:
        why = "no accepted outcomes" if m.samples else "no data in scope"
        return _no_data(rule, "limit", m, why)
    for level, limit in (("fail", rule.fail), ("warn", rule.warn)):
        if limit is not None and _worse(rule, m.value, limit):
            side = "below" if rule.lower_is_worse else "above"
            return Verdict(
                rule, "limit", m.group, m.value, limit, level, level, m.samples, m.period,
                message=f"{shown(rule.metric, m.value)} is {side} the {level} limit "
                f"{shown(rule.metric, limit)}",
            )  # fmt: skip
    limit, level = (rule.fail, "fail") if rule.fail is not None else (rule.warn, "warn")
    return Verdict(rule, "limit", m.group, m.value, limit, level, "pass", m.samples, m.period)


def _ratio_var(s: dict[str, float]) -> tuple[float, float] | None:
    """Cost per accepted outcome and its variance (delta method over traces)."""
    n, c, a = s.get("n", 0.0), s.get("c", 0.0), s.get("a", 0.0)
    if n < 2 or a <= 0:
        return None
    r, mc, ma = c / a, c / n, a / n
    scc = (s["cc"] - n * mc * mc) / (n - 1)
    saa = (s["aa"] - n * ma * ma) / (n - 1)
    sca = (s["ca"] - n * mc * ma) / (n - 1)
    return r, max(scc - 2 * r * sca + r * r * saa, 0.0) / (n * ma * ma)


def _pct(x: float) -> Decimal:
    return Decimal(repr(round(x * 100, 4))).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def _regression(rule: Rule, cur: Measure, base: Measure, prices_differ: str | None) -> Verdict:
    minimum = rule.min_samples if rule.min_samples is not None else DEFAULT_MIN_SAMPLES
    pct_limit, abs_limit = rule.max_increase_pct, rule.max_increase
    limit = pct_limit if pct_limit is not None else abs_limit
    v = Verdict(rule, "regression", cur.group, cur.value, limit, "fail", "pass", cur.samples)
    v.period, v.baseline = cur.period, base.value
    if min(cur.samples, base.samples) < minimum:
        v.verdict = "not_enough_data"
        v.message = f"{cur.samples} now, {base.samples} in the baseline; needs {minimum}"
        return v
    if prices_differ and rule.metric in MONEY_METRICS:
        v.verdict, v.level, v.message = "warn", "warn", prices_differ
        return v
    if cur.value is None or base.value is None:
        v.verdict, v.message = "no_data", "no value now or in the baseline"
        return v
    sign = -1 if rule.lower_is_worse else 1
    delta = sign * (cur.value - base.value)  # how much worse
    point = float(delta / base.value) if base.value else math.inf if delta > 0 else 0.0
    lo_pct, lo_abs = point, float(delta)
    v.change_pct = _pct(point) if base.value else None
    if rule.metric == "cost_per_accepted_usd":
        now, then = _ratio_var(cur.stats), _ratio_var(base.stats)
        if now is not None and then is not None and now[0] > 0 and then[0] > 0:
            d = math.log(now[0] / then[0])
            se = math.sqrt(now[1] / now[0] ** 2 + then[1] / then[0] ** 2)
            lo_pct, hi_pct = math.exp(d - Z * se) - 1, math.exp(d + Z * se) - 1
            lo_abs = now[0] - then[0] - Z * math.sqrt(now[1] + then[1])
            v.interval_pct = (_pct(lo_pct), _pct(hi_pct))
    breach_pct = pct_limit is not None and lo_pct * 100 > pct_limit
    breach_abs = abs_limit is not None and lo_abs > abs_limit
    what = f"{shown(rule.metric, base.value)} -> {shown(rule.metric, cur.value)}"
    if v.change_pct is not None:
        what += f" ({v.change_pct:+}%"
        what += (
            f", 90% interval {v.interval_pct[0]:+}% to {v.interval_pct[1]:+}%)"
            if (v.interval_pct)
            else ")"
        )
    if breach_pct or breach_abs:
        v.verdict = "fail"
        v.limit = pct_limit if breach_pct else abs_limit
        beyond = f"{v.limit}%" if breach_pct else shown(rule.metric, v.limit)
        v.message = f"regression {what}, beyond +{beyond}"
    else:
        v.message = what
    return v


def _regressions(
    rule: Rule, now: list[Measure], baseline: Baseline | None, differ: str | None
) -> list[Verdict]:
    if baseline is None:
        return [
            Verdict(rule, "regression", {}, None, None, None, "skipped", message="no --baseline")
        ]
    entry = baseline.rules.get(rule.key())
    if entry is None:
        msg = "not in the baseline (a new or edited rule)"
        return [Verdict(rule, "regression", {}, None, None, None, "skipped", message=msg)]
    current = {group_label(m.group): m for m in now}
    out = []
    for label in sorted(set(current) | set(entry)):
        cur, base = current.get(label), entry.get(label)
        if base is None and cur is not None:
            v = Verdict(
                rule, "regression", cur.group, cur.value, None, None, "skipped", cur.samples
            )
            v.message = "a new group: not in the baseline"
            out.append(v)
        elif cur is None and base is not None:
            out.append(_no_data(rule, "regression", Measure(base.group, None, 0), "no data now"))
        elif cur is not None and base is not None:
            out.append(_regression(rule, cur, base, differ))
    return out


def evaluate(
    con: duckdb.DuckDBPyConnection,
    budgets: Budgets,
    baseline: Baseline | None = None,
    settings: Settings | None = None,
) -> Result:
    """Judge every rule of ``budgets`` over the data (and against ``baseline``)."""
    info = meta(con)
    differ = None
    if baseline is not None and baseline.price_snapshot != info["price_snapshot"]:
        differ = (
            f"baseline priced with '{baseline.price_snapshot}', the data with "
            f"'{info['price_snapshot']}': not compared (rebuild the baseline)"
        )
    verdicts: list[Verdict] = []
    for rule in budgets.rules:
        found = measure(con, rule, settings)
        if rule.warn is not None or rule.fail is not None:
            verdicts += [_limits(rule, m) for m in found or [Measure({}, None, 0)]]
        if rule.max_increase is not None or rule.max_increase_pct is not None:
            verdicts += _regressions(rule, found, baseline, differ)
    return Result(
        verdicts,
        {
            "budgets": str(budgets.path),
            "baseline": baseline.path if baseline is not None else None,
            "baseline_price_snapshot": baseline.price_snapshot if baseline else None,
            "prices_differ": differ is not None,
            **info,
        },
    )
