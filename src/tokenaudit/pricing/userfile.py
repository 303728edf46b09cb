"""User price files: negotiated rates, custom and fine-tuned models, effective dates.

Files in the pricing folder (``./pricing`` by default) override the catalogue
for the days they cover. TOML::

    [[price]]
    model = "gpt-4o"                 # as logged, the canonical id, or a glob ("ft:gpt-4o-mini:*")
    provider = "openai"              # optional
    effective_from = "2026-01-01"    # optional, inclusive
    effective_to = "2027-01-01"      # optional, exclusive
    service_tier = "standard"        # optional: standard | batch | priority | flex
    input_mtok = "2.125"             # USD per million tokens, exact decimals (strings or numbers)
    cache_read_mtok = "1.0625"
    output_mtok = "8.5"
    source = "MSA 2026 discount"     # optional; defaults to the file name

CSV files have the same column names, one price per row.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import hashlib
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tokenaudit.errors import ConfigError
from tokenaudit.pricing.catalogue import FIELDS, SERVICE_TIERS

ALIASES = {"cached_input_mtok": "cache_read_mtok", "cache_write_5m_mtok": "cache_write_mtok"}
ALLOWED = {
    "model",
    "provider",
    "effective_from",
    "effective_to",
    "service_tier",
    "source",
    "input_above",
    *FIELDS,
    *ALIASES,
}


@dataclass(frozen=True)
class UserPrice:
    pattern: str
    provider: str | None
    service_tier: str
    effective_from: dt.date | None
    effective_to: dt.date | None
    input_above: int
    prices: tuple[Decimal | None, ...]
    source: str

    def matches(self, provider: str | None, model: str, model_id: str | None) -> bool:
        # A call that does not say its provider may take a price file's row for any.
        if self.provider and provider and provider.lower() != self.provider.lower():
            return False
        pat = self.pattern.lower()
        names = [model.lower()] + ([model_id.lower()] if model_id else [])
        return any(fnmatch.fnmatchcase(n, pat) for n in names)


def price_files(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".toml", ".csv")
    )


def fingerprint(files: list[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def load(files: list[Path]) -> list[UserPrice]:
    out: list[UserPrice] = []
    for path in files:
        if path.suffix.lower() == ".toml":
            out.extend(_load_toml(path))
        else:
            out.extend(_load_csv(path))
    return out


def _load_toml(path: Path) -> list[UserPrice]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    entries = data.get("price", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'price' must be an array of tables ([[price]])")
    return [_entry(path, f"price #{i}", e) for i, e in enumerate(entries, start=1)]


def _load_csv(path: Path) -> list[UserPrice]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = []
        for i, row in enumerate(reader, start=2):
            clean = {k.strip(): v.strip() for k, v in row.items() if k and v and v.strip()}
            rows.append(_entry(path, f"line {i}", clean))
        return rows


def _entry(path: Path, where: str, e: Any) -> UserPrice:
    if not isinstance(e, dict):
        raise ConfigError(f"{path}: {where}: expected a table of keys")
    unknown = set(e) - ALLOWED
    if unknown:
        raise ConfigError(
            f"{path}: {where}: unknown key '{sorted(unknown)[0]}'",
            hint="allowed: " + ", ".join(sorted(ALLOWED)),
        )
    model = e.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"{path}: {where}: 'model' is required")
    tier = str(e.get("service_tier", "standard")).lower()
    if tier not in SERVICE_TIERS:
        raise ConfigError(f"{path}: {where}: service_tier '{tier}' is not one of {SERVICE_TIERS}")
    values = {ALIASES.get(k, k): v for k, v in e.items()}
    prices = tuple(_money(path, where, f, values.get(f)) for f in FIELDS)
    if all(p is None for p in prices):
        raise ConfigError(f"{path}: {where}: no price given (e.g. input_mtok, output_mtok)")
    start = _date(path, where, "effective_from", e.get("effective_from"))
    end = _date(path, where, "effective_to", e.get("effective_to"))
    if start and end and end <= start:
        raise ConfigError(
            f"{path}: {where}: effective_to {end} is not after effective_from {start}"
        )
    above = e.get("input_above", -1)
    try:
        above = int(above)
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: {where}: input_above '{above}' is not a whole number") from None
    return UserPrice(
        pattern=model.strip(),
        provider=str(e["provider"]).strip() if e.get("provider") else None,
        service_tier=tier,
        effective_from=start,
        effective_to=end,
        input_above=above,
        prices=prices,
        source=str(e.get("source") or f"pricing/{path.name}"),
    )


def _money(path: Path, where: str, key: str, value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{path}: {where}: {key} '{value}' is not a number") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"{path}: {where}: {key} '{value}' must be a non-negative number")
    return d


def _date(path: Path, where: str, key: str, value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{path}: {where}: {key} '{value}' is not a date (YYYY-MM-DD)") from None
