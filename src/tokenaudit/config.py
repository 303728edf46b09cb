"""Settings from ``tokenaudit.toml`` or ``[tool.tokenaudit]`` in ``pyproject.toml``.

Looked up in the current folder (``--config FILE`` names one explicitly).
Known sections: ``[pricing] folder``, ``[attribution]`` (see ``attribution.py``),
``[tokenizers]`` (model name pattern = path of a Hugging Face ``tokenizer.json``).
Unknown top-level keys are an error, so a typo never silently does nothing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenaudit.errors import ConfigError

KNOWN_SECTIONS = {"pricing", "attribution", "drains", "budgets", "db", "tokenizers"}


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    pricing_folder: Path | None = None
    attribution: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    tokenizers: dict[str, Path] = field(default_factory=dict)  # model pattern -> tokenizer.json


def load_config(explicit: Path | None = None, cwd: Path | None = None) -> Config:
    base = cwd or Path.cwd()
    data: dict[str, Any] = {}
    path: Path | None = None
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: no such configuration file")
        path = explicit
        data = _read(explicit)
        if explicit.name == "pyproject.toml":
            data = data.get("tool", {}).get("tokenaudit", {})
    elif (base / "tokenaudit.toml").is_file():
        path = base / "tokenaudit.toml"
        data = _read(path)
    elif (base / "pyproject.toml").is_file():
        tool = _read(base / "pyproject.toml").get("tool", {}).get("tokenaudit")
        if isinstance(tool, dict):
            path, data = base / "pyproject.toml", tool
    unknown = set(data) - KNOWN_SECTIONS
    if unknown:
        raise ConfigError(
            f"{path}: unknown section '{sorted(unknown)[0]}'",
            hint="known sections: " + ", ".join(sorted(KNOWN_SECTIONS)),
        )
    pricing = data.get("pricing", {})
    folder: Path | None
    if isinstance(pricing, dict) and "folder" in pricing:
        root = path.parent if path else base
        folder = (root / str(pricing["folder"])).resolve()
    else:
        folder = base / "pricing"
    attribution = data.get("attribution", {})
    if not isinstance(attribution, dict):
        raise ConfigError(f"{path}: [attribution] must be a table")
    from tokenaudit.attribution import validate

    validate(attribution, path)
    tokenizers = data.get("tokenizers", {})
    if not isinstance(tokenizers, dict) or not all(isinstance(v, str) for v in tokenizers.values()):
        raise ConfigError(
            f"{path}: [tokenizers] maps model name patterns to tokenizer.json paths",
            hint='e.g. "llama-3*" = "tokenizers/llama-3.json"',
        )
    root = path.parent if path else base
    return Config(
        path=path,
        pricing_folder=folder,
        attribution=attribution,
        raw=data,
        tokenizers={k: (root / v).resolve() for k, v in tokenizers.items()},
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
