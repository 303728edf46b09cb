"""Attribution mapping: fill workflow / team / tenant / ... from the fields teams really log.

A user whose logs call the workflow ``feature`` or the team ``x-team`` still gets
``report --by workflow``. In ``tokenaudit.toml``::

    [attribution]
    workflow = ["tags.feature", "tags.x-workflow", "agent"]   # first non-empty wins
    team = "tags.x-team"

    [attribution.api_keys]          # by the key's last 4 characters
    "9f2c" = { team = "search", workflow = "rag" }

    [attribution.projects]          # by project / workspace id
    "proj_abc" = { team = "support" }

Rules only fill a dimension the source left empty; the source's own value wins.
A path is a column name or ``tags.KEY`` (a key of the record's tags or metadata).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import ConfigError
from tokenaudit.model import q

if TYPE_CHECKING:
    import duckdb

TARGETS = (
    "workflow",
    "team",
    "tenant",
    "user",
    "agent",
    "prompt_version",
    "environment",
    "project",
)
SOURCES = (*TARGETS, "provider", "model", "session_id", "trace_id", "api_key_last4", "source")


def validate(section: dict[str, Any], path: Path | None) -> None:
    for key, value in section.items():
        if key in ("api_keys", "projects"):
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [attribution.{key}] must be a table")
            for ident, dims in value.items():
                if not isinstance(dims, dict):
                    raise ConfigError(f"{path}: attribution.{key}.{ident} must be a table")
                for dim in dims:
                    if dim not in TARGETS:
                        raise ConfigError(
                            f"{path}: attribution.{key}.{ident}: unknown dimension '{dim}'"
                        )
            continue
        if key not in TARGETS:
            raise ConfigError(
                f"{path}: [attribution] unknown dimension '{key}'",
                hint="dimensions: " + ", ".join(TARGETS),
            )
        for src in [value] if isinstance(value, str) else value:
            if not isinstance(src, str) or not (src.startswith("tags.") or src in SOURCES):
                raise ConfigError(
                    f"{path}: attribution.{key}: '{src}' is not a column or tags.KEY path"
                )


def _path_sql(src: str) -> str:
    if src.startswith("tags."):
        key = src[5:].replace("'", "''").replace('"', '\\"')
        return f"NULLIF(json_extract_string(tags, '$.\"{key}\"'), '')"
    return q(src)


def apply(
    con: duckdb.DuckDBPyConnection,
    section: dict[str, Any],
    table: str = "usage_events",
    where: str = "true",
    params: list[Any] | None = None,
) -> None:
    """Fill empty dimensions of ``table``'s rows matching ``where`` by the rules."""
    params = params or []
    sets: list[str] = []
    for dim in TARGETS:
        rule = section.get(dim)
        if rule is None:
            continue
        sources = [rule] if isinstance(rule, str) else list(rule)
        sets.append(f"{q(dim)} = coalesce({q(dim)}, {', '.join(_path_sql(s) for s in sources)})")
    if sets:
        con.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE {where}", params)
    for kind, column in (("api_keys", "api_key_last4"), ("projects", "project")):
        mapping = section.get(kind) or {}
        for ident, dims in mapping.items():
            ident = str(ident).lstrip("….*")
            assigns = ", ".join(f"{q(d)} = coalesce({q(d)}, ?)" for d in dims)
            con.execute(
                f"UPDATE {table} SET {assigns} WHERE ({where}) AND {q(column)} = ?",
                [*[str(v) for v in dims.values()], *params, ident],
            )
