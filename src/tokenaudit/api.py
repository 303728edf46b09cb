"""The library's entry points: one function per command, returning data, never printing.

Each opens the database, does its work and returns plain results that
``report.render`` turns into text. The CLI is a thin layer over these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenaudit import db
from tokenaudit.config import Config, load_config
from tokenaudit.errors import DatabaseError
from tokenaudit.pricing import PriceSettings, ensure_prices
from tokenaudit.report.queries import Filters, Report, meta, rollup

if TYPE_CHECKING:
    from tokenaudit.drains import DrainReport
    from tokenaudit.ingest.load import FileResult
    from tokenaudit.reconcile.billing import Options as BillingOptions
    from tokenaudit.reconcile.billing import Reconciliation
    from tokenaudit.reconcile.tokens import Options as TokenOptions
    from tokenaudit.reconcile.tokens import TokenReconciliation

QUARANTINE_SHOWN = 100


@dataclass
class IngestSummary:
    files: list[FileResult]
    quarantine: dict[str, list[tuple[int, str]]]  # path -> (line, reason), first N per file
    db: str
    meta: dict[str, Any] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        return {
            "files": len(self.files),
            "files_loaded": sum(f.status == "loaded" for f in self.files),
            "files_skipped": sum(f.status == "skipped" for f in self.files),
            "records_read": sum(f.records_read for f in self.files),
            "rows_loaded": sum(f.rows_loaded for f in self.files),
            "rows_quarantined": sum(f.rows_quarantined for f in self.files),
        }


def price_settings(config: Config) -> PriceSettings:
    return PriceSettings(config.pricing_folder)


def ingest(
    db_path: Path,
    paths: list[Path],
    input_format: str | None = None,
    config: Config | None = None,
    on_file: Callable[[Path, int, int], None] | None = None,
    custom_map: Path | None = None,
) -> IngestSummary:
    """Load ``paths``; ``custom_map``: a mapping file whose ingester reads every file."""
    from tokenaudit.ingest import IngestOptions
    from tokenaudit.ingest import ingest as run

    config = config or load_config()
    custom = None
    if custom_map is not None:
        from tokenaudit.ingest.custom_map import ingester

        custom = ingester(custom_map)  # validated before the database is opened
    from tokenaudit.tokens.encodings import REGISTRY

    options = IngestOptions(input_format, price_settings(config), config.attribution, custom)
    REGISTRY.configure(config.tokenizers)
    with db.connect(db_path) as con:
        results = run(con, paths, options, on_file)
        quarantine: dict[str, list[tuple[int, str]]] = {}
        paths_by_id = {
            r.file_id: r.path for r in results if r.file_id is not None and r.rows_quarantined
        }
        if paths_by_id:
            rows = con.execute(
                "SELECT file_id, line_no, reason FROM quarantine WHERE file_id IN "
                "(SELECT unnest(?)) QUALIFY row_number() OVER (PARTITION BY file_id "
                "ORDER BY line_no) <= ? ORDER BY file_id, line_no",
                [list(paths_by_id), QUARANTINE_SHOWN],
            ).fetchall()
            for file_id, line, reason in rows:
                quarantine.setdefault(paths_by_id[file_id], []).append((int(line), str(reason)))
        info = meta(con)
    notices = REGISTRY.take_notices()
    if notices:
        info["notices"] = notices
    return IngestSummary(results, quarantine, str(db_path), info)


def _existing(db_path: Path) -> Path:
    if str(db_path) != ":memory:" and not db_path.exists():
        raise DatabaseError(
            f"{db_path}: no such database",
            hint="load data first with 'tokenaudit ingest PATH' or pass --db",
        )
    return db_path


def report(
    db_path: Path,
    by: list[str],
    filters: Filters | None = None,
    top: int | None = None,
    config: Config | None = None,
    sort: str = "cost",
) -> Report:
    config = config or load_config()
    filters = filters or Filters()
    with db.connect(_existing(db_path)) as con:
        ensure_prices(con, price_settings(config))
        result = rollup(con, by, filters, top, sort)
        result.meta = {
            "db": str(db_path), "by": by, "sort": sort, "filters": filters.as_dict(), **meta(con),
        }  # fmt: skip
    return result


def reconcile_billing(
    db_path: Path, options: BillingOptions | None = None, config: Config | None = None
) -> Reconciliation:
    """Billed against logged (``reconcile.billing``); ``options`` is a ``billing.Options``."""
    from tokenaudit.reconcile import billing

    config = config or load_config()
    opts = options if options is not None else billing.Options()
    with db.connect(_existing(db_path)) as con:
        ensure_prices(con, price_settings(config))
        result = billing.reconcile(con, opts)
        result.meta = {"db": str(db_path), **result.meta, **meta(con)}
    return result


def reconcile_tokens(
    db_path: Path, options: TokenOptions | None = None, config: Config | None = None
) -> TokenReconciliation:
    """Provider-reported against locally tokenized input counts (``reconcile.tokens``)."""
    from tokenaudit.reconcile import tokens

    config = config or load_config()
    opts = options if options is not None else tokens.Options()
    with db.connect(_existing(db_path)) as con:
        ensure_prices(con, price_settings(config))
        result = tokens.reconcile(con, opts)
        result.meta = {"db": str(db_path), **result.meta}
    return result


def drains(
    db_path: Path,
    filters: Filters | None = None,
    kinds: tuple[str, ...] | None = None,
    min_waste: Decimal = Decimal(0),
    config: Config | None = None,
) -> DrainReport:
    """The waste catalogue (``drains``) over the calls ``filters`` selects."""
    from tokenaudit import drains as catalogue
    from tokenaudit.drains.base import Settings

    config = config or load_config()
    settings = Settings.from_config(config.raw.get("drains"), str(config.path or "config"))
    filters = filters or Filters()
    where, params = filters.sql()
    with db.connect(_existing(db_path)) as con:
        ensure_prices(con, price_settings(config))
        result = catalogue.detect(con, where, params, kinds or catalogue.KINDS, settings, min_waste)
        result.meta = {"db": str(db_path), "filters": filters.as_dict(), **meta(con)}
    return result


@dataclass
class PriceInfo:
    rows: list[dict[str, Any]]
    unpriced: list[dict[str, Any]]
    snapshot: str


_PRICES_SQL = """SELECT p.provider, p.model, p.model_id, p.service_tier, p.effective_from,
    p.effective_to, p.input_above, p.input_upto, p.input_mtok, p.cache_read_mtok,
    p.cache_write_mtok, p.cache_write_1h_mtok, p.output_mtok, p.reasoning_mtok, p.source,
    (SELECT count(*) FROM usage_events e WHERE e.price_id = p.price_id) AS calls
FROM prices p WHERE {where}
ORDER BY p.model, p.provider, p.service_tier, p.effective_from, p.input_above"""

_UNPRICED_SQL = """SELECT coalesce(e.provider, '') AS provider, e.model, count(*) AS calls,
    sum(e.input_tokens + e.cache_read_tokens + e.cache_write_tokens + e.cache_write_1h_tokens)
        AS input_tokens_all,
    sum(e.output_tokens) AS output_tokens, min(e.ts)::DATE::VARCHAR AS first_day,
    max(e.ts)::DATE::VARCHAR AS last_day, any_value(r.detail) AS detail
FROM usage_events e LEFT JOIN model_resolution r
    ON r.provider = coalesce(lower(e.provider), '') AND r.model = e.model
WHERE e.cost_usd IS NULL
GROUP BY ALL ORDER BY calls DESC, e.model"""


_PRICE_KEYS = (
    "input_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
    "output_mtok",
    "reasoning_mtok",
)


def _distinct_tiers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop batch/priority/flex rows that only repeat the standard price of their period."""
    standard = {
        (r["provider"], r["model"], r["effective_from"], r["input_above"]): tuple(
            r[k] for k in _PRICE_KEYS
        )
        for r in rows
        if r["service_tier"] == "standard"
    }
    return [
        r
        for r in rows
        if r["service_tier"] == "standard"
        or r["calls"]
        or standard.get((r["provider"], r["model"], r["effective_from"], r["input_above"]))
        != tuple(r[k] for k in _PRICE_KEYS)
    ]


def prices(db_path: Path, model: str | None = None, config: Config | None = None) -> PriceInfo:
    """Resolved prices (for ``model``, or every model in the data) and the unpriced models."""
    config = config or load_config()
    settings = price_settings(config)
    target = db_path if model is None or db_path.exists() else Path(":memory:")
    with db.connect(_existing(target) if model is None else target) as con:
        ensure_prices(con, settings)
        where, params = "true", []
        if model is not None:
            from tokenaudit.pricing import resolve_model

            resolve_model(con, settings, model)
            where, params = "(p.model = ? OR p.model_id = ?)", [model, model]
        cur = con.execute(_PRICES_SQL.format(where=where), params)
        names = [d[0] for d in cur.description]
        rows = _distinct_tiers([dict(zip(names, r, strict=True)) for r in cur.fetchall()])
        cur = con.execute(_UNPRICED_SQL)
        names = [d[0] for d in cur.description]
        unpriced = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        snapshot = settings.fingerprint()
    return PriceInfo(rows, unpriced, snapshot)


if TYPE_CHECKING:
    from tokenaudit.anomalies import Anomalies
    from tokenaudit.anomalies import Options as AnomalyOptions
    from tokenaudit.forecast import Forecast
    from tokenaudit.forecast import Options as ForecastOptions


def anomalies(
    db_path: Path, options: AnomalyOptions | None = None, config: Config | None = None
) -> Anomalies:
    """Daily spikes and drops per group against a robust baseline, hourly velocity runs,
    each spike explained by the drains found in it (``tokenaudit.anomalies``)."""
    from tokenaudit import anomalies as spend
    from tokenaudit.drains.base import Settings

    config = config or load_config()
    settings = Settings.from_config(config.raw.get("drains"), str(config.path or "config"))
    with db.connect(_existing(db_path)) as con:
        ensure_prices(con, price_settings(config))
        result = spend.find(con, options or spend.Options(), settings)
        result.meta = {"db": str(db_path), **result.meta, **meta(con)}
    return result


def forecast(
    db_path: Path,
    options: ForecastOptions | None = None,
    budgets: Path | None = None,
    config: Config | None = None,
) -> Forecast:
    """Month-end projection per group with its interval, acceleration and the budget
    states of the spend rules in ``budgets`` (a budgets file; ``tokenaudit.forecast``)."""
    from dataclasses import replace

    from tokenaudit import forecast as projection
    from tokenaudit.budgets import load_budgets

    config = config or load_config()
    opts = options or projection.Options()
    if budgets is not None:
        opts = replace(opts, rules=(*opts.rules, *load_budgets(budgets).spend_rules()))
    with db.connect(_existing(db_path)) as con:
        ensure_prices(con, price_settings(config))
        result = projection.forecast(con, opts)
        extra = {"budgets_file": str(budgets)} if budgets is not None else {}
        result.meta = {"db": str(db_path), **result.meta, **extra, **meta(con)}
    return result


if TYPE_CHECKING:
    from tokenaudit.gate.check import Result as CheckResult


def check(
    db_path: Path, budgets: Path, baseline: Path | None = None, config: Config | None = None
) -> CheckResult:
    """The CI gate: every rule of the budgets file per group of its scope, against its
    limits and (``baseline``, a file from ``baseline``) its regression limits."""
    from tokenaudit.budgets import load_budgets
    from tokenaudit.drains.base import Settings
    from tokenaudit.gate import baseline as stored
    from tokenaudit.gate.check import evaluate

    config = config or load_config()
    rules = load_budgets(budgets)
    base = stored.load(baseline) if baseline is not None else None
    settings = Settings.from_config(config.raw.get("drains"), str(config.path or "config"))
    with db.connect(_existing(db_path)) as con:
        ensure_prices(con, price_settings(config))
        result = evaluate(con, rules, base, settings)
        result.meta = {"db": str(db_path), **result.meta}
    return result


def baseline(db_path: Path, budgets: Path, config: Config | None = None) -> dict[str, Any]:
    """The baseline document (``gate.baseline``) of the budgets file's rules over the data."""
    from tokenaudit.budgets import load_budgets
    from tokenaudit.drains.base import Settings
    from tokenaudit.gate import baseline as stored

    config = config or load_config()
    rules = load_budgets(budgets)
    settings = Settings.from_config(config.raw.get("drains"), str(config.path or "config"))
    with db.connect(_existing(db_path)) as con:
        ensure_prices(con, price_settings(config))
        return stored.build(con, rules, settings)


if TYPE_CHECKING:
    from tokenaudit.html.data import PageData

HTML_TOP_WORKFLOWS = 8  # workflows drawn in the daily spend chart; the rest are "others"


@dataclass
class Known:
    """Results a caller of ``html_data`` already has for the same data and filters."""

    report: Report | None = None  # by workflow
    drains: DrainReport | None = None
    billing: Reconciliation | None = None  # by day, the default options
    tokens: TokenReconciliation | None = None  # top 5


def html_data(
    db_path: Path,
    filters: Filters | None = None,
    config: Config | None = None,
    budgets: Path | None = None,
    top: int = 15,
    known: Known | None = None,
) -> PageData:
    """Everything the HTML report shows (``tokenaudit.html``), from aggregated queries and
    the library's own results, over one connection; budget states only when a ``budgets``
    file is given. ``known`` passes results the caller already has (``audit`` computed them
    for the terminal) over the same data and filters, so they are not computed twice."""
    from tokenaudit import drains as catalogue
    from tokenaudit.drains.base import Settings
    from tokenaudit.html import data as page_data
    from tokenaudit.reconcile import billing, tokens

    config = config or load_config()
    filters = filters or Filters()
    known = known or Known()
    where, params = filters.sql()
    settings = Settings.from_config(config.raw.get("drains"), str(config.path or "config"))
    with db.connect(_existing(db_path)) as con:
        ensure_prices(con, price_settings(config))
        result = known.report
        if result is None:
            result = rollup(con, ["workflow"], filters, top)
            result.meta = {
                "db": str(db_path), "by": ["workflow"], "sort": "cost",
                "filters": filters.as_dict(), **meta(con),
            }  # fmt: skip
        out = page_data.PageData(
            result,
            page_data.model_mix(con, where, params, top),
            page_data.daily_spend(con, where, params, HTML_TOP_WORKFLOWS),
            page_data.daily_tokens(con, where, params),
            *page_data.sources(con),
        )
        out.drains = known.drains or catalogue.detect(con, where, params, settings=settings)
        out.billing = known.billing or billing.reconcile(
            con, billing.Options(since=filters.since, until=filters.until)
        )
        out.tokens = known.tokens or tokens.reconcile(
            con, tokens.Options(since=filters.since, until=filters.until, top=5)
        )
        window = page_data.window(con, where, params)
    if budgets is not None:
        out.forecast = forecast(db_path, None, budgets, config)
    out.meta = {**result.meta, "filters": filters.as_dict(), "window": window}
    return out


def html_report(
    db_path: Path,
    filters: Filters | None = None,
    config: Config | None = None,
    budgets: Path | None = None,
    top: int = 15,
    known: Known | None = None,
) -> str:
    """The self-contained HTML page of ``html_data``."""
    import threading

    # The plotting library takes a few hundred milliseconds to import: do it while the
    # database works (queries release the GIL), not after.
    warm = threading.Thread(target=_import_charts, daemon=True)
    warm.start()
    data = html_data(db_path, filters, config, budgets, top, known)
    warm.join()
    from tokenaudit.html.page import render

    return render(data)


def _import_charts() -> None:
    import matplotlib.backends.backend_svg
    import matplotlib.figure  # noqa: F401
