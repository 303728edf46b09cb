"""`ingest --map`: in-house JSON lines and CSV logs read through a mapping file: nested
paths, token conventions, cost units, time formats, strict validation of the mapping
(exit 2 naming the key) and the command line."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from tests.conftest import DATA, quarantine_rows, usage_rows
from tokenaudit import db
from tokenaudit.cli import app
from tokenaudit.errors import ConfigError, InputError
from tokenaudit.ingest import BY_NAME, IngestOptions, ingest
from tokenaudit.ingest.custom_map import CustomMapIngester, ingester, json_path, load_mapping
from tokenaudit.ingest.load import FileResult
from tokenaudit.ingest.source import open_source
from tokenaudit.pricing import PriceSettings

MAPPINGS = DATA / "mappings"
runner = CliRunner()


def load_mapped(con: duckdb.DuckDBPyConnection, mapping: Path, *paths: Path) -> list[FileResult]:
    opts = IngestOptions(None, PriceSettings(None), {}, ingester(mapping))
    return ingest(con, list(paths), opts)


def _toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _tokens(row: dict[str, Any]) -> tuple[int, ...]:
    return (
        row["input_tokens"],
        row["cache_read_tokens"],
        row["cache_write_tokens"],
        row["cache_write_1h_tokens"],
        row["output_tokens"],
        row["reasoning_tokens"],
    )


MINIMAL = """
[file]
type = "jsonl"
[fields]
ts = "t"
model = "m"
[tokens]
input = "in"
output = "out"
"""


# --- JSON lines with nested fields ------------------------------------------------------------


def test_nested_jsonl_with_the_example_mapping(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load_mapped(con, MAPPINGS / "inhouse.toml", MAPPINGS / "inhouse.jsonl")
    assert result.format == "custom"
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (8, 4, 4)
    rows = {r["request_id"]: r for r in usage_rows(con)}
    first = rows["evt-0001"]
    assert first["ts"] == "2026-03-02T10:00:03.120000"  # epoch_ms 1772445603120
    assert first["model"] == "gpt-4o-mini-2024-07-18"  # the first of two paths that has one
    assert (first["provider"], first["project"]) == ("openai", "helpdesk")  # path, constant
    assert (first["workflow"], first["team"], first["tenant"], first["user"]) == (
        "ticket-summary",
        "support",
        "acme",
        "u-17",
    )
    assert (first["trace_id"], first["span_id"], first["session_id"]) == ("t-9", "s-1", "c-3")
    assert (first["agent"], first["prompt_version"], first["environment"]) == (
        "summarizer",
        "v3",
        "prod",
    )
    # input_includes_cache_read: prompt_tokens 1149 counts the 1024 cached tokens.
    assert _tokens(first) == (125, 1024, 0, 0, 353, 0)
    assert first["reported_cost_usd"] == "0.000307350000"  # 0.030735 cents
    assert (first["status"], first["http_status"], first["latency_ms"]) == ("ok", 200, 812.0)
    assert first["outcome"] == "accepted"
    assert first["api_key_last4"] == "7Q2x"
    assert first["tags"] == {"variant": "B", "region": "eu-west-1"}
    reasoning = rows["evt-0002"]
    assert _tokens(reasoning) == (800, 0, 0, 0, 500, 320)  # output_includes_reasoning
    assert reasoning["outcome"] == "rejected"
    assert rows["evt-0003"]["status"] == "error" and rows["evt-0004"]["attempt"] == 2
    # A blank line sits at line 3: every later line keeps its number.
    assert quarantine_rows(con) == [
        {"line_no": 6, "reason": "invalid event.time: not-a-time"},
        {
            "line_no": 7,
            "reason": "llm.usage.prompt_tokens (100) is less than the cache counts it "
            "includes (read 128, write 0): cannot derive uncached input",
        },
        {"line_no": 8, "reason": "missing llm.response_model or llm.model"},
        {"line_no": 9, "reason": "invalid JSON (malformed or truncated record)"},
    ]


def test_no_raw_text_or_key_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    with db.connect(path) as con:
        load_mapped(con, MAPPINGS / "inhouse.toml", MAPPINGS / "inhouse.jsonl")
        con.execute("CHECKPOINT")
    data = path.read_bytes()
    assert b"CANARY" not in data and b"sk-proj" not in data


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("", (1000, 200, 50, 0, 300, 40)),  # defaults: cache apart, output includes reasoning
        (
            "input_includes_cache_read = true\ninput_includes_cache_write = true",
            (750, 200, 50, 0, 300, 40),
        ),
        ("output_includes_reasoning = false", (1000, 200, 50, 0, 340, 40)),
    ],
)
def test_token_conventions(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, flags: str, expected: tuple[int, ...]
) -> None:
    mapping = _toml(
        tmp_path / "m.toml",
        MINIMAL + 'cache_read = "cr"\ncache_write = "cw"\nreasoning = "rs"\n' + flags + "\n",
    )
    data = _jsonl(
        tmp_path / "d.jsonl",
        [
            {
                "t": "2026-01-05T10:00:00Z",
                "m": "gpt-4o",
                "in": 1000,
                "out": 300,
                "cr": 200,
                "cw": 50,
                "rs": 40,
            }
        ],
    )
    load_mapped(con, mapping, data)
    (row,) = usage_rows(con)
    assert _tokens(row) == expected


@pytest.mark.parametrize(
    ("unit", "raw", "usd"),
    [
        ("usd", "0.00123", "0.001230000000"),
        ("usd", "1.5e-7", "0.000000150000"),
        ("cents", "12.5", "0.125000000000"),
        ("cents", "0.0000000001", "0.000000000001"),
        ("micro-usd", "2500", "0.002500000000"),
        ("nano-usd", "18446744073709551615", "18446744073.709551615000"),
    ],
)
def test_cost_units_convert_exactly(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, unit: str, raw: str, usd: str
) -> None:
    mapping = _toml(tmp_path / "m.toml", MINIMAL + f'[cost]\npath = "c"\nunit = "{unit}"\n')
    data = tmp_path / "d.jsonl"
    data.write_text('{"t": "2026-01-05T10:00:00Z", "m": "x-model", "c": ' + raw + "}\n")
    load_mapped(con, mapping, data)
    (row,) = usage_rows(con)
    assert Decimal(row["reported_cost_usd"]) == Decimal(usd)
    assert Decimal(row["reported_cost_usd"]) == Decimal(raw).scaleb(
        -{"usd": 0, "cents": 2, "micro-usd": 6, "nano-usd": 9}[unit]
    )


def test_cost_that_would_round_is_quarantined(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    mapping = _toml(tmp_path / "m.toml", MINIMAL + '[cost]\npath = "c"\nunit = "cents"\n')
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"t": "2026-01-05T10:00:00Z", "m": "x", "c": "0.00000000001"}\n'
        '{"t": "2026-01-05T10:00:00Z", "m": "x", "c": "12,5"}\n'
    )
    load_mapped(con, mapping, data)
    assert quarantine_rows(con) == [
        {"line_no": 1, "reason": "c needs more than 12 decimal places in USD: 0.00000000001"},
        {"line_no": 2, "reason": "c is not a number: 12,5"},
    ]


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("", '"2026-01-05T10:00:00+02:00"', "2026-01-05T08:00:00"),
        ('format = "iso"', '"2026-01-05 10:00:00"', "2026-01-05T10:00:00"),
        ('format = "epoch_s"', "1767607200", "2026-01-05T10:00:00"),
        ('format = "epoch_ms"', '"1767607200500"', "2026-01-05T10:00:00.500000"),
        ('format = "%d.%m.%Y %H:%M"', '"05.01.2026 10:00"', "2026-01-05T10:00:00"),
        ('format = "%Y-%m-%d %H:%M:%S %z"', '"2026-01-05 10:00:00 -0500"', "2026-01-05T15:00:00"),
        ('timezone = "America/New_York"', '"2026-01-05 10:00:00"', "2026-01-05T15:00:00"),
    ],
)
def test_timestamp_formats(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, fmt: str, value: str, expected: str
) -> None:
    spec = f'{{ path = "t", {fmt} }}' if fmt else '"t"'
    mapping = _toml(tmp_path / "m.toml", MINIMAL.replace('ts = "t"', f"ts = {spec}"))
    data = tmp_path / "d.jsonl"
    data.write_text('{"t": ' + value + ', "m": "x"}\n')
    load_mapped(con, mapping, data)
    (row,) = usage_rows(con)
    assert row["ts"] == expected


def test_arrays_quoted_keys_and_constants(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    mapping = _toml(
        tmp_path / "m.toml",
        """
[fields]
ts = "meta.\\"created.at\\""
model = { value = "house-model-7b" }
workflow = "steps[1].name"
status = "ok"
[tokens]
input = "u.i"
output = "u.o"
""",
    )
    data = _jsonl(
        tmp_path / "d.jsonl",
        [
            {
                "meta": {"created.at": "2026-01-05T10:00:00Z"},
                "steps": [{"name": "a"}, {"name": "b"}],
                "ok": True,
                "u": {"i": 3, "o": 4},
            }
        ],
    )
    load_mapped(con, mapping, data)
    (row,) = usage_rows(con)
    assert (row["model"], row["workflow"], row["status"]) == ("house-model-7b", "b", "ok")
    assert (row["input_tokens"], row["output_tokens"]) == (3, 4)


def test_fast_and_exact_readers_agree(tmp_path: Path) -> None:
    lines = (MAPPINGS / "inhouse.jsonl").read_text().splitlines()[:2]
    fast = tmp_path / "fast.jsonl"
    fast.write_text("\n".join(lines) + "\n")
    exact = tmp_path / "exact.jsonl"
    exact.write_text(lines[0] + "\n\n" + lines[1] + "\n")  # a blank line: the exact reader
    out = []
    for path in (fast, exact):
        with db.connect(":memory:") as con:
            load_mapped(con, MAPPINGS / "inhouse.toml", path)
            out.append(usage_rows(con))
    assert [r["line_no"] for r in out[0]] == [1, 2]
    assert [r["line_no"] for r in out[1]] == [1, 3]
    strip = [[{k: v for k, v in r.items() if k != "line_no"} for r in rows] for rows in out]
    assert strip[0] == strip[1]


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_with_the_example_mapping(con: duckdb.DuckDBPyConnection) -> None:
    (result,) = load_mapped(con, MAPPINGS / "proxy.toml", MAPPINGS / "proxy.csv")
    assert (result.records_read, result.rows_loaded, result.rows_quarantined) == (5, 4, 1)
    rows = usage_rows(con)
    first, split, failed, multiline = rows
    assert first["ts"] == "2026-03-02T10:16:02"  # 11:16 in Paris (UTC+1)
    assert (first["provider"], first["environment"]) == ("anthropic", "prod")
    assert (first["workflow"], first["team"]) == ("ticket-triage", "support")  # JSON column
    assert _tokens(first) == (14, 11515, 2000, 0, 420, 0)
    assert first["reported_cost_usd"] == "0.017296500000"  # 17296.5 micro-dollars
    assert _tokens(split) == (1800, 0, 4500, 1500, 1024, 0)  # cache_write_includes_1h
    assert failed["status"] == "error" and failed["reported_cost_usd"] is None  # code 529
    assert multiline["team"] == "docs" and multiline["line_no"] == 5
    assert first["tags"] == {"route": "/v1/messages"}
    assert quarantine_rows(con) == [
        {"line_no": 7, "reason": "invalid logged_at: 31/02/2026 11:23:00"}
    ]


def test_csv_broken_rows_keep_their_lines(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    mapping = _toml(
        tmp_path / "m.toml",
        '[file]\ntype = "csv"\ndelimiter = "\\t"\n[fields]\nts = "When"\nmodel = "Model"\n'
        '[tokens]\ninput = "In"\noutput = "Out"\n',
    )
    data = tmp_path / "d.tsv"
    data.write_text(
        "when\tmodel\tin\tout\n"
        "2026-01-05 10:00:00\tgpt-4o\t10\t2\n"
        "2026-01-05 10:01:00\tgpt-4o\t10\n"
        "\n"
        "2026-01-05 10:02:00\tgpt-4o\t-3\t2\n"
        "2026-01-05 10:03:00\tgpt-4o\t7\t1\n"
    )
    (result,) = load_mapped(con, mapping, data)
    assert (result.records_read, result.rows_loaded) == (4, 2)
    assert [r["line_no"] for r in usage_rows(con)] == [2, 6]  # header names match any case
    assert quarantine_rows(con) == [
        {"line_no": 3, "reason": "expected 4 fields, found 3"},
        {"line_no": 5, "reason": "negative In: -3"},
    ]


def test_csv_column_missing_from_the_header(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    mapping = _toml(
        tmp_path / "m.toml",
        '[file]\ntype = "csv"\n[fields]\nts = "ts"\nmodel = "mdl"\n',
    )
    data = tmp_path / "d.csv"
    data.write_text("ts,model\n2026-01-05,gpt-4o\n")
    with pytest.raises(ConfigError, match=r"m\.toml: fields\.model: column 'mdl' is not in the"):
        load_mapped(con, mapping, data)


def test_every_file_given_is_read_with_the_mapping(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    record = json.loads((MAPPINGS / "inhouse.jsonl").read_text().splitlines()[0])
    _jsonl(folder / "a.jsonl", [record])
    _jsonl(folder / "b.log", [dict(record, event=dict(record["event"], id="evt-b"))])
    results = load_mapped(con, MAPPINGS / "inhouse.toml", folder)
    assert [r.format for r in results] == ["custom", "custom"]
    assert sum(r.rows_loaded for r in results) == 2


# --- validation of the mapping file ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL.replace('model = "m"', 'model = "m"\nworkflw = "w"'), "unknown key 'fields.workflw'"),
        (MINIMAL + "[extra]\n", "unknown key 'extra'"),
        (MINIMAL.replace('ts = "t"\n', ""), "missing required key 'fields.ts'"),
        (MINIMAL.replace('model = "m"\n', ""), "missing required key 'fields.model'"),
        (MINIMAL.replace('model = "m"', 'model = "a..b"'), "fields.model: invalid path 'a..b'"),
        (MINIMAL.replace('input = "in"', 'input = "u[x]"'), "tokens.input: invalid path 'u[x]'"),
        (MINIMAL.replace('model = "m"', "model = 3"), "fields.model must be a path"),
        (MINIMAL + '[cost]\npath = "c"\nunit = "eur"\n', "cost.unit must be one of"),
        (MINIMAL + '[cost]\npath = "c"\ncurrency = "usd"\n', "unknown key 'cost.currency'"),
        (MINIMAL.replace('[file]\ntype = "jsonl"', '[file]\ntype = "xml"'), "file.type must be"),
        (MINIMAL.replace('type = "jsonl"', 'type = "csv"\ndelimiter = ";;"'), "file.delimiter"),
        (MINIMAL.replace('ts = "t"', 'ts = { path = "t", format = "unix" }'), "fields.ts.format"),
        (MINIMAL.replace('ts = "t"', 'ts = { path = "t", timezone = "Mars/Olympus" }'),
         "fields.ts.timezone: unknown time zone"),
        (MINIMAL.replace('model = "m"', 'model = { path = "m", value = "x" }'),
         "fields.model: give exactly one of 'path' or 'value'"),
        (MINIMAL.replace('model = "m"', 'model = { path = "m", fmt = "x" }'),
         "unknown key 'fields.model.fmt'"),
        (MINIMAL + "output_includes_reasoning = 1\n", "tokens.output_includes_reasoning must be"),
        (MINIMAL.replace("[tokens]", "[tokens"), "invalid TOML"),
    ],
)  # fmt: skip
def test_bad_mapping_files(tmp_path: Path, text: str, message: str) -> None:
    path = _toml(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as e:
        load_mapping(path)
    assert str(e.value).startswith(f"{path}: ")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_json_path_syntax() -> None:
    assert json_path("a.b") == '$."a"."b"'
    assert json_path('x[0].y[12]."k.1"') == '$."x"[0]."y"[12]."k.1"'
    for bad in ("", " a", "a.", ".a", "a..b", "a[", "a[-1]", 'a."b', "a.b c\\"):
        with pytest.raises(ValueError, match=r"."):
            json_path(bad)


def test_the_custom_ingester_never_sniffs(tmp_path: Path) -> None:
    custom = ingester(MAPPINGS / "inhouse.toml")
    assert isinstance(custom, CustomMapIngester)
    assert not custom.sniff(open_source(MAPPINGS / "inhouse.jsonl", tmp_path))
    assert "custom" not in BY_NAME  # only --map reaches it


def test_a_csv_without_header_is_an_input_error(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("\n\n")
    with pytest.raises(InputError, match="no CSV header line"):
        load_mapped(con, MAPPINGS / "proxy.toml", data)


# --- the command line ------------------------------------------------------------------------------


def test_cli_ingest_with_a_map(tmp_path: Path) -> None:
    dbfile = str(tmp_path / "t.duckdb")
    result = runner.invoke(
        app,
        [
            "ingest",
            "--map",
            str(MAPPINGS / "proxy.toml"),
            str(MAPPINGS / "proxy.csv"),
            "--db",
            dbfile,
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["rows"]
    assert (row["format"], row["rows_loaded"], row["rows_quarantined"]) == ("custom", 4, 1)
    assert row["quarantined_lines"] == [
        {"line": 7, "reason": "invalid logged_at: 31/02/2026 11:23:00"}
    ]


def test_cli_bad_mapping_exits_2_naming_the_key(tmp_path: Path) -> None:
    bad = _toml(tmp_path / "bad.toml", MINIMAL.replace('model = "m"', 'modle = "m"'))
    dbfile = tmp_path / "t.duckdb"
    result = runner.invoke(
        app, ["ingest", "--map", str(bad), str(MAPPINGS / "inhouse.jsonl"), "--db", str(dbfile)]
    )
    assert result.exit_code == 2
    assert "unknown key 'fields.modle'" in result.stderr and str(bad) in result.stderr
    assert "Traceback" not in result.stderr
    assert not dbfile.exists()  # refused before the database was opened


def test_cli_map_and_input_format_are_exclusive(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "ingest",
            "--map",
            str(MAPPINGS / "inhouse.toml"),
            "--input-format",
            "litellm",
            str(MAPPINGS / "inhouse.jsonl"),
            "--db",
            str(tmp_path / "t.duckdb"),
        ],
    )
    assert result.exit_code == 2
    assert "--input-format" in result.stderr


def test_cli_missing_mapping_file(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "ingest",
            "--map",
            str(tmp_path / "nope.toml"),
            str(MAPPINGS / "inhouse.jsonl"),
            "--db",
            str(tmp_path / "t.duckdb"),
        ],
    )
    assert result.exit_code == 2 and "no such mapping file" in result.stderr


def test_csv_json_column_that_is_not_json(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    lines = (MAPPINGS / "proxy.csv").read_text().splitlines()
    data = tmp_path / "d.csv"
    data.write_text(lines[0] + "\n" + lines[1].rsplit(";", 1)[0] + ";{not json\n")
    (result,) = load_mapped(con, MAPPINGS / "proxy.toml", data)
    assert result.rows_loaded == 1
    (row,) = usage_rows(con)
    assert row["workflow"] is None and row["input_tokens"] == 14
