"""The gate's verdicts as a table, JSON, markdown (a pull request comment), JUnit XML and
GitHub workflow commands. Rows that matter come first: fail, warn, no data, not enough
data, skipped, then the passes. ``only_changed`` keeps the fails and warnings alone."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

from rich.table import Table

from tokenaudit.gate.check import VERDICTS, Result, Verdict
from tokenaudit.gate.metrics import shown
from tokenaudit.report.render import to_json

CHANGED = ("fail", "warn")
_MARK = {
    "fail": "❌ fail",
    "warn": "⚠️ warn",
    "no_data": "∅ no data",
    "not_enough_data": "… not enough data",
    "skipped": "➖ skipped",
    "pass": "✅ pass",
}
_STYLE = {"fail": "red", "warn": "yellow", "pass": "green"}


def ordered(result: Result, only_changed: bool = False) -> list[Verdict]:
    rows = [v for v in result.verdicts if not only_changed or v.verdict in CHANGED]
    return sorted(rows, key=lambda v: VERDICTS.index(v.verdict))  # stable: file order


def number(value: Decimal | None) -> str:
    if value is None:
        return "—"
    text = format(value.normalize(), "f")
    return text if "." not in text else text.rstrip("0").rstrip(".")


def summary(result: Result) -> str:
    c = result.counts()
    head = "tokenaudit check: " + ("FAILED" if result.failed else "passed")
    parts = [f"{c[k]} {k.replace('_', ' ')}" for k in VERDICTS if c[k]]
    return f"{head} ({', '.join(parts) or 'no rules'})"


def _value(v: Verdict) -> str:
    text = shown(v.rule.metric, v.value)
    return f"{text} ({v.period})" if v.period and v.value is not None else text


def _limit(v: Verdict) -> str:
    if v.limit is None:
        return "—"
    if v.kind == "regression":
        if v.limit == v.rule.max_increase_pct:
            return f"+{number(v.limit)}% vs baseline"
        return f"+{shown(v.rule.metric, v.limit)} vs baseline"
    return f"{v.level} {'<' if v.rule.lower_is_worse else '>'} {shown(v.rule.metric, v.limit)}"


def _scope(v: Verdict) -> str:
    """The group judged (a rule judged per value), else the rule's scope."""
    if v.group:
        return ", ".join(f"{d}={x}" for d, x in v.group.items())
    return v.rule.scope_label()


METRIC_LABELS = {
    "spend_usd": "spend",
    "cost_per_accepted_usd": "$/accepted",
    "tokens_per_request_p50": "tokens p50",
    "tokens_per_request_p95": "tokens p95",
    "retry_rate": "retry rate",
    "waste_share": "waste share",
    "capture_rate": "capture",
}


def columns(v: Verdict) -> list[str]:
    return [
        _MARK[v.verdict],
        v.rule.name,
        _scope(v),
        METRIC_LABELS.get(v.rule.metric, v.rule.metric),
        _value(v),
        _limit(v),
        str(v.samples),
        v.message,
    ]


HEADERS = ["verdict", "rule", "scope", "metric", "value", "limit", "samples", "note"]


def table(result: Result, only_changed: bool = False) -> Table:
    """Verdict, metric, value, limit and samples keep their width; rule and scope wrap.
    The notes are printed under the table (``notes``)."""
    rows = [[v.verdict.replace("_", " "), *columns(v)[1:-1]] for v in ordered(result, only_changed)]
    out = Table(title=summary(result), title_justify="left")
    for i, h in enumerate(HEADERS[:-1]):
        fixed = h in ("verdict", "metric", "limit")
        width = max([len(h), *(len(r[i]) for r in rows)])
        out.add_column(
            h,
            justify="right" if h in ("value", "samples") else "left",
            no_wrap=fixed,
            min_width=width if fixed else min(width, 7 if h == "samples" else 10),
        )
    for v, r in zip(ordered(result, only_changed), rows, strict=True):
        out.add_row(*r, style=_STYLE.get(v.verdict))
    return out


def notes(result: Result, only_changed: bool = False) -> list[str]:
    """One line per verdict that says something: what breached, or why it was not judged."""
    return [
        f"{v.verdict.replace('_', ' ')}: {v.rule.name} ({_scope(v)}): {v.message}"
        for v in ordered(result, only_changed)
        if v.message and v.verdict != "pass"
    ]


def as_json(result: Result, only_changed: bool = False) -> str:
    totals: dict[str, Any] = {**result.counts(), "failed": result.failed}
    rows = [v.as_dict() for v in ordered(result, only_changed)]
    return to_json({"rows": rows, "totals": totals, "meta": result.meta})


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(result: Result, only_changed: bool = False) -> str:
    """A pull request comment: the summary, the rows that matter, the passes folded."""
    rows = ordered(result, only_changed)
    if only_changed and not rows:
        return ""
    head = "| " + " | ".join(HEADERS) + " |\n|" + "---|" * len(HEADERS) + "\n"
    lines = [f"### {summary(result)}", ""]
    matter = [v for v in rows if v.verdict != "pass"]
    passes = [v for v in rows if v.verdict == "pass"]
    body = "".join("| " + " | ".join(_cell(c) for c in columns(v)) + " |\n" for v in matter)
    if matter:
        lines += [head + body]
    if passes:
        rest = "".join("| " + " | ".join(_cell(c) for c in columns(v)) + " |\n" for v in passes)
        lines += [
            f"<details><summary>{len(passes)} passed</summary>",
            "",
            head + rest,
            "</details>",
            "",
        ]
    return "\n".join(lines)


def junit(result: Result) -> str:
    """JUnit XML: one test case per rule, kind and group; fail -> <failure>, not judged ->
    <skipped>, warnings pass with their note in <system-out>. No timestamps: deterministic."""
    rows = result.verdicts
    c = result.counts()
    skipped = c["no_data"] + c["not_enough_data"] + c["skipped"]
    attrs = {"tests": str(len(rows)), "failures": str(c["fail"]), "errors": "0"}
    suites = ET.Element("testsuites", {"name": "tokenaudit check", **attrs})
    suite = ET.SubElement(
        suites,
        "testsuite",
        {"name": str(result.meta.get("budgets")), **attrs, "skipped": str(skipped)},
    )
    for v in rows:
        name = f"{v.scope} [{v.kind}]"
        case = ET.SubElement(
            suite, "testcase", {"classname": v.rule.name, "name": name, "time": "0"}
        )
        text = f"{v.rule.metric}: value {_value(v)}, limit {_limit(v)}. {v.message}".strip()
        if v.verdict == "fail":
            ET.SubElement(case, "failure", {"message": text, "type": v.kind}).text = text
        elif v.verdict in ("no_data", "not_enough_data", "skipped"):
            ET.SubElement(case, "skipped", {"message": f"{v.verdict}: {text}"})
        elif v.verdict == "warn":
            ET.SubElement(case, "system-out").text = f"warning: {text}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def github(result: Result, only_changed: bool = False) -> str:
    """Workflow commands: ::error for fails, ::warning for warnings, at the rule's line."""
    lines = []
    for v in ordered(result, only_changed):
        if v.verdict not in CHANGED:
            continue
        props = [f"file={_escape(str(result.meta.get('budgets')), True)}"]
        if v.rule.line:
            props.append(f"line={v.rule.line}")
        props.append(f"title={_escape(f'{v.rule.name}: {v.verdict}', True)}")
        msg = f"{v.scope}: {v.rule.metric} {_value(v)}, limit {_limit(v)}. {v.message}".strip()
        kind = "error" if v.verdict == "fail" else "warning"
        lines.append(f"::{kind} {','.join(props)}::{_escape(msg)}")
    lines.append(f"::notice title=tokenaudit check::{_escape(summary(result))}")
    return "\n".join(lines) + "\n"
