"""Which tokenizer counts a model's prompts, and loading it offline.

OpenAI models are counted with their own tiktoken encoding (``o200k_base`` for the
gpt-4o / 4.1 / 5 and o-series families, ``cl100k_base`` for gpt-4 and gpt-3.5): those
counts are *exact*. Models without a public tokenizer (Claude, Gemini, others) are counted
with a *reference* encoding (``o200k_base``) that ``reconcile --tokens`` calibrates per
model against the provider's own counts. A user may name a Hugging Face ``tokenizer.json``
per model name pattern (``[tokenizers]`` in ``tokenaudit.toml``) for open models.

Encodings are read only from tiktoken's cache folder (``TIKTOKEN_CACHE_DIR``), never
downloaded. When one cannot be loaded, one notice says so and prompts are counted as
characters / 4 instead (label ``chars/4``), which the calibration then corrects.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REFERENCE = "o200k_base"  # counts models without a public tokenizer
CHARS = "chars/4"  # the fallback when no encoding can be loaded
_BLOBS = "https://openaipublic.blob.core.windows.net/encodings/"
_FILES = {
    "o200k_base": "o200k_base.tiktoken",
    "o200k_harmony": "o200k_base.tiktoken",
    "cl100k_base": "cl100k_base.tiktoken",
    "p50k_base": "p50k_base.tiktoken",
    "r50k_base": "r50k_base.tiktoken",
}
# Provider prefixes some logs put before an OpenAI model name.
_PREFIXES = (
    "openai/",
    "azure/",
    "azure_ai/",
    "openrouter/openai/",
    "openai.",
    "text-completion-openai/",
)


class Encoder(Protocol):
    def count(self, texts: list[str]) -> list[int]: ...


@dataclass(frozen=True)
class Choice:
    """How one model's prompts are counted."""

    tokenizer: str  # tiktoken encoding name, "hf:<pattern>" or CHARS
    exact: bool  # the model's own tokenizer (else a reference, calibrated per model)
    family: str  # chat-format family: "gpt-5", "gpt-4o", "gpt-4", "gpt-3.5-0301", "other"


def openai_encoding(model: str) -> str | None:
    """The tiktoken encoding of an OpenAI model name, or None when it is not one."""
    import tiktoken.model

    name = model.strip().lower()
    for prefix in _PREFIXES:
        name = name.removeprefix(prefix)
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    try:
        return tiktoken.model.encoding_name_for_model(name)
    except KeyError:
        return None


def family(model: str) -> str:
    name = model.strip().lower().rsplit("/", 1)[-1].removeprefix("ft:")
    if name.startswith("gpt-5"):
        return "gpt-5"
    if name.startswith("gpt-3.5-turbo-0301"):
        return "gpt-3.5-0301"
    if name.startswith(("gpt-4", "gpt-3.5", "gpt-35")) and not name.startswith(
        ("gpt-4o", "gpt-4.1", "gpt-4.5")
    ):
        return "gpt-4"
    if openai_encoding(model) is not None:
        return "gpt-4o"
    return "other"


def cache_path(encoding: str) -> Path | None:
    """Where tiktoken keeps an encoding's file (None: not a known encoding)."""
    file = _FILES.get(encoding)
    if file is None:
        return None
    folder = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    root = Path(folder) if folder else Path(tempfile.gettempdir()) / "data-gym-cache"
    return root / hashlib.sha1((_BLOBS + file).encode()).hexdigest()


class _Tiktoken:
    def __init__(self, enc: Any) -> None:
        self.enc = enc

    def count(self, texts: list[str]) -> list[int]:
        encode = self.enc.encode_ordinary
        return [len(encode(t)) for t in texts]


class _Chars:
    def count(self, texts: list[str]) -> list[int]:
        return [(len(t) + 3) // 4 for t in texts]


class _HF:
    def __init__(self, tok: Any) -> None:
        self.tok = tok

    def count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in self.tok.encode_batch(texts, add_special_tokens=False)]


@dataclass
class Registry:
    """Loaded encoders, the model choices made, and the notices to show once."""

    tokenizers: dict[str, Path] = field(default_factory=dict)  # pattern -> tokenizer.json
    notices: list[str] = field(default_factory=list)
    _encoders: dict[str, Encoder] = field(default_factory=dict)
    _failed: set[str] = field(default_factory=set)
    _choices: dict[str, Choice] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, tokenizers: dict[str, Path]) -> None:
        if tokenizers != self.tokenizers:
            self.tokenizers = dict(tokenizers)
            self._choices.clear()

    def reset(self) -> None:
        """Forget loaded encoders and choices (the cache folder may have changed)."""
        with self._lock:
            self._encoders.clear()
            self._failed.clear()
            self._choices.clear()
            self.notices.clear()

    def take_notices(self) -> list[str]:
        out, self.notices = self.notices, []
        return out

    def choose(self, model: str) -> Choice:
        hit = self._choices.get(model)
        if hit is None:
            hit = self._choices[model] = self._choose(model)
        return hit

    def _choose(self, model: str) -> Choice:
        fam = family(model)
        lowered = model.lower()
        for pattern in self.tokenizers:
            if fnmatch.fnmatchcase(lowered, pattern.lower()):
                name = "hf:" + pattern
                if self.encoder(name) is not None:
                    return Choice(name, True, fam)
                break
        encoding = openai_encoding(model)
        if encoding is not None and self.encoder(encoding) is not None:
            return Choice(encoding, True, fam)
        if self.encoder(REFERENCE) is not None:
            return Choice(REFERENCE, False, fam)
        return Choice(CHARS, False, fam)

    def encoder(self, name: str) -> Encoder | None:
        with self._lock:
            if name in self._encoders:
                return self._encoders[name]
            if name in self._failed:
                return None
            loaded = self._load(name)
            if loaded is None:
                self._failed.add(name)
            else:
                self._encoders[name] = loaded
            return loaded

    def _load(self, name: str) -> Encoder | None:
        if name == CHARS:
            return _Chars()
        if name.startswith("hf:"):
            return self._load_hf(name)
        path = cache_path(name)
        if path is None or not path.is_file():
            where = os.environ.get("TIKTOKEN_CACHE_DIR") or "TIKTOKEN_CACHE_DIR is not set"
            self.notices.append(
                f"tokenizer {name} is not available offline ({where}): prompts are "
                f"counted as characters / 4 and calibrated per model instead"
            )
            return None
        try:
            import tiktoken

            return _Tiktoken(tiktoken.get_encoding(name))
        except Exception as e:  # a corrupt or unreadable file must not stop an ingest
            self.notices.append(f"tokenizer {name} could not be loaded ({type(e).__name__})")
            return None

    def _load_hf(self, name: str) -> Encoder | None:
        pattern = name[3:]
        path = self.tokenizers[pattern]
        try:
            from tokenizers import Tokenizer
        except ImportError:
            self.notices.append(
                f"tokenizer for '{pattern}' ({path}) needs the 'tokenizers' package "
                "(pip install 'tokenaudit[hf]'): using the reference encoding instead"
            )
            return None
        try:
            return _HF(Tokenizer.from_file(str(path)))
        except Exception as e:
            self.notices.append(
                f"tokenizer for '{pattern}': {path} could not be read ({str(e)[:80]}): "
                "using the reference encoding instead"
            )
            return None


REGISTRY = Registry()
