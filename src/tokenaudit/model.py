"""Column names and types of the normalized tables, in one place.

Ingesters fill a TEMP table ``stage`` with ``STAGE_COLUMNS``: one row per record
read, with ``reason`` set when the record must be quarantined. The loader then
validates, attributes, dedupes, prices and inserts into ``usage_events``.
"""

from __future__ import annotations

from typing import Final

TOKEN_COLUMNS: Final = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)

# Attribution dimensions a report can group by (besides day/week/month).
DIMENSIONS: Final = (
    "workflow",
    "team",
    "tenant",
    "user",
    "agent",
    "prompt_version",
    "environment",
    "project",
    "provider",
    "model",
    "model_id",
    "service_tier",
    "api_key",
    "session_id",
    "trace_id",
    "status",
    "source",
)

TIME_DIMENSIONS: Final = ("day", "week", "month", "hour")

OUTCOMES: Final = ("accepted", "edited", "rejected", "escalated")

# The staging table every usage ingester fills (besides line_no and reason).
# Where a source carries the prompt's text: how it was counted locally (``tokens``) and a
# gateway's or application's own estimate. Appended to usage_events by migration m005.
LOCAL_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("local_tokenizer", "VARCHAR"),  # o200k_base, cl100k_base, hf:<pattern>, chars/4
    ("local_exact", "BOOLEAN"),  # the model's own tokenizer (else a calibrated reference)
    ("local_system_tokens", "BIGINT"),  # of local_input_tokens: system / developer messages
    ("local_tool_tokens", "BIGINT"),  # of local_input_tokens: tool definitions
    ("local_uncountable", "INTEGER"),  # images, audio, files: not countable locally
    ("local_note", "VARCHAR"),  # what those were; "truncated" when the logged text was
    ("gateway_input_tokens", "BIGINT"),  # a gateway's / application's own input estimate
)


def no_local_sql(gateway: str = "NULL::BIGINT") -> str:
    """The LOCAL_COLUMNS of an SQL ingester that never sees text (``gateway``: an estimate)."""
    return ", ".join(
        f"{gateway if n == 'gateway_input_tokens' else f'NULL::{t}'} AS {n}"
        for n, t in LOCAL_COLUMNS
    )


NO_LOCAL_SQL: Final = no_local_sql()

USAGE_STAGE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("ts", "TIMESTAMP"),
    ("request_id", "VARCHAR"),
    ("trace_id", "VARCHAR"),
    ("span_id", "VARCHAR"),
    ("parent_span_id", "VARCHAR"),
    ("session_id", "VARCHAR"),
    ("provider", "VARCHAR"),
    ("model", "VARCHAR"),
    ("service_tier", "VARCHAR"),
    ("workflow", "VARCHAR"),
    ("team", "VARCHAR"),
    ("tenant", "VARCHAR"),
    ("user", "VARCHAR"),
    ("agent", "VARCHAR"),
    ("prompt_version", "VARCHAR"),
    ("environment", "VARCHAR"),
    ("project", "VARCHAR"),
    ("api_key_hash", "VARCHAR"),
    ("api_key_last4", "VARCHAR"),
    ("input_tokens", "BIGINT"),
    ("cache_read_tokens", "BIGINT"),
    ("cache_write_tokens", "BIGINT"),
    ("cache_write_1h_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("reasoning_tokens", "BIGINT"),
    ("attempt", "INTEGER"),
    ("status", "VARCHAR"),
    ("error_type", "VARCHAR"),
    ("http_status", "INTEGER"),
    ("latency_ms", "DOUBLE"),
    ("outcome", "VARCHAR"),
    ("prompt_hash", "VARCHAR"),
    ("prefix_hash", "VARCHAR"),
    ("local_input_tokens", "BIGINT"),
    ("reported_cost_usd", "DECIMAL(38,12)"),
    ("tags", "JSON"),
    *LOCAL_COLUMNS,
)

USAGE_STAGE_NAMES: Final = tuple(name for name, _ in USAGE_STAGE_COLUMNS)


def q(name: str) -> str:
    """Quote an identifier (``user`` is a keyword)."""
    return '"' + name.replace('"', '""') + '"'


def stage_ddl(table: str = "stage") -> str:
    cols = ", ".join(f"{q(n)} {t}" for n, t in USAGE_STAGE_COLUMNS)
    return f"CREATE OR REPLACE TEMP TABLE {table} (line_no BIGINT NOT NULL, reason VARCHAR, {cols})"


# Billing: one row per (period x provider x model x scope x token category). Categories
# never overlap, as in usage_events: "input" is uncached input.
BILLING_CATEGORIES: Final = (
    "input",
    "cache_read",
    "cache_write",
    "cache_write_1h",
    "output",
    "reasoning",  # only where a source bills reasoning apart from output
    "requests",  # quantity = request count (OpenAI usage)
    "web_search",
    "other",  # any other billed item (images, audio, storage, tools)
)
TOKEN_CATEGORIES: Final = (
    "input",
    "cache_read",
    "cache_write",
    "cache_write_1h",
    "output",
    "reasoning",
)

# The staging table every billing ingester fills (besides line_no and reason). One source
# record may give several rows (one per category), all with its line_no; a record with
# nothing billed gives one row with token_category NULL (loaded, nothing inserted).
BILLING_STAGE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("dataset", "VARCHAR"),  # e.g. openai.usage.completions, anthropic.cost_report
    ("period_start", "TIMESTAMP"),  # UTC, inclusive
    ("period_end", "TIMESTAMP"),  # UTC, exclusive
    ("provider", "VARCHAR"),
    ("account", "VARCHAR"),
    ("project", "VARCHAR"),
    ("workspace", "VARCHAR"),
    ("api_key_hash", "VARCHAR"),
    ("api_key_last4", "VARCHAR"),
    ("model", "VARCHAR"),
    ("service_tier", "VARCHAR"),
    ("token_category", "VARCHAR"),
    ("quantity", "DECIMAL(38,6)"),  # tokens for token categories
    ("cost", "DECIMAL(38,12)"),  # in currency units (dollars, not cents)
    ("list_cost", "DECIMAL(38,12)"),
    ("currency", "VARCHAR"),  # ISO 4217, upper case
    ("description", "VARCHAR"),  # the line item as the source words it
)

BILLING_STAGE_NAMES: Final = tuple(name for name, _ in BILLING_STAGE_COLUMNS)


def billing_stage_ddl(table: str = "billing_stage") -> str:
    cols = ", ".join(f"{q(n)} {t}" for n, t in BILLING_STAGE_COLUMNS)
    return f"CREATE OR REPLACE TEMP TABLE {table} (line_no BIGINT NOT NULL, reason VARCHAR, {cols})"


# Outcomes (an outcomes file, or the scores of a trace export): one row per record.
OUTCOME_STAGE_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("key_kind", "VARCHAR"),  # trace | session | request
    ("key", "VARCHAR"),
    ("outcome", "VARCHAR"),  # accepted | edited | rejected | escalated
    ("ts", "TIMESTAMP"),  # UTC; NULL: when the call it judges happened
    ("reviewer", "VARCHAR"),
)
KEY_KINDS: Final = ("trace", "session", "request")


def outcome_stage_ddl(table: str = "outcome_stage") -> str:
    cols = ", ".join(f"{q(n)} {t}" for n, t in OUTCOME_STAGE_COLUMNS)
    return f"CREATE OR REPLACE TEMP TABLE {table} (line_no BIGINT NOT NULL, reason VARCHAR, {cols})"
