"""Message and tool shapes of trace formats, converted to what ``tokens.prompt`` reads.

OTel GenAI ``parts`` (``content`` text, ``tool_call``, ``tool_call_response``,
``blob``/``uri``/``file``), the Vercel AI SDK's ``tool-call``/``tool-result`` parts,
LangChain tool calls (``args``, ``additional_kwargs``) and tools logged as ``tool``
messages, and tool definitions given as lists, JSON text or Langfuse's ``toolDefinitions``
map. Used by the OpenTelemetry and Langfuse ingesters; no text outlives the prompt.
"""

from __future__ import annotations

import json
from typing import Any

from tokenaudit.tokens.prompt import Prompt, from_messages

JSON = dict[str, Any]
_MODALITY = {"image": "image", "audio": "input_audio", "video": "file"}
_SCHEMA_KEYS = ("parameters", "input_schema", "inputSchema", "parameters_json_schema")


def load_json(value: Any) -> Any:
    """``value``, or what it encodes when it is JSON text of an object or an array."""
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def _dumped(value: Any) -> Any:
    return value if isinstance(value, str) or value is None else json.dumps(value, default=str)


def convert_part(part: Any) -> Any:
    """A content part as ``tokens.prompt`` reads it: OTel GenAI parts (``content`` text,
    ``tool_call``, ``tool_call_response``, ``blob``/``uri``/``file``) and the Vercel AI SDK's
    ``tool-call``/``tool-result`` parts become their OpenAI/Anthropic equivalents."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "text" and "text" not in part:
        return {"type": "text", "text": part.get("content")}
    if kind in ("tool_call", "tool-call", "server_tool_call"):
        args = next((part[k] for k in ("arguments", "input", "args") if k in part), None)
        return {"type": "tool_use", "name": part.get("name") or part.get("toolName"),
                "input": _dumped(args)}  # fmt: skip
    if kind in ("tool_call_response", "tool-result", "server_tool_call_response"):
        out = next((part[k] for k in ("response", "output", "result") if k in part), None)
        return {"type": "tool_result", "content": _dumped(out)}
    if kind in ("blob", "uri", "file") and "text" not in part:
        return {"type": _MODALITY.get(str(part.get("modality")), "file")}
    return part


def _tool_call(call: Any) -> Any:
    """A LangChain tool call (``name``, ``args``) in the OpenAI shape."""
    if isinstance(call, dict) and "function" not in call and isinstance(call.get("name"), str):
        args = call.get("args", call.get("arguments"))
        return {"function": {"name": call["name"], "arguments": _dumped(args)}}
    return call


def _is_tool_definition(m: JSON) -> bool:
    """Langfuse's LangChain handler logs the tools offered as ``tool`` messages."""
    content = m.get("content")
    return (
        m.get("role") == "tool"
        and isinstance(content, dict)
        and content.get("type") == "function"
        and isinstance(content.get("function"), dict)
    )


def chat_messages(messages: Any) -> tuple[Any, list[Any]]:
    """(messages in the OpenAI/Anthropic shapes ``tokens.prompt`` reads, tool definitions
    found among them). Converts OTel GenAI ``parts``, Vercel AI SDK tool parts, LangChain
    ``additional_kwargs`` and ``args`` tool calls; anything else passes unchanged."""
    if not isinstance(messages, list):
        return messages, []
    out: list[Any] = []
    tools: list[Any] = []
    for m in messages:
        if not isinstance(m, dict):
            out.append(m)
            continue
        if _is_tool_definition(m):
            tools.append(m["content"])
            continue
        msg = dict(m)
        content = (
            msg.pop("parts") if "parts" in msg and "content" not in msg else msg.get("content")
        )
        msg["content"] = (
            [convert_part(p) for p in content] if isinstance(content, list) else content
        )
        kwargs = msg.get("additional_kwargs")
        calls = msg.get("tool_calls") or (
            kwargs.get("tool_calls") if isinstance(kwargs, dict) else None
        )
        if isinstance(calls, list):
            msg["tool_calls"] = [_tool_call(c) for c in calls]
        out.append(msg)
    return out, tools


def tool_definitions(value: Any) -> list[Any]:
    """Tool definitions as ``tokens.prompt`` reads them, from a list (objects or JSON text),
    JSON text of one, or Langfuse's ``toolDefinitions`` map (name -> JSON text of
    ``{"description", "parameters"}``); parameters given as JSON text or under
    ``inputSchema`` / ``parameters_json_schema`` are read too."""
    value = load_json(value)
    if isinstance(value, dict):
        if isinstance(value.get("function"), dict) or isinstance(value.get("name"), str):
            value = [value]
        else:  # Langfuse's map
            value = [
                {"name": k, **d} for k, v in value.items() if isinstance(d := load_json(v), dict)
            ]
    out: list[Any] = []
    for tool in value if isinstance(value, list) else []:
        tool = load_json(tool)
        if not isinstance(tool, dict):
            continue
        inner = tool.get("function")
        fn: JSON = inner if isinstance(inner, dict) else tool
        if not isinstance(fn.get("name"), str):
            out.append(tool)  # a server-side tool (web search ...): noted as not countable
            continue
        params = next((fn[k] for k in _SCHEMA_KEYS if fn.get(k) is not None), None)
        desc = fn.get("description")
        out.append({"name": fn["name"], "description": desc if isinstance(desc, str) else None,
                    "parameters": load_json(params)})  # fmt: skip
    return out


def chat_prompt(
    messages: Any, tools: list[Any] | None = None, system: Any = None, model: str | None = None
) -> Prompt | None:
    """``tokens.prompt.from_messages`` after the conversions of ``chat_messages``."""
    msgs, found = chat_messages(messages)
    tools = [*(tools or []), *tool_definitions(found)]
    return from_messages(msgs, tools or None, system or None, model)
