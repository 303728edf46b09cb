"""FOCUS 1.0, 1.1 and 1.2 cost and usage exports (CSV or Parquet).

FOCUS (FinOps Open Cost and Usage Specification) is the common billing schema AWS, Azure,
Google Cloud, Oracle and SaaS vendors export: one row per charge, with ``BilledCost`` in
``BillingCurrency`` over ``[ChargePeriodStart, ChargePeriodEnd)``. Every row is a record
and keeps its money; AI rows also get a token category, a token quantity and a model:

* AWS Bedrock, from ``x_UsageType`` (``USE1-Claude3Haiku-input-tokens``,
  ``USE1-anthropic.claude-haiku-4-5-mantle-cache-write-tokens-1h-standard``,
  ``USE1-MP:USE1_CacheReadInputTokenCount-Units`` with the model in ``ServiceName``
  "Claude Opus 4.6 (Amazon Bedrock Edition)"); ``-batch``/``-priority``/``-flex`` give the
  service tier.
* Azure OpenAI / Foundry meter names (``SkuMeter``, ``x_SkuMeterName`` or the charge
  description): ``gpt-4o-mini-0718-Inp-glbl Tokens``, ``GPT 5 Nano Batch Inpt cchd Dzone
  1M Tokens`` (``cchd``/``Cd`` cached, ``Wr`` cache write, ``Rsng`` reasoning, ``Batch``,
  ``PP`` priority).
* Google Vertex AI SKU descriptions: ``Gemini 2.5 Flash GA Text Input - Predictions``,
  ``... Thinking Text Output - Predictions`` (reasoning), ``... Input Text Caching``
  (cache read; ``... Caching Storage`` is storage, not tokens) and the newer ``Generate
  content input token count gemini 2.5 flash short input text``.

Token quantities come from ``ConsumedQuantity`` when ``ConsumedUnit`` is a token unit
("Tokens", "1K Tokens", "1000 Tokens", GCP's "count"), else ``PricingQuantity`` times the
``PricingUnit`` block ("1M Tokens", Azure's bare "1K"), else ``PricingQuantity`` times
``x_PricingBlockSize`` (Microsoft's export: ``PricingUnit`` "Units"). A generic "Units"
without a block size is not guessed (Bedrock marketplace units are millions of tokens):
the quantity stays NULL. Rows that are not usage (``ChargeCategory`` Purchase, Tax,
Credit, Adjustment), non-AI rows and rows whose category cannot be told are ``other``
with a NULL quantity; non-AI rows have no model.

Reading: CSV through DuckDB's reader (explicit options, every column text, header names
matched case-insensitively, BOM tolerated, record start lines from the newlines inside
quoted fields), Python's csv module only when the fast reader fails or the line accounting
disagrees (malformed rows, invalid UTF-8, blank lines); Parquet through ``read_parquet``
(``line_no`` = 1-based row number). The bare word ``NULL`` (FOCUS sample data) and empty
cells are nulls. Dates: ISO 8601 with ``Z`` or an offset, ``2024-09-18 22:00:00`` (no zone:
UTC), ``5/1/25`` (month/day/year, the spec's own examples). Numbers are exact DECIMAL
(E-notation allowed); money with more than 12 decimals or beyond DECIMAL(38,12) is
quarantined, never rounded. The line items are mapped in one SQL statement; labels (usage
types, meters, SKU names) are classified in Python once per distinct label
(``focus_items``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from tokenaudit.errors import InputError
from tokenaudit.ingest.focus_items import classify, provider_id, token_multipliers
from tokenaudit.ingest.tabular import (
    NUM_RE,
    csv_header,
    money,
    money_reason,
    nz,
    positions,
    shown,
    stage_csv,
    timestamp,
)
from tokenaudit.model import TOKEN_CATEGORIES, billing_stage_ddl

if TYPE_CHECKING:
    import duckdb

    from tokenaudit.ingest.base import Ingester, StageContext
    from tokenaudit.ingest.source import Source

NAME = "focus"
DATASET = "focus"
ROWS = "_focus_rows"
LABELS = "_focus_labels"

# Canonical name -> FOCUS column (matched without regard to case). Absent columns are NULL.
COLUMNS: dict[str, str] = {
    "billed_cost": "billedcost",
    "list_cost": "listcost",
    "currency": "billingcurrency",
    "start_raw": "chargeperiodstart",
    "end_raw": "chargeperiodend",
    "charge_category": "chargecategory",
    "charge_description": "chargedescription",
    "consumed_quantity": "consumedquantity",
    "consumed_unit": "consumedunit",
    "pricing_quantity": "pricingquantity",
    "pricing_unit": "pricingunit",
    "block_size": "x_pricingblocksize",
    "provider_name": "providername",
    "service_provider_name": "serviceprovidername",  # FOCUS 1.3 spelling
    "publisher_name": "publishername",
    "service_name": "servicename",
    "sub_account_id": "subaccountid",
    "billing_account_id": "billingaccountid",
    "sku_id": "skuid",
    "sku_meter": "skumeter",
    "x_sku_meter_name": "x_skumetername",
    "x_usage_type": "x_usagetype",
}
REQUIRED = ("BilledCost", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd")

# Columns the label classifier sees (once per distinct combination).
_LABEL_COLUMNS = (
    "provider_name",
    "service_provider_name",
    "publisher_name",
    "service_name",
    "x_usage_type",
    "sku_meter",
    "x_sku_meter_name",
    "charge_description",
    "consumed_unit",
    "pricing_unit",
    "block_size",
)


def parquet_columns(con: duckdb.DuckDBPyConnection, src: Source) -> list[str]:
    import duckdb

    try:
        rows = con.execute(
            "DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(src.data_path)}
        ).fetchall()
    except duckdb.Error as e:
        raise InputError(f"{src.path}: unreadable Parquet file ({_first_line(e)})") from None
    return [str(r[0]) for r in rows]


def stage_parquet(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    table: str,
    header: Sequence[str],
    columns: Mapping[str, str],
) -> None:
    """Fill TEMP ``table`` from a Parquet file; every value cast to text, row number = line."""
    import duckdb

    pos = positions(header, columns)
    select = ", ".join(
        f'CAST("{header[pos[c]].replace(chr(34), chr(34) * 2)}" AS VARCHAR) AS {c}'
        if c in pos
        else f"NULL::VARCHAR AS {c}"
        for c in columns
    )
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT file_row_number + 1 AS line_no, NULL::VARCHAR AS bad, {select}
            FROM read_parquet($path, file_row_number = true)""",
            {"path": str(src.data_path)},
        )
    except duckdb.Error as e:
        raise InputError(f"{src.path}: unreadable Parquet file ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def parquet_names(src: Source) -> list[str] | None:
    """Column names of a Parquet file (from its footer), or None when it is not Parquet."""
    if not src.head.startswith(b"PAR1"):
        return None
    try:
        import pyarrow.parquet as pq

        return [str(n) for n in pq.read_schema(src.data_path).names]
    except Exception:  # any unreadable footer: not ours to claim
        return None


def _label_rows(keys: list[tuple[str | None, ...]]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for key in keys:
        k = dict(zip(("key", *_LABEL_COLUMNS), key, strict=True))
        provider = provider_id(
            k["provider_name"] or k["service_provider_name"] or k["service_name"]
        )
        item = classify(
            usage_type=k["x_usage_type"],
            meters=(k["sku_meter"], k["x_sku_meter_name"]),
            description=k["charge_description"],
            service_name=k["service_name"],
        )
        c_mult, p_mult = (None, None)
        if item is not None and item.category in TOKEN_CATEGORIES:
            c_mult, p_mult = token_multipliers(
                k["consumed_unit"], k["pricing_unit"], k["block_size"]
            )
        out.append(
            (
                k["key"],
                provider,
                item.category if item else None,
                item.model if item else None,
                item.service_tier if item else None,
                c_mult,
                p_mult,
            )
        )
    return out


# --- the mapping ---------------------------------------------------------------------------

_KEY_SQL = (
    "concat_ws(chr(31), " + ", ".join(f"coalesce({c}, chr(30))" for c in _LABEL_COLUMNS) + ")"
)


def _tokens(quantity: str, mult: str) -> str:
    return (
        f"CASE WHEN {mult} IS NOT NULL AND regexp_full_match({quantity}, '{NUM_RE}') "
        f"THEN TRY_CAST(TRY_CAST({quantity} AS DECIMAL(28,10)) * CAST({mult} AS DECIMAL(10,0)) "
        f"AS DECIMAL(38,6)) END"
    )


def _quantity_reason(quantity: str, mult: str, label: str) -> str:
    return (
        f"WHEN token_category_raw IS NOT NULL AND {mult} IS NOT NULL AND {quantity} IS NOT NULL "
        f"AND NOT regexp_full_match({quantity}, '{NUM_RE}') "
        f"THEN 'invalid {label}: ' || {shown(quantity)} "
    )


def _map_sql() -> str:
    norm = ",\n        ".join(f"{nz(c)} AS {c}" for c in COLUMNS)
    token_categories = ", ".join(f"'{c}'" for c in TOKEN_CATEGORIES)
    return f"""
WITH r AS (
    SELECT line_no, bad,
        {norm}
    FROM {ROWS}
), j AS (
    SELECT r.*, l.provider, l.category, l.model, l.service_tier, l.c_mult, l.p_mult,
        CASE WHEN l.category IN ({token_categories})
                  AND coalesce(lower(r.charge_category), 'usage') = 'usage'
             THEN l.category END AS token_category_raw,
        {timestamp("start_raw")} AS period_start,
        {timestamp("end_raw")} AS period_end
    FROM r LEFT JOIN {LABELS} l ON l.key = {_KEY_SQL}
), typed AS (
    SELECT *, coalesce({_tokens("consumed_quantity", "c_mult")},
                       {_tokens("pricing_quantity", "p_mult")}) AS q
    FROM j
)
SELECT line_no,
    CASE
        WHEN bad IS NOT NULL THEN bad
        {money_reason("billed_cost", "BilledCost", required=True)}
        {money_reason("list_cost", "ListCost", required=False)}
        WHEN currency IS NULL THEN 'missing BillingCurrency'
        WHEN NOT regexp_full_match(currency, '[A-Za-z]{{3}}')
            THEN 'invalid BillingCurrency: ' || {shown("currency")}
        WHEN start_raw IS NULL THEN 'missing ChargePeriodStart'
        WHEN period_start IS NULL THEN 'invalid ChargePeriodStart: ' || {shown("start_raw")}
        WHEN end_raw IS NULL THEN 'missing ChargePeriodEnd'
        WHEN period_end IS NULL THEN 'invalid ChargePeriodEnd: ' || {shown("end_raw")}
        {_quantity_reason("consumed_quantity", "c_mult", "ConsumedQuantity")}
        {_quantity_reason("pricing_quantity", "p_mult", "PricingQuantity")}
    END AS reason,
    '{DATASET}' AS dataset, period_start, period_end, provider,
    coalesce(sub_account_id, billing_account_id) AS account,
    NULL AS project, NULL AS workspace, NULL AS api_key_hash, NULL AS api_key_last4,
    model,
    CASE WHEN token_category_raw IS NOT NULL THEN service_tier END AS service_tier,
    coalesce(token_category_raw, 'other') AS token_category,
    CASE WHEN token_category_raw IS NOT NULL AND q >= 0 THEN q END AS quantity,
    {money("billed_cost")} AS cost,
    {money("list_cost")} AS list_cost,
    upper(currency) AS currency,
    coalesce(charge_description, x_usage_type, sku_meter, x_sku_meter_name, sku_id)
        AS description
FROM typed
"""


class FocusIngester:
    name = NAME
    kind = "billing"
    detects = (
        "FOCUS 1.0-1.2 cost and usage exports, CSV or Parquet (header with BilledCost, "
        "BillingCurrency, ChargePeriodStart, ChargePeriodEnd)"
    )

    def sniff(self, src: Source) -> bool:
        names = parquet_names(src)
        if names is None:
            names = csv_header(src.head)
        return names is not None and _is_focus(names)

    def stage(self, con: duckdb.DuckDBPyConnection, src: Source, ctx: StageContext) -> int:
        con.execute(billing_stage_ddl())
        parquet = src.head.startswith(b"PAR1")
        header = parquet_columns(con, src) if parquet else csv_header(src.head)
        if not header:
            raise InputError(f"{src.path}: not a FOCUS file: no header line")
        lower = {h.strip().lower() for h in header}
        missing = [name for name in REQUIRED if name.lower() not in lower]
        if missing:
            raise InputError(
                f"{src.path}: not a FOCUS file: missing column(s) " + ", ".join(missing),
                hint="FOCUS exports have BilledCost, BillingCurrency, ChargePeriodStart and "
                "ChargePeriodEnd columns",
            )
        try:
            if parquet:
                stage_parquet(con, src, ROWS, header, COLUMNS)
            else:
                stage_csv(con, src, ROWS, header, COLUMNS)
            self._labels(con)
            con.execute(f"INSERT INTO billing_stage BY NAME {_map_sql()}")
        finally:
            con.execute(f"DROP TABLE IF EXISTS {ROWS}")
            con.execute(f"DROP TABLE IF EXISTS {LABELS}")
        return int(con.execute("SELECT count(*) FROM billing_stage").fetchall()[0][0])

    @staticmethod
    def _labels(con: duckdb.DuckDBPyConnection) -> None:
        import pyarrow as pa

        cols = ", ".join(f"{nz(c)} AS {c}" for c in _LABEL_COLUMNS)
        keys = con.execute(
            f"SELECT DISTINCT {_KEY_SQL} AS key, * FROM (SELECT {cols} FROM {ROWS})"
        ).fetchall()
        rows = _label_rows([tuple(k) for k in keys])
        names = ("key", "provider", "category", "model", "service_tier", "c_mult", "p_mult")
        types = (pa.string(),) * 5 + (pa.int64(),) * 2
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        table = pa.table(
            {n: pa.array(list(c), t) for n, c, t in zip(names, columns, types, strict=True)}
        )
        con.register("_focus_label_rows", table)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {LABELS} AS SELECT * FROM _focus_label_rows")
        finally:
            con.unregister("_focus_label_rows")


def _is_focus(names: Sequence[str]) -> bool:
    lower = {n.strip().lower() for n in names}
    return {"billedcost", "chargeperiodstart", "chargeperiodend"} <= lower and bool(
        lower & {"billingcurrency", "providername", "serviceprovidername", "servicename"}
    )


INGESTER = FocusIngester()
INGESTERS: tuple[Ingester, ...] = (INGESTER,)
