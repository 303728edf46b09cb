"""The prompt of an OpenTelemetry span: its message and tool-definition attributes.

Read only to count tokens locally (``tokens.count``), never kept: ``prompt_attributes``
picks a span's ``gen_ai.input.messages``, ``gen_ai.system_instructions``,
``gen_ai.tool.definitions``, OpenLLMetry's flattened ``gen_ai.prompt.N.*`` and
``llm.request.functions.N.*``, and OpenInference's ``llm.input_messages.N.*`` and
``llm.tools.N.*``; ``span_prompt`` turns them into a ``tokens.prompt.Prompt``. Langfuse
stores OTel spans' messages as they came, so its ingester shares ``tokens.shapes``.
"""

from __future__ import annotations

import re
from typing import Any

from tokenaudit.tokens.prompt import Prompt
from tokenaudit.tokens.shapes import chat_prompt, convert_part, load_json, tool_definitions

JSON = dict[str, Any]

_PROMPT_ATTRS = ("gen_ai.input.messages", "gen_ai.system_instructions",
                 "gen_ai.tool.definitions", "gen_ai.prompt")  # fmt: skip
_PROMPT_PREFIXES = ("gen_ai.input", "gen_ai.system_instructions", "gen_ai.tool.definitions",
                    "gen_ai.prompt", "llm.input_messages.", "llm.request.functions.",
                    "llm.tools.")  # fmt: skip
_FLAT = re.compile(r"(gen_ai\.prompt|llm\.input_messages|llm\.request\.functions|llm\.tools)"
                   r"\.(\d{1,6})\.(.+)")  # fmt: skip


def _nest(flat: dict[str, Any]) -> JSON:
    """Dotted keys (``message.tool_calls.0.tool_call.id``) as nested objects."""
    out: JSON = {}
    for key, value in flat.items():
        *path, leaf = key.split(".")
        node = out
        for p in path:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                break  # a value and a branch at one key: the value stays
            node = nxt
        else:
            if not isinstance(node.get(leaf), dict):
                node[leaf] = value
    return out


def _ordered(node: Any) -> list[Any]:
    """The values of an object keyed by indexes ("0", "1", ...), in index order."""
    if not isinstance(node, dict):
        return []
    return [node[k] for k in sorted(node, key=lambda k: int(k) if k.isdigit() else 1 << 30)]


def _openllmetry_message(m: JSON) -> JSON:
    content = m.get("content")
    parsed = load_json(content) if isinstance(content, str) and content.startswith("[{") else None
    if isinstance(parsed, list) and all(isinstance(p, dict) and "type" in p for p in parsed):
        content = parsed  # a list of content parts, logged as JSON text
    calls = [{"function": {"name": c.get("name"), "arguments": c.get("arguments")}}
             for c in _ordered(m.get("tool_calls")) if isinstance(c, dict)]  # fmt: skip
    return {"role": m.get("role"), "content": content, "name": m.get("name"),
            "tool_calls": calls or None}  # fmt: skip


def _openinference_message(m: JSON) -> JSON:
    inner = m.get("message")
    m = inner if isinstance(inner, dict) else m
    content: Any = m.get("content")
    if content is None and m.get("contents") is not None:
        content = []
        for c in _ordered(m.get("contents")):
            part = c.get("message_content") if isinstance(c, dict) else None
            if isinstance(part, dict):
                content.append({"type": "image"} if part.get("type") == "image" else
                               {"type": "text", "text": part.get("text")})  # fmt: skip
    calls = []
    for c in _ordered(m.get("tool_calls")):
        fn = (c.get("tool_call") or {}).get("function") if isinstance(c, dict) else None
        if isinstance(fn, dict):
            calls.append({"function": {"name": fn.get("name"), "arguments": fn.get("arguments")}})
    return {"role": m.get("role"), "content": content, "name": m.get("name"),
            "tool_calls": calls or None}  # fmt: skip


def prompt_attributes(raw: Any) -> JSON | None:
    """A span's message and tool-definition attributes (decoded values), or None."""
    from tokenaudit.ingest.otel_attrs import any_value  # otel_attrs imports this module

    pairs: list[tuple[Any, Any]] = []
    if isinstance(raw, list):
        pairs = [(a.get("key"), a.get("value")) for a in raw if isinstance(a, dict)]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    out = {
        key: any_value(value)
        for key, value in pairs
        if isinstance(key, str) and key.startswith(_PROMPT_PREFIXES)
        and (key in _PROMPT_ATTRS or _FLAT.fullmatch(key))
    }  # fmt: skip
    return out or None


def span_prompt(attrs: JSON, model: str | None = None) -> Prompt | None:
    """The prompt of a span's message attributes (``prompt_attributes``), or None:
    ``gen_ai.input.messages`` (else OpenLLMetry's ``gen_ai.prompt.N.*``, else
    OpenInference's ``llm.input_messages.N.*``), ``gen_ai.system_instructions`` and the tool
    definitions (``gen_ai.tool.definitions``, ``llm.request.functions.N.*``,
    ``llm.tools.N.tool.json_schema``). The text goes no further than the returned prompt,
    which ``tokens.count`` counts and drops; unreadable values give no prompt."""
    try:
        return _span_prompt(attrs, model)
    except (TypeError, ValueError, AttributeError, RecursionError):
        return None  # a prompt never decides whether a span is a record


def _span_prompt(attrs: JSON, model: str | None) -> Prompt | None:
    direct: JSON = {}
    flat: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in attrs.items():
        if key in _PROMPT_ATTRS:
            direct[key] = value
        elif (m := _FLAT.fullmatch(key)) is not None:
            flat.setdefault(m[1], {}).setdefault(m[2], {})[m[3]] = value
    groups = {name: _ordered({i: _nest(f) for i, f in items.items()})
              for name, items in flat.items()}  # fmt: skip
    messages = load_json(direct.get("gen_ai.input.messages"))
    if messages is None and "gen_ai.prompt" in groups:
        messages = [_openllmetry_message(m) for m in groups["gen_ai.prompt"]]
    if messages is None and "llm.input_messages" in groups:
        messages = [_openinference_message(m) for m in groups["llm.input_messages"]]
    if messages is None:
        messages = load_json(direct.get("gen_ai.prompt"))  # an old single-attribute prompt
    system = load_json(direct.get("gen_ai.system_instructions"))
    if isinstance(system, list):
        system = [convert_part(p) for p in system]
    tools = tool_definitions(direct.get("gen_ai.tool.definitions"))
    tools += tool_definitions(groups.get("llm.request.functions"))
    schemas = [t.get("tool") for t in groups.get("llm.tools", []) if isinstance(t, dict)]
    tools += tool_definitions([t.get("json_schema") for t in schemas if isinstance(t, dict)])
    if messages is None and system is None:
        return None  # tool definitions alone are not the prompt
    return chat_prompt(messages if messages is not None else [], tools, system, model)
