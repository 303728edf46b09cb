# ruff: noqa: E501  (SQL text reads better unwrapped)
"""Loading a whole Claude Code tree at once: many session files in one read and one transaction.

``load_many`` applies the loader's rules (``ingest.load.load_file``) to a batch of files:
content already loaded is skipped, a request_id repeated within a file or already loaded
from an earlier file is quarantined with the loader's reasons, and conservation is
checked per file.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from tokenaudit.ingest.claude_code_sql import drop

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import StageContext
    from tokenaudit.ingest.claude_code import ClaudeCodeIngester
    from tokenaudit.ingest.load import FileResult
    from tokenaudit.ingest.source import Source
    from tokenaudit.pricing import PriceSettings

_SEEN_SQL = """SELECT s.key, f.path FROM (SELECT unnest($keys) AS key, unnest($shas) AS sha) s
JOIN files f ON f.sha256 = s.sha"""

# The loader's duplicate rules, applied before the insert: a request_id seen earlier in
# the same file ('duplicate request_id (first at line N)'), or in an earlier file, of the
# store or of this batch ('request_id already loaded from PATH').
_DEDUPE_SQL = """CREATE OR REPLACE TEMP TABLE _cc_dups AS
WITH batch AS (
    SELECT file_id, line_no, request_id,
        min(line_no) OVER (PARTITION BY file_id, request_id) AS first_line
    FROM _cc_staged WHERE reason IS NULL AND request_id IS NOT NULL
), firsts AS (
    SELECT request_id, min(file_id) AS first_file FROM (
        SELECT request_id, file_id FROM batch
        UNION ALL
        SELECT request_id, file_id FROM usage_events
        WHERE request_id IN (SELECT request_id FROM batch)
    ) GROUP BY request_id
)
SELECT b.file_id, b.line_no, CASE
        WHEN b.line_no <> b.first_line THEN 'duplicate request_id (first at line ' || b.first_line || ')'
        ELSE 'request_id already loaded from ' || f.path END AS reason
FROM batch b JOIN firsts o USING (request_id)
JOIN (SELECT file_id, path FROM files UNION ALL SELECT file_id, path FROM _cc_ids) f
    ON f.file_id = o.first_file
WHERE b.line_no <> b.first_line OR b.file_id > o.first_file"""


def load_many(
    ingester: ClaudeCodeIngester,
    con: duckdb.DuckDBPyConnection,
    sources: list[Source],
    ctx: StageContext,
    prices: PriceSettings,
    mapping: dict[str, Any],
) -> list[FileResult]:
    """Load ``sources`` (in order) as the loader loads them one by one, in one transaction.

    The same rules as ``ingest.load.load_file``: a file whose content is already
    loaded is skipped; the generic checks; calls priced as they go in; a request_id
    repeated within a file, or already loaded from an earlier file (of the store or
    of this batch), is quarantined with the loader's reasons; conservation checked
    per file; one ``files`` row per file; attribution mapping applied. One read of
    all files and one transaction instead of one per file.
    """
    import pyarrow as pa

    from tokenaudit import attribution
    from tokenaudit.errors import InputError
    from tokenaudit.ingest.load import (
        _GENERIC_CHECKS_SQL,
        _STAGE_PAIRS_SQL,
        FileResult,
        _insert_events_sql,
        _pairs,
        _price_map,
    )

    name = ingester.name
    results: dict[str, FileResult] = {}
    todo: list[Source] = []
    quick = {
        str(k)
        for (k,) in con.execute(
            "SELECT quick_key FROM files WHERE quick_key IN (SELECT unnest($k))",
            {"k": [s.quick_key for s in sources]},
        ).fetchall()
    }
    maybe = [s for s in sources if s.quick_key in quick]
    if maybe:
        keys = [str(s.data_path) for s in maybe]
        seen = dict(
            con.execute(_SEEN_SQL, {"keys": keys, "shas": [s.sha256 for s in maybe]}).fetchall()
        )
    else:
        seen = {}
    shas: dict[str, str] = {}
    for s in sources:
        key = str(s.data_path)
        if key in seen:
            results[key] = FileResult(
                str(s.path), name, "usage", "skipped", 0, 0, 0, f"same content as {seen[key]}"
            )
        else:
            todo.append(s)
    if not todo:
        return [results[str(s.data_path)] for s in sources]
    records = ingester.stage_many(con, todo, ctx)
    try:
        con.execute(_GENERIC_CHECKS_SQL)
        # Two files of the batch with the same content: the later one is skipped.
        kept: list[Source] = []
        for s in todo:
            sha = s.sha256
            if sha in shas:
                key = str(s.data_path)
                results[key] = FileResult(
                    str(s.path), name, "usage", "skipped", 0, 0, 0, f"same content as {shas[sha]}"
                )
                con.execute("DELETE FROM stage WHERE file_key = ?", [key])
            else:
                shas[sha] = str(s.path)
                kept.append(s)
        con.execute("BEGIN TRANSACTION")
        try:
            lo = int(con.execute("SELECT nextval('file_id_seq')").fetchall()[0][0])
            ids = {str(s.data_path): lo + i for i, s in enumerate(kept)}
            if len(kept) > 1:
                con.execute(
                    f"SELECT max(nextval('file_id_seq')) FROM range({len(kept) - 1})"
                ).fetchall()
            hi = lo + len(kept) - 1
            con.register(
                "_cc_ids_arrow",
                pa.table(
                    {
                        "file_key": pa.array(list(ids), pa.string()),
                        "file_id": pa.array(list(ids.values()), pa.int32()),
                        "path": pa.array([str(s.path) for s in kept], pa.string()),
                    }
                ),
            )
            try:
                con.execute("CREATE OR REPLACE TEMP TABLE _cc_ids AS SELECT * FROM _cc_ids_arrow")
            finally:
                con.unregister("_cc_ids_arrow")
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _cc_staged AS SELECT s.*, i.file_id FROM stage s "
                "JOIN _cc_ids i USING (file_key)"
            )
            con.execute(_DEDUPE_SQL)
            con.execute(
                "UPDATE _cc_staged s SET reason = d.reason FROM _cc_dups d "
                "WHERE s.file_id = d.file_id AND s.line_no = d.line_no"
            )
            pairs = _pairs(con, _STAGE_PAIRS_SQL.replace("FROM stage", "FROM _cc_staged"), {})
            price_map = _price_map(con, prices, pairs)
            insert = _insert_events_sql("SELECT * FROM _cc_staged", price_map).replace(
                "$file_id AS file_id", "s.file_id AS file_id"
            )
            con.execute(insert, {"source": name})
            con.execute(
                "INSERT INTO quarantine SELECT file_id, line_no, reason FROM _cc_staged "
                "WHERE reason IS NOT NULL"
            )
            if mapping:
                attribution.apply(
                    con, mapping, table="usage_events", where="file_id BETWEEN ? AND ?",
                    params=[lo, hi],
                )  # fmt: skip
            counts = {
                int(f): (int(a), int(b))
                for f, a, b in con.execute(
                    """SELECT i.file_id,
                        (SELECT count(*) FROM usage_events u WHERE u.file_id = i.file_id),
                        (SELECT count(*) FROM quarantine x WHERE x.file_id = i.file_id)
                    FROM range($lo, $hi + 1) i(file_id)""",
                    {"lo": lo, "hi": hi},
                ).fetchall()
            }
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            rows = []
            for s in kept:
                key = str(s.data_path)
                fid = ids[key]
                loaded, quarantined = counts.get(fid, (0, 0))
                read = records.get(key, 0)
                if loaded + quarantined != read:
                    raise InputError(
                        f"{s.path}: conservation check failed: {loaded} loaded + {quarantined} "
                        f"quarantined != {read} records read; nothing was written"
                    )
                try:  # as record_file: what lets a reload skip the file unread
                    st = s.path.stat()
                    where, raw_size, mtime_ns = str(s.path.resolve()), st.st_size, st.st_mtime_ns
                except OSError:
                    where, raw_size, mtime_ns = str(s.path), None, None
                rows.append(
                    (fid, str(s.path), s.sha256, s.size_bytes, name, "usage", read, loaded,
                     quarantined, now, s.quick_key, 0, where, raw_size, mtime_ns)
                )  # fmt: skip
                results[key] = FileResult(
                    str(s.path), name, "usage", "loaded", read, loaded, quarantined, file_id=fid
                )
            names = ("file_id", "path", "sha256", "size_bytes", "format", "kind", "records_read",
                     "rows_loaded", "rows_quarantined", "loaded_at", "quick_key", "lines_replaced",
                     "source_path", "raw_size", "mtime_ns")  # fmt: skip
            table = pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})
            con.register("_cc_files", table)
            try:
                con.execute(
                    f"INSERT INTO files ({', '.join(names)}) SELECT {', '.join(names)} "
                    "FROM _cc_files"
                )
            finally:
                con.unregister("_cc_files")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        drop(con, "stage", "_cc_staged", "_cc_dups", "_cc_ids")
    return [results[str(s.data_path)] for s in sources]
