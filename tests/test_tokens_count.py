"""Local token counts: exact on recorded OpenAI exchanges, offline fallback, privacy."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from tests.conftest import HAVE_TIKTOKEN, SAMPLES, load
from tests.tokens_fake import anthropic, counted, openai, write
from tokenaudit import db
from tokenaudit.cli import app
from tokenaudit.tokens.count import count
from tokenaudit.tokens.encodings import CHARS, REFERENCE, Registry
from tokenaudit.tokens.prompt import from_messages, from_request

needs_tiktoken = pytest.mark.skipif(not HAVE_TIKTOKEN, reason="tiktoken files not available")
CASSETTES = SAMPLES / "traces" / "openllmetry-cassettes" / "decoded"

# OpenAI cookbook "How to count tokens with tiktoken", section 6: names and several system
# messages; the API reported 129 prompt tokens for gpt-3.5-turbo / gpt-4, 124 for gpt-4o.
JARGON = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that "
     "translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user",
     "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant",
     "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more "
     "bandwidth to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant",
     "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean "
     "for the client deliverable."},
]  # fmt: skip


@needs_tiktoken
@pytest.mark.parametrize(
    ("model", "published"),
    [("gpt-3.5-turbo", 129), ("gpt-4-0613", 129), ("gpt-4", 129), ("gpt-4o", 124),
     ("gpt-4o-mini", 124)],
)  # fmt: skip
def test_published_cookbook_counts(model: str, published: int) -> None:
    p = from_messages(JARGON)
    assert p is not None
    (c,) = count([(p, model)])
    assert c.tokens == published
    assert c.exact


@needs_tiktoken
@pytest.mark.skipif(not CASSETTES.is_dir(), reason="shared samples not available")
def test_recorded_openai_exchanges_count_exactly(con: duckdb.DuckDBPyConnection) -> None:
    """Plain text chat requests to api.openai.com: local count == provider's prompt_tokens."""
    files = sorted(CASSETTES.glob("openai__*.jsonl"))
    load(con, *files)
    rows = con.execute(
        "SELECT e.model, e.input_tokens + e.cache_read_tokens AS reported, e.local_input_tokens,"
        " e.local_exact, f.path FROM usage_events e JOIN files f USING (file_id)"
        " ORDER BY f.path, e.line_no"
    ).fetchall()
    real = [r for r in rows if "chat_streaming" not in r[4]]  # that one was a local mock
    assert len(real) == 5  # 3 Chat Completions, 2 Responses API calls of gpt-5-nano
    for model, reported, local, exact, _ in real:
        assert exact, model
        assert local == reported, model
    # Recorded against a local mock server: its "prompt_tokens" is not OpenAI's count.
    (mock,) = [r for r in rows if "chat_streaming" in r[4]]
    assert mock[2] != mock[1]


@needs_tiktoken
def test_images_are_not_countable_and_not_zero() -> None:
    msgs = [
        {"role": "user", "content": [
            {"type": "text", "text": "Describe both."},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        ]},
    ]  # fmt: skip
    p = from_messages(msgs)
    assert p is not None
    (c,) = count([(p, "gpt-4o")])
    assert c.uncountable == 2
    assert c.note == "audio:1,image:1"
    text_only = counted([{"role": "user", "content": "Describe both."}], "gpt-4o")
    assert c.tokens == text_only  # the text is counted; the parts are flagged


@needs_tiktoken
def test_models_without_public_tokenizer_use_the_reference_encoding() -> None:
    p = from_request({"model": "claude-sonnet-4-5", "system": "Be brief.",
                      "messages": [{"role": "user", "content": "Hello there"}]})  # fmt: skip
    assert p is not None
    (c,) = count([(p, "claude-sonnet-4-5")])
    assert (c.tokenizer, c.exact) == (REFERENCE, False)
    assert c.system > 0


def test_unavailable_encoding_falls_back_once_without_crashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    reg = Registry()
    p = from_messages([{"role": "user", "content": "x" * 400}])
    assert p is not None
    first = count([(p, "gpt-4o"), (p, "claude-3-haiku"), (p, "gpt-4")], reg)
    assert {c.tokenizer for c in first} == {CHARS}
    assert not any(c.exact for c in first)
    assert first[0].tokens == 100 + 1 + 3 + 3  # 400 chars / 4, role, per message, priming
    notices = reg.take_notices()
    assert len(notices) == 2  # o200k_base and cl100k_base, each said once
    assert all("not available offline" in n for n in notices)
    count([(p, "gpt-4o")], reg)
    assert reg.take_notices() == []


def test_cli_ingest_without_tiktoken_files_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenaudit.tokens.encodings import REGISTRY

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    REGISTRY.reset()
    msgs = [{"role": "user", "content": "Hello"}]
    path = write(tmp_path / "x.jsonl", [openai(f"r{i}", "gpt-4o", msgs, prompt_tokens=8)
                                          for i in range(3)])  # fmt: skip
    out = CliRunner().invoke(app, ["ingest", "--db", str(tmp_path / "t.duckdb"), str(path)])
    assert out.exit_code == 0, out.output
    monkeypatch.undo()
    REGISTRY.reset()  # the next tests load the real files again
    assert out.stderr.count("not available offline") == 1
    assert "Traceback" not in out.output


def test_hugging_face_tokenizer_for_a_model_pattern(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers

    vocab = {"[UNK]": 0, "hello": 1, "world": 2, "user": 3, "system": 4}
    tok = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    reg = Registry()
    reg.configure({"llama-3*": path})
    p = from_messages([{"role": "user", "content": "hello world hello"}])
    assert p is not None
    (c,) = count([(p, "llama-3.1-8b-instruct")], reg)
    assert c.tokenizer == "hf:llama-3*"
    assert c.exact
    assert c.tokens == 1 + 3 + 3 + 3  # "user", 3 words, per message, priming
    (other,) = count([(p, "mistral-large")], reg)
    assert other.tokenizer != "hf:llama-3*"


def test_no_prompt_text_reaches_the_database_file(tmp_path: Path) -> None:
    canary = "CANARY-7f3a9c-prompt-text"
    msgs = [
        {"role": "system", "content": f"You are {canary} the assistant."},
        {"role": "user", "content": f"Please repeat {canary}", "name": f"n{canary}"},
    ]
    records = [
        openai("p1", "gpt-4o-mini", msgs, prompt_tokens=30),
        anthropic("p2", "claude-3-5-haiku", msgs[1:], input_tokens=25,
                  system=[{"type": "text", "text": canary}]),
    ]  # fmt: skip
    records[0]["request"]["body"]["tools"] = [
        {"type": "function", "function": {"name": "f", "description": canary,
                                          "parameters": {"type": "object", "properties": {}}}}
    ]  # fmt: skip
    records.append(
        {"request": {"method": "POST", "uri": "https://api.openai.com/v1/responses",
                     "body": {"model": "gpt-5-nano", "input": canary, "instructions": canary}},
         "response": {"status": 200, "request_id": "p3",
                      "body": {"id": "resp_1", "object": "response", "created_at": 1763290000,
                               "model": "gpt-5-nano", "status": "completed",
                               "usage": {"input_tokens": 20, "output_tokens": 5}}}}
    )  # fmt: skip
    path = write(tmp_path / "calls.jsonl", records)
    dbfile = tmp_path / "canary.duckdb"
    with db.connect(dbfile) as con:
        (result,) = load(con, path)
        assert result.rows_loaded == 3
        assert con.execute(
            "SELECT count(*) FROM usage_events WHERE local_input_tokens > 0"
        ).fetchall() == [(3,)]
        for (table,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary"
        ).fetchall():
            dump = json.dumps(con.execute(f'SELECT * FROM "{table}"').fetchall(), default=str)
            assert canary not in dump, table
        wal = Path(str(dbfile) + ".wal")
        for f in (dbfile, wal):
            if f.exists():
                assert canary.encode() not in f.read_bytes(), f.name
    assert canary.encode() not in dbfile.read_bytes()
