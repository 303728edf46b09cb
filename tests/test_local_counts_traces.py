"""Local token counts of the prompts that trace and proxy logs carry (Langfuse, OpenTelemetry,
LiteLLM): exact tiktoken counts for OpenAI models, tool definitions from every place these
formats keep them, and no prompt text in the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import DATA, HAVE_TIKTOKEN, load, quarantine_rows, usage_rows
from tokenaudit import db
from tokenaudit.ingest import litellm_records

pytestmark = pytest.mark.skipif(not HAVE_TIKTOKEN, reason="tiktoken's o200k_base not present")

CANARY = "CANARY-TEXT-7f3a"
SYSTEM = f"You are a terse travel assistant. {CANARY}"
QUESTION = f"Weather in Lisbon tomorrow? {CANARY}"
CHAT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}
FUNCTION: dict[str, Any] = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": WEATHER_PARAMS,
}
TOOL = {"type": "function", "function": FUNCTION}
FIXTURES = [
    DATA / "ingest" / "langfuse" / "traces.json",
    DATA / "ingest" / "otel" / "prompts-and-tools.jsonl",
    DATA / "ingest" / "litellm" / "prompts.jsonl",
]


def _n(text: str) -> int:
    import tiktoken

    return len(tiktoken.get_encoding("o200k_base").encode(text))


def _chat_tokens(messages: list[dict[str, str]]) -> int:
    """OpenAI's rule for gpt-4o-style models: role and content of each message, 3 tokens
    per message, 3 to prime the reply."""
    return sum(_n(m["role"]) + _n(m["content"]) + 3 for m in messages) + 3


def _tool_tokens() -> int:
    """One function with one property: 7 per function, its ``name:description`` line, 3
    for the property list and 3 per property with its ``name:type:description`` line, 12
    to close the list (description without the final period)."""
    head = _n("get_weather:Get the current weather for a city")
    return 7 + head + 3 + 3 + _n("city:string:City name") + 12


def _only_row(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    assert quarantine_rows(con) == []
    (row,) = usage_rows(con)
    return row


# --- OpenTelemetry --------------------------------------------------------------------------


def _otlp(tmp_path: Path, attrs: dict[str, Any], model: str = "gpt-4o-2024-08-06") -> Path:
    base = {"gen_ai.response.model": model, "gen_ai.usage.output_tokens": 5}
    values = []
    for key, value in {**base, **attrs}.items():
        v = {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}
        values.append({"key": key, "value": value if isinstance(value, dict) else v})
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "chat",
        "startTimeUnixNano": "1764151200000000000",
        "endTimeUnixNano": "1764151201000000000",
        "attributes": values,
    }
    export = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]}
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(export))
    return path


def test_otel_genai_parts_count_exactly(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    messages = [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
    path = _otlp(
        tmp_path,
        {
            "gen_ai.usage.input_tokens": 40,
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SYSTEM}]),
            "gen_ai.input.messages": json.dumps(messages),
        },
    )
    load(con, path, input_format="otel")
    row = _only_row(con)
    assert row["local_input_tokens"] == _chat_tokens(CHAT)
    assert row["local_system_tokens"] == _n("system") + _n(SYSTEM) + 3
    assert (row["local_tokenizer"], row["local_exact"]) == ("o200k_base", True)


def test_otel_openllmetry_flattened_prompt(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    attrs: dict[str, Any] = {"gen_ai.usage.prompt_tokens": 40}
    for i, m in enumerate(CHAT):
        attrs[f"gen_ai.prompt.{i}.role"] = m["role"]
        attrs[f"gen_ai.prompt.{i}.content"] = m["content"]
    attrs["llm.request.functions.0.name"] = "get_weather"
    attrs["llm.request.functions.0.description"] = "Get the current weather for a city."
    attrs["llm.request.functions.0.parameters"] = json.dumps(WEATHER_PARAMS)
    load(con, _otlp(tmp_path, attrs), input_format="otel")
    row = _only_row(con)
    assert row["local_tool_tokens"] == _tool_tokens()
    assert row["local_input_tokens"] == _chat_tokens(CHAT) + _tool_tokens()


def test_otel_openinference_flattened_prompt(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    attrs: dict[str, Any] = {"llm.token_count.prompt": 40, "llm.token_count.completion": 5}
    for i, m in enumerate(CHAT):
        attrs[f"llm.input_messages.{i}.message.role"] = m["role"]
        attrs[f"llm.input_messages.{i}.message.content"] = m["content"]
    attrs["llm.tools.0.tool.json_schema"] = json.dumps(TOOL)
    load(con, _otlp(tmp_path, attrs), input_format="otel")
    row = _only_row(con)
    assert row["local_input_tokens"] == _chat_tokens(CHAT) + _tool_tokens()


def test_otel_span_without_messages_has_no_count(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    load(con, _otlp(tmp_path, {"gen_ai.usage.input_tokens": 40}), input_format="otel")
    row = _only_row(con)
    assert row["local_input_tokens"] is None and row["local_tokenizer"] is None


# --- Langfuse -------------------------------------------------------------------------------


def _batch(tmp_path: Path, body: dict[str, Any]) -> Path:
    create = {
        "id": "gen-1",
        "traceId": "trace-1",
        "name": "answer",
        "startTime": "2026-05-04T10:00:00.000Z",
        "model": "gpt-4o-2024-08-06",
        "usageDetails": {"input": 40, "output": 5, "total": 45},
        **body,
    }
    update = {"id": "gen-1", "traceId": "trace-1", "endTime": "2026-05-04T10:00:01.000Z"}
    events = [
        {"id": "e1", "type": "generation-create", "timestamp": "2026-05-04T10:00:00Z",
         "body": create},
        {"id": "e2", "type": "generation-update", "timestamp": "2026-05-04T10:00:01Z",
         "body": update},
    ]  # fmt: skip
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"batch": events}))
    return path


@pytest.mark.parametrize(
    "value",
    [CHAT, json.dumps(CHAT), {"messages": CHAT}, json.dumps({"messages": CHAT})],
    ids=["list", "json-text", "messages-object", "messages-object-text"],
)
def test_langfuse_generation_input_counts_exactly(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, value: Any
) -> None:
    load(con, _batch(tmp_path, {"input": value}), input_format="langfuse")
    row = _only_row(con)
    assert row["local_input_tokens"] == _chat_tokens(CHAT)
    assert row["local_system_tokens"] == _n("system") + _n(SYSTEM) + 3


@pytest.mark.parametrize(
    "where",
    [
        {"input": {"messages": CHAT, "tools": [TOOL]}},
        {"input": CHAT, "modelParameters": {"tools": json.dumps([TOOL])}},
        {"input": CHAT, "metadata": {"attributes": {"gen_ai.tool.definitions": json.dumps([
            {"type": "function", **FUNCTION}])}}},
        {"input": {"messages": CHAT, "tools": [TOOL]}, "metadata": {"tools": [TOOL]}},
    ],
    ids=["input", "model-parameters", "otel-attribute", "twice-counted-once"],
)  # fmt: skip
def test_langfuse_tool_definitions(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, where: dict[str, Any]
) -> None:
    load(con, _batch(tmp_path, where), input_format="langfuse")
    row = _only_row(con)
    assert row["local_tool_tokens"] == _tool_tokens()
    assert row["local_input_tokens"] == _chat_tokens(CHAT) + _tool_tokens()


def test_langfuse_input_that_is_no_prompt_is_not_counted(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    load(con, _batch(tmp_path, {"input": {"question": QUESTION}}), input_format="langfuse")
    row = _only_row(con)
    assert row["local_input_tokens"] is None
    assert row["input_tokens"] == 40  # the call itself is read as before


# --- LiteLLM --------------------------------------------------------------------------------


def _spend_log(request_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "call_type": "acompletion",
        "spend": 0.0001,
        "prompt_tokens": 40,
        "completion_tokens": 5,
        "startTime": "2026-06-01 09:00:00.000000",
        "model": "gpt-4o-2024-08-06",
        "status": "success",
        "messages": "{}",
        "proxy_server_request": "{}",
        **fields,
    }


def _jsonl(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / "spend.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_litellm_messages_and_request_count_exactly(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    request = {"model": "gpt-4o", "messages": CHAT, "tools": [TOOL]}
    records = [
        _spend_log("a", messages=json.dumps(CHAT)),
        _spend_log("b", proxy_server_request=json.dumps(request)),
        _spend_log("c", messages=CHAT, proxy_server_request=request),  # not double-encoded
    ]
    load(con, _jsonl(tmp_path, records), input_format="litellm")
    rows = {r["request_id"]: r for r in usage_rows(con)}
    assert rows["a"]["local_input_tokens"] == _chat_tokens(CHAT)
    for key in ("b", "c"):
        assert rows[key]["local_tool_tokens"] == _tool_tokens()
        assert rows[key]["local_input_tokens"] == _chat_tokens(CHAT) + _tool_tokens()


def test_litellm_counts_only_records_with_a_prompt(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records without a logged prompt never reach the Python pass."""
    seen: list[str | None] = []
    real = litellm_records.prompt_of

    def spy(call_type: str | None, messages: str | None, *rest: Any) -> Any:
        seen.append(messages)
        return real(call_type, messages, *rest)

    monkeypatch.setattr(litellm_records, "prompt_of", spy)
    records = [_spend_log(f"r{i}") for i in range(50)]
    records[7]["messages"] = json.dumps(CHAT)
    records[9]["messages"] = "[]"
    load(con, _jsonl(tmp_path, records), input_format="litellm")
    assert seen == [json.dumps(CHAT)]
    counted = [r["request_id"] for r in usage_rows(con) if r["local_input_tokens"] is not None]
    assert counted == ["r7"]


def test_litellm_unreadable_messages_keep_the_record(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    records = [_spend_log("a", messages='[{"role": "user", "content": "unterminated')]
    load(con, _jsonl(tmp_path, records), input_format="litellm")
    row = _only_row(con)
    assert row["local_input_tokens"] is None and row["input_tokens"] == 40


# --- privacy --------------------------------------------------------------------------------


def test_no_prompt_text_in_the_database(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    with db.connect(path) as con:
        results = load(con, *FIXTURES)
        assert [r.status for r in results] == ["loaded"] * len(FIXTURES)
        counted = con.execute(
            "SELECT count(*) FROM usage_events WHERE local_input_tokens > 0"
        ).fetchall()[0][0]
        assert counted >= 15  # the fixtures' prompts were read and counted
        tags = con.execute("SELECT tags::VARCHAR FROM usage_events").fetchall()
        assert not any(CANARY in (t or "") for (t,) in tags)
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'JSON')"
        ).fetchall()
        assert ("usage_events", "local_note") in columns
        for table, column in columns:
            hits = con.execute(
                f'SELECT count(*) FROM "{table}" WHERE contains("{column}"::VARCHAR, ?)',
                [CANARY],
            ).fetchall()[0][0]
            assert hits == 0, f"{table}.{column}"
    data = path.read_bytes()
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        data += wal.read_bytes()
    assert CANARY.encode() not in data
