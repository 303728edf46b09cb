"""Recorded exchanges for token reconciliation tests (openai-logs format), built in code."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

WORDS = [
    "budget",
    "invoice",
    "tenant",
    "latency",
    "cache",
    "prompt",
    "gateway",
    "workflow",
    "rollout",
    "quarterly",
    "summary",
    "customer",
    "ticket",
    "escalation",
    "refund",
    "policy",
    "shipment",
    "warehouse",
    "forecast",
    "anomaly",
    "retry",
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "for",
    "with",
    "on",
    "by",
    "from",
    "is",
    "was",
    "be",
    "are",
    "this",
    "that",
    "it",
    "as",
    "at",
    "or",
    "an",
]


def text(rng: random.Random, words: int) -> str:
    out: list[str] = []
    for i in range(words):
        w = rng.choice(WORDS)
        if rng.random() < 0.05:
            w = f"{w}-{rng.randint(10, 99999)}"
        out.append(w.capitalize() if i == 0 or out[-1].endswith(".") else w)
        if rng.random() < 0.08:
            out[-1] += "."
    return " ".join(out) + "."


def anthropic(
    request_id: str,
    model: str,
    messages: list[dict[str, Any]],
    *,
    input_tokens: int,
    cache_read: int = 0,
    system: Any = None,
    ts: int = 1763290000,
    workflow: str = "support",
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": 512, "messages": messages}
    if system is not None:
        body["system"] = system
    body["metadata"] = {"user_id": "u-1", "workflow": workflow}
    return {
        "request": {
            "method": "POST",
            "uri": "https://api.anthropic.com/v1/messages",
            "body": body,
        },
        "response": {
            "status": 200,
            "date": _http_date(ts),
            "request_id": request_id,
            "body": {
                "id": "msg_" + request_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": "ok"}],
                "usage": {
                    "input_tokens": input_tokens,
                    "cache_read_input_tokens": cache_read,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": 20,
                },
            },
        },
    }


def openai(
    request_id: str,
    model: str,
    messages: list[dict[str, Any]],
    *,
    prompt_tokens: int,
    cached: int = 0,
    ts: int = 1763290000,
    workflow: str = "support",
) -> dict[str, Any]:
    return {
        "request": {
            "method": "POST",
            "uri": "https://api.openai.com/v1/chat/completions",
            "body": {"model": model, "messages": messages, "metadata": {"workflow": workflow}},
        },
        "response": {
            "status": 200,
            "request_id": request_id,
            "body": {
                "id": "chatcmpl-" + request_id,
                "object": "chat.completion",
                "created": ts,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": 20,
                    "total_tokens": prompt_tokens + 20,
                    "prompt_tokens_details": {"cached_tokens": cached},
                },
            },
        },
    }


def counted(value: Any, model: str) -> int:
    """The local count of a request body or a message list, as ingest makes it."""
    from tokenaudit.tokens.count import count
    from tokenaudit.tokens.prompt import from_messages, from_request

    p = from_request(value) if isinstance(value, dict) else from_messages(value)
    assert p is not None
    return count([(p, model)])[0].tokens


def _http_date(ts: int) -> str:
    import email.utils

    return email.utils.formatdate(ts, usegmt=True)


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path
