"""Count prompts in batches, on every core, and put the counts on stage rows.

A Python-parsed ingester attaches a ``tokens.prompt.Prompt`` to a stage row under the key
``_prompt``; ``base.write_stage`` calls ``apply`` on each chunk of rows before writing
them, which counts every text piece of the chunk at once (one batch per tokenizer, split
over threads: tiktoken releases the GIL) and sets the ``local_*`` columns. The text is
dropped with the prompt.

Chat-format overheads by family (OpenAI cookbook, and the recorded gpt-5 exchanges:
gpt-5 primes the reply with 2 tokens, not 3; tools overheads for gpt-5 are assumed to be
the gpt-4o ones):

========== =========== ======== ======= ==========
family     per message per name priming function
========== =========== ======== ======= ==========
gpt-3.5-0301      4       -1       3       10
gpt-4             3        1       3       10
gpt-4o, other     3        1       3        7
gpt-5             3        1       2        7
========== =========== ======== ======= ==========

Every tool definition list adds 12 (``func_end``); properties add 3 for the list and 3
each, an enum list -3 and 3 per item.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tokenaudit.tokens.encodings import REGISTRY, Choice, Registry
from tokenaudit.tokens.prompt import SYSTEM, TOOL, Prompt

# family -> (per message, per name, priming, per function)
OVERHEAD = {
    "gpt-3.5-0301": (4, -1, 3, 10),
    "gpt-4": (3, 1, 3, 10),
    "gpt-4o": (3, 1, 3, 7),
    "gpt-5": (3, 1, 2, 7),
    "other": (3, 1, 3, 7),
}
PROP_INIT, PROP_KEY, ENUM_INIT, ENUM_ITEM, FUNC_END = 3, 3, -3, 3, 12
_PARALLEL_FROM = 2_000  # pieces below this are counted on the calling thread


@dataclass(frozen=True, slots=True)
class Counts:
    tokens: int  # the whole prompt: text, chat-format overheads, tool definitions
    system: int  # of which the system / developer messages
    tools: int  # of which the tool definitions
    tokenizer: str
    exact: bool
    uncountable: int
    note: str | None


def _split(texts: list[str], parts: int) -> list[list[str]]:
    size = -(-len(texts) // parts)
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def _count(registry: Registry, tokenizer: str, texts: list[str]) -> list[int]:
    encoder = registry.encoder(tokenizer)
    assert encoder is not None  # choose() only returns loadable tokenizers
    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or len(texts) < _PARALLEL_FROM or tokenizer.startswith("hf:"):
        return encoder.count(texts)
    with ThreadPoolExecutor(workers) as pool:
        return [n for part in pool.map(encoder.count, _split(texts, workers)) for n in part]


def _total(p: Prompt, choice: Choice, lengths: list[int]) -> Counts:
    per_message, per_name, priming, per_function = OVERHEAD.get(choice.family, OVERHEAD["other"])
    text = system = tools = 0
    for kind, n in zip(p.kinds, lengths, strict=True):
        text += n
        if kind == SYSTEM:
            system += n
        elif kind == TOOL:
            tools += n
    if p.functions:
        tools += per_function * p.functions + FUNC_END
        tools += PROP_INIT * p.functions_with_properties + PROP_KEY * p.properties
        tools += ENUM_INIT * p.enums + ENUM_ITEM * p.enum_items
    overhead = (per_message * p.messages + per_name * p.names + priming) if p.chat else 0
    system += per_message * p.system_messages
    total = text - sum(n for k, n in zip(p.kinds, lengths, strict=True) if k == TOOL)
    return Counts(
        tokens=total + tools + overhead,
        system=system,
        tools=tools,
        tokenizer=choice.tokenizer,
        exact=choice.exact,
        uncountable=sum(v for k, v in p.uncountable.items() if k != "tool_use"),
        note=p.note(),
    )


def count(prompts: list[tuple[Prompt, str]], registry: Registry = REGISTRY) -> list[Counts]:
    """Counts for (prompt, model) pairs; the model picks the tokenizer and the overheads."""
    choices = [registry.choose(model) for _, model in prompts]
    batches: dict[str, list[str]] = {}
    for (p, _), choice in zip(prompts, choices, strict=True):
        batches.setdefault(choice.tokenizer, []).extend(p.texts)
    lengths = {name: iter(_count(registry, name, texts)) for name, texts in batches.items()}
    out = []
    for (p, _), choice in zip(prompts, choices, strict=True):
        it = lengths[choice.tokenizer]
        out.append(_total(p, choice, [next(it) for _ in p.texts]))
    return out


def apply(rows: list[dict[str, Any]], registry: Registry = REGISTRY) -> None:
    """Count the ``_prompt`` of each row (removing it) into the row's ``local_*`` columns."""
    todo = []
    for row in rows:
        p = row.pop("_prompt", None)
        if p is not None and row.get("reason") is None and (p.texts or p.uncountable):
            todo.append((row, p))
    if not todo:
        return
    counts = count([(p, row.get("model") or p.model or "") for row, p in todo], registry)
    for (row, _), c in zip(todo, counts, strict=True):
        row["local_input_tokens"] = c.tokens
        row["local_system_tokens"] = c.system
        row["local_tool_tokens"] = c.tools
        row["local_tokenizer"] = c.tokenizer
        row["local_exact"] = c.exact
        row["local_uncountable"] = c.uncountable
        row["local_note"] = c.note
