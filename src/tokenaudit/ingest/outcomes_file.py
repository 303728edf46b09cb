"""Outcomes files: which trace, session or request was accepted, edited, rejected, escalated.

CSV with a header, or JSON lines; one record per row. Columns (matched by name, any case):

* ``trace_id``, ``session_id`` or ``request_id``: what was judged (the first one set wins);
* ``outcome`` (or ``label``, ``verdict``, ``status``): accepted / edited / rejected /
  escalated, or their usual synonyms (approved, resolved, modified, declined, handoff, ...);
* ``ts`` (or ``timestamp``, ``time``): when it was judged (ISO 8601 or epoch seconds or
  milliseconds), optional: a later judgement of the same trace wins;
* ``reviewer`` (or ``user``, ``judge``): optional.

Detected by content: a CSV header, or a first JSON object, with an id column and an outcome
column and no ``model`` (so call logs that carry outcomes stay call logs). The report joins
outcomes to calls at trace level: cost per accepted outcome is the cost of all calls of a
trace divided by its accepted outcomes.
"""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING, Any

from tokenaudit.ingest.native import _OUTCOME_SQL
from tokenaudit.model import outcome_stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import StageContext
    from tokenaudit.ingest.source import Source

NAME = "outcomes"
_IDS = ("trace_id", "session_id", "request_id")
_OUTCOME_NAMES = ("outcome", "label", "verdict", "status")
_TS_NAMES = ("ts", "timestamp", "time", "judged_at")
_REVIEWER_NAMES = ("reviewer", "user", "judge")

_TS = """CASE
    WHEN {v} IS NULL OR trim({v}) = '' THEN NULL
    WHEN regexp_full_match(trim({v}), '[0-9]{{9,10}}(\\.[0-9]+)?')
        THEN make_timestamp((TRY_CAST(trim({v}) AS DOUBLE) * 1e6)::BIGINT)
    WHEN regexp_full_match(trim({v}), '[0-9]{{12,13}}')
        THEN make_timestamp(TRY_CAST(trim({v}) AS BIGINT) * 1000)
    ELSE TRY_CAST(TRY_CAST(trim({v}) AS TIMESTAMPTZ) AS TIMESTAMP)
END"""


def _pick(names: list[str], wanted: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    return next((lower[w] for w in wanted if w in lower), None)


def _columns(head: bytes) -> tuple[str, list[str]] | None:
    """('csv'|'json', column names) when ``head`` starts like an outcomes file."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    first = text.split("\n", 1)[0].rstrip("\r")
    if first.startswith("{"):
        try:
            obj: Any = json.loads(first)
        except (ValueError, RecursionError):
            return None
        return ("json", list(obj)) if isinstance(obj, dict) else None
    try:
        names = [n.strip() for n in next(csv.reader([first]))]
    except (csv.Error, StopIteration):
        return None
    return "csv", names


class OutcomesIngester:
    name = NAME
    kind = "outcomes"
    detects = (
        "CSV or JSON lines with trace_id, session_id or request_id and an outcome column, no model"
    )

    def sniff(self, src: Source) -> bool:
        found = _columns(src.head)
        if found is None:
            return False
        names = [n.lower() for n in found[1]]
        return (
            any(i in names for i in _IDS)
            and _pick(found[1], _OUTCOME_NAMES) is not None
            and "model" not in names
        )

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        con.execute(outcome_stage_ddl())
        found = _columns(src.head)
        kind, names = found if found is not None else ("csv", [])
        params = {"path": str(src.data_path)}
        if kind == "json":
            reader = (
                "SELECT row_number() OVER () AS line_no, * FROM read_json($path, "
                "format = 'newline_delimited', records = true, "
                f"columns = {{{', '.join(repr(n) + ': ' + repr('VARCHAR') for n in names)}}})"
            )
        else:
            reader = (
                "SELECT row_number() OVER () + 1 AS line_no, * FROM read_csv($path, "
                "header = true, all_varchar = true, auto_detect = false, delim = ',', "
                "quote = '\"', escape = '\"', "
                f"columns = {{{', '.join(repr(n) + ': ' + repr('VARCHAR') for n in names)}}})"
            )

        def col(wanted: tuple[str, ...]) -> str:
            name = _pick(names, wanted)
            return "NULL::VARCHAR" if name is None else '"' + name.replace('"', '""') + '"'

        ids = [(k, _pick(names, (k,))) for k in _IDS]
        kind_sql = " ".join(
            f"WHEN NULLIF(trim(\"{n}\"), '') IS NOT NULL THEN '{k.split('_')[0]}'"
            for k, n in ids
            if n
        )
        key_sql = ", ".join(f"NULLIF(trim(\"{n}\"), '')" for _, n in ids if n)
        outcome = col(_OUTCOME_NAMES)
        con.execute(
            f"""INSERT INTO outcome_stage
            SELECT line_no,
                CASE WHEN NULLIF(trim({col(_TS_NAMES)}), '') IS NOT NULL
                      AND {_TS.format(v=col(_TS_NAMES))} IS NULL
                     THEN 'invalid ts: ' || left(trim({col(_TS_NAMES)}), 40) END,
                CASE {kind_sql or "WHEN false THEN NULL"} END,
                coalesce({key_sql or "NULL"}),
                coalesce({_OUTCOME_SQL.replace("j.outcome", f"trim({outcome})")},
                         lower(trim({outcome}))),
                {_TS.format(v=col(_TS_NAMES))},
                NULLIF(trim({col(_REVIEWER_NAMES)}), '')
            FROM ({reader})""",
            params,
        )
        return int(con.execute("SELECT count(*) FROM outcome_stage").fetchall()[0][0])


INGESTER = OutcomesIngester()
INGESTERS = (INGESTER,)
