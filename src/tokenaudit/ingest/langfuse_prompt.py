"""The prompt of a Langfuse model call, for local token counts: what it is counted from,
read off each copy of an observation (``prompt_fields``), and the prompt of a merged
observation (``prompt_of``): its input, tool definitions and instructions.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from tokenaudit.ingest.langfuse_readers import JSON, obj
from tokenaudit.tokens.prompt import MESSAGE, Prompt
from tokenaudit.tokens.shapes import chat_prompt, load_json, tool_definitions

# Tool definitions in metadata: OTel attributes as Langfuse keeps them (Vercel AI SDK,
# OTel GenAI, pydantic-ai's model_request_parameters, OpenInference's llm.tools.N).
_TOOL_ATTRS = ("ai.prompt.tools", "gen_ai.tool.definitions")
_LLM_TOOL = re.compile(r"llm\.tools\.\d+\.tool\.json_schema")


def _metadata_tools(md: JSON) -> list[Any]:
    attrs = obj(md.get("attributes"))
    tools = [*tool_definitions(md.get("tools"))]
    for key in _TOOL_ATTRS:
        tools += tool_definitions(attrs.get(key))
    params = load_json(attrs.get("model_request_parameters"))
    if isinstance(params, dict):
        tools += tool_definitions(params.get("function_tools"))
    indexed = sorted((k for k in attrs if _LLM_TOOL.fullmatch(k)), key=lambda k: int(k[10:-17]))
    return tools + tool_definitions([attrs[k] for k in indexed])


def prompt_fields(body: JSON, md: JSON) -> JSON:
    """What a model call's prompt is counted from, read off one copy of an observation
    before its text is dropped: ``_input`` (the observation's ``input``), ``_tools`` (its
    ``toolDefinitions``, ``modelParameters.tools`` / ``functions`` and the tools in its
    metadata) and ``_instructions`` (``modelParameters.instructions``)."""
    out: JSON = {}
    if body.get("input") is not None and not isinstance(body["input"], int | Decimal):
        out["_input"] = body["input"]
    params = obj(body.get("modelParameters"))
    tools = tool_definitions(body.get("toolDefinitions"))
    tools += tool_definitions(params.get("tools") or params.get("functions"))
    tools += _metadata_tools(md)
    if tools:
        out["_tools"] = tools
    if isinstance(params.get("instructions"), str):
        out["_instructions"] = params["instructions"]
    return out


def _plain(value: Any) -> Any:
    """JSON as ``json.dumps`` takes it (numbers were read as Decimal)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _split_input(value: Any) -> tuple[Any, Any, list[Any]] | None:
    """(messages, system, tools) of a generation's input, or None when it is no prompt
    (an application's own arguments, say)."""
    if isinstance(value, list | str):
        return value, None, []
    if not isinstance(value, dict):
        return None
    if "role" in value:
        return [value], None, []
    system = value.get("system", value.get("instructions"))
    tools = tool_definitions(value.get("tools") or value.get("functions"))
    for key in ("messages", "input", "prompt"):
        if isinstance(value.get(key), list | str):
            return value[key], system, tools
    return None


def prompt_of(o: JSON, model: str | None) -> Prompt | None:
    """The prompt of a merged observation (its input, tools and instructions), or None."""
    raw, tools = o.get("_input"), list(o.get("_tools") or [])
    if raw is None:  # tools alone are not the prompt
        return None
    value = _plain(load_json(raw))
    if str(o.get("type") or "").upper() == "EMBEDDING":  # texts to embed: no chat format
        p = Prompt(model=model, chat=False)
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                p.add(text, MESSAGE)
        return p
    parts = _split_input(value)
    if parts is None:
        return None
    messages, system, inline = parts
    seen: set[str] = set()
    unique = []
    for t in [*inline, *tools]:  # Langfuse may hold a tool in the input and in metadata
        name = t.get("name") if isinstance(t, dict) else None
        if name not in seen:
            unique.append(t)
            if isinstance(name, str):
                seen.add(name)
    if system is None:
        system = o.get("_instructions")
    if not messages and system is None and not unique:
        return None
    return chat_prompt(messages, unique, system, model)
