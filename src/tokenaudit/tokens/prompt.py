"""A request's prompt reduced to what counting needs: its text pieces and its shape.

``from_request`` reads an OpenAI Chat Completions, Responses or legacy Completions
request body, or an Anthropic Messages request body; ``from_messages`` reads a bare list
of chat messages (as Langfuse, LiteLLM and OpenTelemetry spans log them). The text is
kept only until it is counted (``tokens.count``); nothing here is stored.

Counting follows OpenAI's published rules (the cookbook "How to count tokens with
tiktoken"): every value of a message (role, content, name) is encoded, plus a fixed
overhead per message and per name and the reply priming; tool definitions are rendered
as ``name:description`` and ``property:type:description`` lines plus fixed overheads.
Images, audio, files and server-side tools are not countable locally: they are counted
as such (``uncountable``), never as zero tokens of text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

MESSAGE, SYSTEM, TOOL = 0, 1, 2
SYSTEM_ROLES = frozenset({"system", "developer"})
_TRUNCATED = re.compile(r"(\[truncated\]|\(truncated\)|\.\.\.truncated|…\s*truncated\W*)\s*$", re.I)
_KIND = re.compile(r"[^A-Za-z0-9_.:\-]")
_IMAGE = frozenset({"image_url", "input_image", "image", "image_file"})
_AUDIO = frozenset({"input_audio", "audio"})
_FILE = frozenset({"file", "input_file", "document"})
_TEXT = frozenset({"text", "input_text", "output_text", "refusal"})


@dataclass(slots=True)
class Prompt:
    """Text pieces with their kind, and the counts the chat-format overheads depend on."""

    model: str | None = None
    texts: list[str] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    messages: int = 0
    system_messages: int = 0
    names: int = 0
    functions: int = 0
    functions_with_properties: int = 0
    properties: int = 0
    enums: int = 0
    enum_items: int = 0
    chat: bool = True  # a chat prompt (reply priming); False for a plain completion prompt
    uncountable: dict[str, int] = field(default_factory=dict)
    truncated: bool = False

    def add(self, text: Any, kind: int) -> None:
        if not isinstance(text, str):
            if text is None or isinstance(text, bool):
                return
            text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
        if text:
            self.texts.append(text)
            self.kinds.append(kind)
            if not self.truncated and _TRUNCATED.search(text[-40:]):
                self.truncated = True

    def skip(self, what: str) -> None:
        what = _KIND.sub("", what)[:30] or "part"  # a part's type, never free text
        self.uncountable[what] = self.uncountable.get(what, 0) + 1

    @property
    def has_system(self) -> bool:
        return SYSTEM in self.kinds

    @property
    def has_tool_use(self) -> bool:
        """Messages that call tools or return their results (so tools were defined)."""
        return self.functions == 0 and "tool_use" in self.uncountable

    def note(self) -> str | None:
        parts = [f"{k}:{v}" for k, v in sorted(self.uncountable.items()) if k != "tool_use"]
        if self.truncated:
            parts.append("truncated")
        if self.has_tool_use:
            parts.append("tool calls without tool definitions")
        return ",".join(parts) or None


def _content(p: Prompt, content: Any, kind: int) -> None:
    if isinstance(content, str):
        p.add(content, kind)
        return
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        p.add(content, kind)
        return
    for part in content:
        if isinstance(part, str):
            p.add(part, kind)
            continue
        if not isinstance(part, dict):
            continue
        t = part.get("type")
        if t in _TEXT or (t is None and "text" in part):
            p.add(part.get("text") if t != "refusal" else part.get("refusal"), kind)
        elif t in _IMAGE:
            p.skip("image")
        elif t in _AUDIO:
            p.skip("audio")
        elif t in _FILE:
            p.skip("file")
        elif t == "tool_use":
            p.add(part.get("name"), kind)
            p.add(part.get("input"), kind)
            p.uncountable["tool_use"] = p.uncountable.get("tool_use", 0) + 1
        elif t == "tool_result":
            _content(p, part.get("content"), kind)
            p.uncountable["tool_use"] = p.uncountable.get("tool_use", 0) + 1
        elif t in ("thinking", "redacted_thinking", "reasoning"):
            p.add(part.get("thinking"), kind)
            if t != "thinking":
                p.skip("reasoning")
        elif "text" in part:
            p.add(part.get("text"), kind)
        else:
            p.skip(str(t or "part")[:20])


def _message(p: Prompt, m: Any) -> None:
    if isinstance(m, str):
        m = {"role": "user", "content": m}
    if not isinstance(m, dict):
        return
    t = m.get("type")
    if t in ("function_call", "custom_tool_call"):  # Responses API items
        p.messages += 1
        p.add(m.get("name"), MESSAGE)
        p.add(m.get("arguments", m.get("input")), MESSAGE)
        p.uncountable["tool_use"] = p.uncountable.get("tool_use", 0) + 1
        return
    if t in ("function_call_output", "custom_tool_call_output"):
        p.messages += 1
        _content(p, m.get("output"), MESSAGE)
        p.uncountable["tool_use"] = p.uncountable.get("tool_use", 0) + 1
        return
    if t == "reasoning":
        p.skip("reasoning")
        return
    role = m.get("role")
    kind = SYSTEM if role in SYSTEM_ROLES else MESSAGE
    p.messages += 1
    p.system_messages += kind == SYSTEM
    p.add(role if isinstance(role, str) else "user", kind)
    if isinstance(m.get("name"), str) and m["name"]:
        p.add(m["name"], kind)
        p.names += 1
    _content(p, m.get("content"), kind)
    for call in m.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            p.add(fn.get("name"), kind)
            p.add(fn.get("arguments"), kind)
            p.uncountable["tool_use"] = p.uncountable.get("tool_use", 0) + 1
    fc = m.get("function_call")
    if isinstance(fc, dict):
        p.add(fc.get("name"), kind)
        p.add(fc.get("arguments"), kind)
    if role in ("tool", "function"):
        p.uncountable["tool_use"] = p.uncountable.get("tool_use", 0) + 1


def _strip_dot(text: Any) -> str:
    s = text if isinstance(text, str) else ""
    return s[:-1] if s.endswith(".") else s


def _tool(p: Prompt, tool: Any) -> None:
    if not isinstance(tool, dict):
        return
    inner = tool.get("function")
    fn: dict[str, Any] = inner if isinstance(inner, dict) else tool
    name = fn.get("name")
    if not isinstance(name, str):
        p.skip("tool:" + str(tool.get("type") or "unknown")[:30])  # a server-side tool
        return
    params = fn.get("parameters", fn.get("input_schema"))
    props = params.get("properties") if isinstance(params, dict) else None
    p.functions += 1
    p.add(f"{name}:{_strip_dot(fn.get('description'))}", TOOL)
    if not isinstance(props, dict) or not props:
        return
    p.functions_with_properties += 1
    for key, spec in props.items():
        p.properties += 1
        spec = spec if isinstance(spec, dict) else {}
        enum = spec.get("enum")
        if isinstance(enum, list):
            p.enums += 1
            for item in enum:
                p.enum_items += 1
                p.add(str(item), TOOL)
        kind = spec.get("type")
        kind = "|".join(map(str, kind)) if isinstance(kind, list) else str(kind or "")
        p.add(f"{key}:{kind}:{_strip_dot(spec.get('description'))}", TOOL)


def from_messages(
    messages: Any, tools: Any = None, system: Any = None, model: str | None = None
) -> Prompt | None:
    """A chat prompt from a list of messages (plus separate tools / system prompt)."""
    if not isinstance(messages, list) and not isinstance(messages, str) and system is None:
        return None
    p = Prompt(model=model)
    if system:
        p.messages += 1
        p.system_messages += 1
        p.add("system", SYSTEM)
        _content(p, system, SYSTEM)
    for m in messages if isinstance(messages, list) else [messages]:
        _message(p, m)
    for t in tools if isinstance(tools, list) else []:
        _tool(p, t)
    return p


def from_request(body: Any) -> Prompt | None:
    """The prompt of a request body (chat, Responses, Anthropic or completions); None if none."""
    if not isinstance(body, dict):
        return None
    model = body.get("model") if isinstance(body.get("model"), str) else None
    tools = body.get("tools") or body.get("functions")
    if "messages" in body or "input" in body:
        system = body.get("system", body.get("instructions"))
        return from_messages(body.get("messages", body.get("input")), tools, system, model)
    if isinstance(body.get("prompt"), str | list):
        p = Prompt(model=model, chat=False)
        prompt = body["prompt"]
        for text in prompt if isinstance(prompt, list) else [prompt]:
            p.add(text, MESSAGE)
        return p
    return None
