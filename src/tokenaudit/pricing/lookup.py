"""Pricing calls as they stream in: the resolved prices as constants in the statement.

A join against ``prices`` would reorder the rows of a streaming insert (DuckDB's
hash join does not keep insertion order), and the fast native load numbers lines
by insertion order. So the prices of the models a file is expected to use go
into the statement as constants: a ``MAP`` from (provider, model, tier) to a small
key number, then a ``CASE`` that gives the price row (a constant struct) whose key,
day and input size the call falls in. The struct has
``price_id``, ``model_id`` and the prices ``cost_sql`` reads from ``p``: per token
when every price per million has at most 6 decimals (then exact at a cost's 12
decimals, and the cost needs no 128-bit rescale per call), else per million.
Calls whose model is not in the map come out unpriced and are priced after the insert.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tokenaudit.pricing import cost_sql
from tokenaudit.pricing.catalogue import FIELDS

if TYPE_CHECKING:
    import duckdb

_SEP = "\x1f"
_PER_TOKEN = Decimal("0.000001")  # a price per million with at most these decimals ...
_MILLION = Decimal(1_000_000)  # ... divided by this is exact at 12 decimals

_PRICE_COLUMNS = ", ".join(f"p.{f}" for f in FIELDS)
_ROWS_SQL = f"""SELECT p.provider, p.model, p.service_tier, p.price_id, p.model_id,
    p.effective_from, p.effective_to, p.input_above, p.input_upto, {_PRICE_COLUMNS}
FROM prices p JOIN model_resolution r USING (provider, model)
WHERE r.status = 'priced' AND (p.provider, p.model) IN (SELECT unnest(?), unnest(?))
ORDER BY p.price_id"""

_TIER_SQL = (
    "CASE WHEN lower({s}.service_tier) IN ('batch', 'priority', 'flex') "
    "THEN lower({s}.service_tier) ELSE 'standard' END"
)


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _lit(value: object, sql_type: str) -> str:
    if value is None:
        return f"NULL::{sql_type}"
    if isinstance(value, Decimal):
        return f"{value:f}::{sql_type}"  # never an exponent: that would parse as a DOUBLE
    if isinstance(value, int):
        return f"{value}::{sql_type}"
    return f"{_text(str(value))}::{sql_type}"


@dataclass(frozen=True)
class PriceMap:
    """The price rows of a file's (provider, model) pairs, as SQL constants."""

    rows: tuple[tuple[Any, ...], ...]  # provider, model, tier, price_id, model_id, from, to,
    # input_above, input_upto, then the prices per million (FIELDS)

    @cached_property
    def per_token(self) -> bool:
        """Every price is exact per token at 12 decimals (at most 6 per million)."""
        return all(
            v is None or Decimal(v) == Decimal(v).quantize(_PER_TOKEN)
            for r in self.rows
            for v in r[9:]
        )

    def _struct(self, r: tuple[Any, ...]) -> str:
        per_token = self.per_token
        prices = [
            f"'{f.removesuffix('_mtok') + '_tok' if per_token else f}': "
            + _lit(None if v is None else Decimal(v) / _MILLION if per_token else v,
                   "DECIMAL(38,12)")
            for f, v in zip(FIELDS, r[9:], strict=True)
        ]  # fmt: skip
        fields = [f"'price_id': {_lit(r[3], 'INTEGER')}", f"'model_id': {_lit(r[4], 'VARCHAR')}"]
        return "{" + ", ".join(fields + prices) + "}"

    def _keys(self) -> dict[str, int]:
        keys: dict[str, int] = {}
        for r in self.rows:
            keys.setdefault(_SEP.join((r[0], r[1], r[2])), len(keys) + 1)
        return keys

    def key_sql(self, alias: str) -> str:
        """The call's key number (NULL when its provider, model and tier have no prices);
        ``lookup_sql`` reads it as the column ``{alias}.pk``."""
        keys = self._keys()
        if not keys:
            return "NULL::INTEGER"
        key = (
            f"coalesce(lower({alias}.provider), '') || chr(31) || {alias}.model || chr(31) || "
            + _TIER_SQL.format(s=alias)
        )
        return (
            "map_extract_value(MAP {"
            + ", ".join(f"{_text(s)}: {k}" for s, k in keys.items())
            + f"}}, {key})"
        )

    def lookup_sql(self, alias: str, total: str) -> str:
        """The price row (a struct, NULL when none) for the call ``alias`` with input
        ``total`` and key number ``{alias}.pk``."""
        if not self.rows:
            return "NULL"
        keys = self._keys()
        branches = []
        for r in self.rows:
            start, end, above, upto = r[5:9]
            cond = [f"{alias}.pk = {keys[_SEP.join((r[0], r[1], r[2]))]}"]
            if start is not None:
                cond.append(f"{alias}.ts >= {_lit(start, 'TIMESTAMP')}")
            if end is not None:
                cond.append(f"{alias}.ts < {_lit(end, 'TIMESTAMP')}")
            if above is not None and above >= 0:
                cond.append(f"{total} > {above}")
            if upto is not None:
                cond.append(f"{total} <= {upto}")
            branches.append(f"WHEN {' AND '.join(cond)} THEN {self._struct(r)}")
        return f"CASE {' '.join(branches)} END"

    def cost_sql(self, alias: str) -> str:
        """The exact cost of the call ``alias`` at the price row ``p`` its lookup picked."""
        return cost_sql(alias, self.per_token)


def price_map(con: duckdb.DuckDBPyConnection, pairs: Iterable[tuple[str, str]]) -> PriceMap:
    """The priced rows of ``pairs`` ((provider, model), resolved)."""
    pairs = list(pairs)
    if not pairs:
        return PriceMap(())
    rows = con.execute(_ROWS_SQL, [[a for a, _ in pairs], [b for _, b in pairs]]).fetchall()
    return PriceMap(tuple(rows))
