"""Date-effective prices: resolve each distinct model once, then price in SQL.

``ensure_prices`` keeps the ``prices`` and ``model_resolution`` tables in step
with the catalogue version and the user's price files. When either changes,
every stored call is re-priced, so a report never mixes two price snapshots.
``COST_SQL`` computes a call's cost exactly in DECIMAL from the joined row:
uncached input, cache reads, 5-minute and 1-hour cache writes, output, and
reasoning (priced separately only where the catalogue says so). A call whose
model has no price has a NULL cost: it is unpriced, never $0.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokenaudit.pricing import catalogue, userfile
from tokenaudit.pricing.catalogue import FIELDS, OPEN_START, SERVICE_TIERS, PriceRow

if TYPE_CHECKING:
    import duckdb

TOTAL_INPUT_SQL = (
    "({s}.input_tokens + {s}.cache_read_tokens + {s}.cache_write_tokens"
    " + {s}.cache_write_1h_tokens)"
)

# Joins a call ({s}) to the one price row for its provider, model, tier, day and input size.
PRICE_JOIN_SQL = """LEFT JOIN prices p
    ON p.provider = coalesce(lower({s}.provider), '') AND p.model = {s}.model
    AND p.service_tier = CASE WHEN lower({s}.service_tier) IN ('batch', 'priority', 'flex')
                              THEN lower({s}.service_tier) ELSE 'standard' END
    AND {s}.ts >= p.effective_from AND (p.effective_to IS NULL OR {s}.ts < p.effective_to)
    AND {total} > p.input_above AND (p.input_upto IS NULL OR {total} <= p.input_upto)
LEFT JOIN model_resolution r
    ON r.provider = coalesce(lower({s}.provider), '') AND r.model = {s}.model"""


def _term(tokens: str, price: str) -> str:
    return f"(CASE WHEN {tokens} = 0 THEN 0 ELSE {tokens} * {price} END)"


def _cost(price: str, scale: str) -> str:
    """Exact cost in USD of a call ``{s}`` at the price row ``p``: the sum of its tokens times
    ``price`` (a format string over the field names), scaled by ``scale``."""
    return (
        "CASE WHEN p.price_id IS NULL THEN NULL ELSE CAST(("
        + " + ".join(
            [
                _term("{s}.input_tokens", price.format("input")),
                _term("{s}.cache_read_tokens", f"coalesce({price.format('cache_read')}, "
                      f"{price.format('input')})"),
                _term("{s}.cache_write_tokens", f"coalesce({price.format('cache_write')}, "
                      f"{price.format('input')})"),
                _term(
                    "{s}.cache_write_1h_tokens",
                    f"coalesce({price.format('cache_write_1h')}, {price.format('cache_write')}, "
                    f"{price.format('input')})",
                ),
                _term("({s}.output_tokens - {s}.reasoning_tokens)", price.format("output")),
                _term("{s}.reasoning_tokens", f"coalesce({price.format('reasoning')}, "
                      f"{price.format('output')})"),
            ]
        )
        + f"){scale} AS DECIMAL(38,12)) END"
    )  # fmt: skip


# Exact cost in USD: sum of tokens x price per million, scaled without a division
# (DuckDB's DECIMAL division returns DOUBLE).
COST_SQL = _cost("p.{}_mtok", " * 0.000001")
# The same from prices per token (``p.<category>_tok``), where every price per million has at
# most 6 decimals so its price per token is exact at the 12 decimals of a cost: no rescaling
# (a DECIMAL(38) rescale is a 128-bit division per call, most of the cost of pricing).
COST_PER_TOKEN_SQL = _cost("p.{}_tok", "")


def price_join(alias: str) -> str:
    return PRICE_JOIN_SQL.format(s=alias, total=TOTAL_INPUT_SQL.format(s=alias))


def cost_sql(alias: str, per_token: bool = False) -> str:
    return (COST_PER_TOKEN_SQL if per_token else COST_SQL).format(s=alias)


@dataclass(frozen=True)
class PriceSettings:
    folder: Path | None  # user price files; None = none

    def files(self) -> list[Path]:
        return userfile.price_files(self.folder)

    def fingerprint(self) -> str:
        """What the prices came from: the catalogue's version and the user price files."""
        files = self.files()
        if not files:
            return catalogue.catalogue_version()
        return (
            f"{catalogue.catalogue_version()} + {len(files)} price "
            f"file{'' if len(files) == 1 else 's'} "
            f"{userfile.fingerprint(files)}"
        )


def ensure_prices(con: duckdb.DuckDBPyConnection, settings: PriceSettings) -> bool:
    """Re-resolve every model and re-price every stored call when the prices changed
    (another catalogue version, edited price files). Returns True when it re-priced."""
    from tokenaudit.db import get_meta, set_meta

    current = settings.fingerprint()
    stored = get_meta(con, "price_fingerprint")
    user = userfile.load(settings.files())
    repriced = False
    if stored != current:
        con.execute("DELETE FROM prices")
        con.execute("DELETE FROM model_resolution")
        pairs = sorted(set(_pairs(con, "usage_events")) | set(_pairs(con, "billing_lines")))
        _resolve(con, pairs, user)
        _reprice_all(con)
        # Billing lines name their model through the same resolution.
        con.execute(
            "UPDATE billing_lines AS b SET model_id = r.model_id FROM model_resolution r "
            "WHERE r.provider = coalesce(lower(b.provider), '') AND r.model = b.model"
        )
        set_meta(con, "price_fingerprint", current)
        repriced = stored is not None
    return repriced


def resolve_pairs(
    con: duckdb.DuckDBPyConnection, settings: PriceSettings, pairs: list[tuple[str, str]]
) -> int:
    """Resolve the (provider, model) pairs not seen before; return how many got a price."""
    if not pairs:
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE _pairs (provider VARCHAR, model VARCHAR)")
    con.executemany("INSERT INTO _pairs VALUES (?, ?)", pairs)
    new = [
        (str(a), str(b))
        for a, b in con.execute(
            "SELECT DISTINCT provider, model FROM _pairs ANTI JOIN model_resolution "
            "USING (provider, model) ORDER BY 1, 2"
        ).fetchall()
    ]
    con.execute("DROP TABLE _pairs")
    if not new:
        return 0
    _resolve(con, new, userfile.load(settings.files()))
    return int(
        con.execute(
            "SELECT count(*) FROM model_resolution r WHERE status = 'priced' AND "
            "(provider, model) IN (SELECT unnest(?), unnest(?))",
            [[a for a, _ in new], [b for _, b in new]],
        ).fetchall()[0][0]
    )


def resolve_model(con: duckdb.DuckDBPyConnection, settings: PriceSettings, model: str) -> None:
    """Make sure ``model`` (with no provider) has a resolution row, for ``prices MODEL``."""
    known = con.execute(
        "SELECT count(*) FROM model_resolution WHERE model = ? OR model_id = ?", [model, model]
    ).fetchall()[0][0]
    if not known:
        _resolve(con, [("", model)], userfile.load(settings.files()))


_PAIRS_SQL = """SELECT DISTINCT coalesce(lower(provider), '') AS provider, model FROM {table}
WHERE model IS NOT NULL ORDER BY 1, 2"""


def _pairs(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    sql = _PAIRS_SQL.format(table=table)
    return [(str(a), str(b)) for a, b in con.execute(sql).fetchall()]


def _resolve(
    con: duckdb.DuckDBPyConnection, pairs: list[tuple[str, str]], user: list[userfile.UserPrice]
) -> None:
    if not pairs:
        return
    next_id = int(con.execute("SELECT coalesce(max(price_id), 0) FROM prices").fetchall()[0][0])
    price_rows: list[tuple[object, ...]] = []
    resolutions: list[tuple[object, ...]] = []
    for provider, model in pairs:
        res, rows = catalogue.resolve(provider or None, model)
        mine = [u for u in user if u.matches(provider, model, res.model_id)]
        if mine:
            rows = _overlay(rows, mine, res.model_id or model)
        status = "priced" if rows else "unpriced"
        model_id = res.model_id or (model if rows else None)
        detail = res.detail if not mine else f"{res.detail}; overridden by {mine[0].source}"
        resolutions.append((provider, model, model_id, status, detail))
        for r in rows:
            next_id += 1
            price_rows.append(
                (
                    next_id,
                    provider,
                    model,
                    r.model_id,
                    r.price_provider,
                    r.service_tier,
                    r.effective_from,
                    r.effective_to,
                    r.input_above,
                    r.input_upto,
                    *r.prices,
                    r.source,
                )
            )
    con.executemany("INSERT INTO model_resolution VALUES (?, ?, ?, ?, ?)", resolutions)
    if price_rows:
        marks = ", ".join("?" * (11 + len(FIELDS)))
        con.executemany(f"INSERT INTO prices VALUES ({marks})", price_rows)


_OPEN_END = dt.date.max


def _overlay(
    catalogue_rows: list[PriceRow], user: list[userfile.UserPrice], model_id: str
) -> list[PriceRow]:
    """User prices win for the days and tiers they cover; the catalogue fills the rest.

    Tiers without a price of their own (from the user or a catalogue variant) take
    the final standard price, so a negotiated rate also applies to batch calls
    unless a batch rate is given.
    """
    bounds = {OPEN_START, _OPEN_END}
    for r in catalogue_rows:
        bounds.add(r.effective_from)
        bounds.add(r.effective_to or _OPEN_END)
    for u in user:
        bounds.add(u.effective_from or OPEN_START)
        bounds.add(u.effective_to or _OPEN_END)
    days = sorted(bounds)
    out: list[PriceRow] = []
    for a, b in itertools.pairwise(days):
        end = None if b == _OPEN_END else b
        standard = _segments_for(catalogue_rows, user, "standard", a, model_id)
        for tier in SERVICE_TIERS:
            segs = (
                standard
                if tier == "standard"
                else _segments_for(catalogue_rows, user, tier, a, model_id, own_only=True)
                or standard
            )
            out.extend(
                PriceRow(
                    s.model_id,
                    s.price_provider,
                    tier,
                    a,
                    end,
                    s.input_above,
                    s.input_upto,
                    s.prices,
                    s.source,
                )
                for s in segs
            )
    return out


def _segments_for(
    catalogue_rows: list[PriceRow],
    user: list[userfile.UserPrice],
    tier: str,
    day: dt.date,
    model_id: str,
    own_only: bool = False,
) -> list[PriceRow]:
    mine = [
        u
        for u in user
        if u.service_tier == tier
        and (u.effective_from or OPEN_START) <= day < (u.effective_to or _OPEN_END)
    ]
    if mine:
        mine.sort(key=lambda u: u.input_above)
        segs = []
        for i, u in enumerate(mine):
            upto = mine[i + 1].input_above if i + 1 < len(mine) else None
            segs.append(
                PriceRow(model_id, None, tier, day, None, u.input_above, upto, u.prices, u.source)
            )
        return segs
    cat = [
        r
        for r in catalogue_rows
        if r.service_tier == tier and r.effective_from <= day < (r.effective_to or _OPEN_END)
    ]
    if own_only and cat:
        std = [
            r
            for r in catalogue_rows
            if r.service_tier == "standard"
            and r.effective_from <= day < (r.effective_to or _OPEN_END)
        ]
        if [c.prices for c in cat] == [s.prices for s in std]:
            return []  # not a real variant: inherit the (possibly overridden) standard
    return cat


_REPRICE_SQL = """UPDATE usage_events AS u
SET cost_usd = c.cost_usd, price_id = c.price_id, model_id = c.model_id
FROM (
    SELECT s.rowid AS rid, {cost} AS cost_usd, p.price_id, r.model_id
    FROM usage_events s {join}
) c
WHERE u.rowid = c.rid"""


def _reprice_all(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_REPRICE_SQL.format(cost=cost_sql("s"), join=price_join("s")))
