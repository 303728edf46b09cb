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
types, meters, SKU names) are classified in Python once per distinct label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from tokenaudit.errors import InputError
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


# --- classifying line items: token category, model, service tier --------------------------


@dataclass(frozen=True)
class Item:
    """What a billing label says: a token category, the model and the service tier."""

    category: str
    model: str | None
    service_tier: str | None = "standard"


_TIERS = {"batch": "batch", "priority": "priority", "flex": "flex", "standard": "standard"}
_MODALITIES = {"text", "audio", "image", "images", "video", "speech", "multimodal"}
_REGION = re.compile(r"^(?:[A-Z]{2,3}[0-9]|EU)-")
_MP = re.compile(r"^(?:[A-Za-z]{2,3}[0-9]-)?MP:(?:[A-Za-z]{2,3}[0-9]_)?(.*?)(?:-Units)?$", re.I)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_BEDROCK_EDITION = re.compile(r"\s*\(Amazon Bedrock Edition\)\s*$", re.I)
_NOT_TOKENS_BEDROCK = re.compile(
    r"per-minute|tpm|reserved|provisioned|custom-?model|training|optimizeprompt", re.I
)


def bedrock_usage_type(usage_type: str, service_name: str | None = None) -> Item | None:
    """An AWS Bedrock CUR usage type: model part, token direction and tier suffix."""
    text = usage_type.strip()
    if "token" not in text.lower() or _NOT_TOKENS_BEDROCK.search(text):
        return None
    mp = _MP.match(text)
    if mp:  # marketplace models: USE1-MP:USE1_CacheWrite1hInputTokenCount_Global-Units
        words = [w for w in re.split(r"[-_\s]+", _CAMEL.sub("-", mp.group(1)).lower()) if w]
        words = [p for w in words for p in re.split(r"(?<=[a-z])(?=[0-9])", w) if p]
        model = _BEDROCK_EDITION.sub("", service_name).strip() if service_name else None
        return _bedrock_words(words, words, model or None)
    body = _REGION.sub("", text, count=1)
    if "-mantle-" in body:
        model_part, _, rest = body.partition("-mantle-")
        words = [w for w in re.split(r"[-_]+", rest.lower()) if w]
        return _bedrock_words(words, words, model_part or None)
    parts = body.split("-")
    lower = [p.lower() for p in parts]
    anchor = next((i for i, w in enumerate(lower) if w in ("input", "output", "cache")), None)
    if anchor is None or anchor == 0:
        return None
    end = anchor - 1 if lower[anchor - 1] in _MODALITIES and anchor > 1 else anchor
    model = "-".join(parts[:end]) or None
    return _bedrock_words(lower[anchor:], lower[anchor:], model)


def _bedrock_words(words: list[str], tail: list[str], model: str | None) -> Item | None:
    if not any(w in ("token", "tokens", "tokencount", "count") for w in words):
        return None
    tier: str | None = next((_TIERS[w] for w in tail if w in _TIERS), "standard")
    if "latency" in tail:
        tier = None  # latency-optimized inference: not one of the tiers tokenaudit knows
    if "cache" in words:
        i = words.index("cache")
        kind = words[i + 1] if i + 1 < len(words) else ""
        if kind == "read":
            return Item("cache_read", model, tier)
        if kind == "write":
            one_hour = any(w in ("1h", "60m") for w in words)
            return Item("cache_write_1h" if one_hour else "cache_write", model, tier)
        return None
    if "input" in words:
        return Item("input", model, tier)
    if "output" in words:
        return Item("output", model, tier)
    return None


_AZ_INPUT = {"inp", "inpt", "input", "in", "prompt"}
_AZ_OUTPUT = {"outp", "outpt", "output", "out", "opt", "completion"}
_AZ_CACHED = {"cchd", "ccchd", "cached", "cache", "cd", "cachd", "caching"}
_AZ_WRITE = {"wr", "write", "creation"}
_AZ_REASONING = {"rsng", "reasoning"}
_AZ_ANCHORS = _AZ_INPUT | _AZ_OUTPUT | _AZ_CACHED | _AZ_REASONING
_AZ_QUALIFIERS = {
    "batch", "pp", "priority", "flex", "std", "standard", "gl", "glbl", "global", "dz",
    "dzone", "datazone", "data", "zone", "rg", "reg", "regnl", "rgnl", "regional",
    "shortco", "longco", "short", "long", "context",
}  # fmt: skip
_AZ_NOT_TOKENS = {"training", "hosting", "grader", "ftuning", "provisioned", "ptu", "storage"}
_AZ_TOKENS = re.compile(r"^(.*?)[\s_-]*(?:\b\d+\s*[KkMm])?\s+Tokens?\s*$|^(.*?)-Tokens?\s*$")


def azure_meter(meter: str) -> Item | None:
    """An Azure OpenAI / Foundry token meter name (``gpt-4o-mini-0718-Inp-glbl Tokens``)."""
    m = _AZ_TOKENS.match(meter.strip())
    if not m:
        return None
    body = (m.group(1) if m.group(1) is not None else m.group(2)).strip(" -_")
    spans = [(w.group(), w.start(), w.end()) for w in re.finditer(r"[^\s_-]+", body)]
    words = [w.lower() for w, _, _ in spans]
    if not words or _AZ_NOT_TOKENS & set(words):
        return None
    if any(w in ("batch",) for w in words):
        tier = "batch"
    elif any(w in ("pp", "priority") for w in words):
        tier = "priority"
    elif "flex" in words:
        tier = "flex"
    else:
        tier = "standard"
    anchor = next((i for i, w in enumerate(words) if w in _AZ_ANCHORS), None)
    model_end = len(words) if anchor is None else anchor
    kept = [i for i in range(model_end) if words[i] not in _AZ_QUALIFIERS]
    model = body[: spans[kept[-1]][2]].strip() if kept else None
    rest = set(words[model_end:])
    if anchor is None:
        # An embeddings meter has no direction: all of it is input.
        if any("embedding" in w for w in words):
            return Item("input", model, tier)
        return None
    if rest & _AZ_CACHED:
        return Item("cache_write" if rest & _AZ_WRITE else "cache_read", model, tier)
    if rest & _AZ_REASONING:
        return Item("reasoning", model, tier)
    if rest & _AZ_OUTPUT:
        return Item("output", model, tier)
    if rest & _AZ_INPUT:
        return Item("input", model, tier)
    return None


_SKU_STOP = {
    "ga", "preview", "global", "live", "batch", "priority", "flex", "standard", "text",
    "audio", "image", "images", "video", "multimodal", "input", "output", "thinking",
    "caching", "cached", "cache", "long", "short", "predictions", "tokens", "token",
    "context", "reasoning", "prompt", "response", "online", "char", "characters",
}  # fmt: skip
_SKU_NOT_TOKENS = re.compile(
    r"storage|training|tuning|provisioned|grounding|per hour|\bhours?\b|\bseconds?\b|"
    r"\bminutes?\b|\bcharacters?\b|\brequests?\b|\bpages?\b",
    re.I,
)
_GENERATE = re.compile(
    r"^generate content (?P<dir>(?:cached )?input|output|cache(?:d)? (?:read|write)[\w ]*?)"
    r" token count (?P<rest>.+)$",
    re.I,
)
_THINKING_OUTPUT = re.compile(r"\bthinking\s+(?:(?:text|audio|image|video)\s+)?output\b", re.I)


def sku_description(desc: str) -> Item | None:
    """A cloud SKU description (Vertex AI Gemini, partner models): direction and model."""
    text = desc.strip()
    low = text.lower()
    if _SKU_NOT_TOKENS.search(low) or text.startswith("$"):
        return None
    tier = next((_TIERS[w] for w in re.findall(r"[a-z]+", low) if w in _TIERS), "standard")
    g = _GENERATE.match(text)
    if g:  # Generate content output token count gemini 2.5 flash short output text thinking
        rest = g.group("rest")
        words = rest.split()
        n = next((i for i, w in enumerate(words) if w.lower() in _SKU_STOP), len(words))
        model = " ".join(words[:n]) or None
        direction = g.group("dir").lower()
        tail = {w.lower() for w in words[n:]}
        if "cache" in direction:
            is_write = "write" in direction
            return Item("cache_write" if is_write else "cache_read", model, tier)
        if direction == "output":
            thinking = "thinking" in tail and "non-thinking" not in tail
            return Item("reasoning" if thinking else "output", model, tier)
        return Item("input", model, tier)
    if not (low.endswith("predictions") or "token" in low or "caching" in low):
        return None
    words = re.findall(r"[^\s()\-]+(?:-[^\s()\-]+)*", text)
    lower = [w.lower() for w in words]
    n = next((i for i, w in enumerate(lower) if w in _SKU_STOP), len(words))
    model = " ".join(words[:n]) or None
    rest = set(lower[n:])
    if "caching" in rest or "cached" in rest or ("cache" in rest and "read" in rest):
        if not ({"input", "read", "text"} & rest or "token" in low):
            return None
        return Item("cache_read", model, tier)
    if "cache" in rest and ("write" in rest or "creation" in rest):
        one_hour = "1h" in rest or "1-hour" in rest
        return Item("cache_write_1h" if one_hour else "cache_write", model, tier)
    if _THINKING_OUTPUT.search(text) or ("reasoning" in rest and "output" in rest):
        return Item("reasoning", model, tier)
    if "output" in rest:
        return Item("output", model, tier)
    if "input" in rest or "prompt" in rest:
        return Item("input", model, tier)
    return None


def classify(
    *,
    usage_type: str | None = None,
    meters: Sequence[str | None] = (),
    description: str | None = None,
    service_name: str | None = None,
) -> Item | None:
    """The first label that names a token category, most specific first."""
    item: Item | None = None
    if usage_type:
        item = bedrock_usage_type(usage_type, service_name)
    for label in (*meters, description):
        if item is not None:
            break
        # Price sentences ("$0.003 per 1K input tokens for ...") name no model: skip them.
        if label and not label.lstrip().startswith("$") and " per " not in label:
            item = azure_meter(label) or sku_description(label)
    if item is not None and item.model is None and service_name:
        edition = _BEDROCK_EDITION.search(service_name)
        if edition:
            item = Item(item.category, service_name[: edition.start()].strip(), item.service_tier)
    return item


_PROVIDERS = (
    (re.compile(r"\b(?:amazon|aws)\b"), "aws"),
    (re.compile(r"\b(?:microsoft|azure)\b"), "azure"),
    (re.compile(r"\b(?:google|gcp)\b"), "google"),
    (re.compile(r"\b(?:oracle|oci)\b"), "oracle"),
    (re.compile(r"\bopenai\b"), "openai"),
    (re.compile(r"\banthropic\b"), "anthropic"),
)


def provider_id(name: str | None) -> str | None:
    """A catalogue provider id from a FOCUS ProviderName ("AWS", "Microsoft", "Google Cloud")."""
    if not name:
        return None
    low = name.strip().lower()
    for pattern, pid in _PROVIDERS:
        if pattern.search(low):
            return pid
    return "-".join(re.findall(r"[a-z0-9]+", low)) or None


# --- units: how many tokens one unit of a quantity is ---------------------------------------

_UNIT = re.compile(
    r"(?:(?P<n>\d+)\s*(?P<k>k|m|thousand|million)?\s*)?(?P<what>tokens?|counts?|units?)?"
)


def unit_tokens(unit: str | None) -> tuple[str, int | None]:
    """("tokens", n) for a token unit ("1K Tokens", "Tokens", bare "1M", GCP "count"),
    ("generic", None) for "Units", ("none", None) for anything else."""
    if not unit or not unit.strip():
        return "none", None
    m = _UNIT.fullmatch(unit.strip().lower())
    if not m or not (m.group("n") or m.group("what")):
        return "none", None
    what = m.group("what") or ""
    if what.startswith("unit") and not m.group("n") and not m.group("k"):
        return "generic", None
    if what.startswith("unit"):
        return "none", None  # "1000 Units" of something
    n = int(m.group("n") or 1)
    scale = {"k": 1000, "thousand": 1000, "m": 1_000_000, "million": 1_000_000}
    return "tokens", n * scale.get(m.group("k") or "", 1)


def token_multipliers(
    consumed_unit: str | None, pricing_unit: str | None, block_size: str | None
) -> tuple[int | None, int | None]:
    """Tokens per unit of ConsumedQuantity and of PricingQuantity (None: not in tokens).

    A generic PricingUnit ("Units", Microsoft's export) counts in blocks of
    ``x_PricingBlockSize`` when the file gives one; otherwise it is not guessed.
    """
    kind, consumed = unit_tokens(consumed_unit)
    pkind, pricing = unit_tokens(pricing_unit)
    if pkind == "generic" and block_size:
        try:
            size = Decimal(block_size)
        except InvalidOperation:
            size = Decimal(0)
        if size.is_finite() and size > 0 and size == size.to_integral_value():
            pricing, pkind = int(size), "tokens"
    return (consumed if kind == "tokens" else None, pricing if pkind == "tokens" else None)


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
