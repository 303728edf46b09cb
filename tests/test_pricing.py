"""Prices: the SQL cost agrees with genai-prices; user files override by date and tier."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import load
from tokenaudit import db
from tokenaudit.errors import ConfigError
from tokenaudit.pricing import PriceSettings, ensure_prices
from tokenaudit.pricing.names import candidates

CASES = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("openai", "o3-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-opus-4-6"),
    ("anthropic", "claude-haiku-4-5"),
]


def _event(provider: str, model: str, day: dt.date, i: int, c: dict[str, int]) -> str:
    return json.dumps(
        {
            "ts": f"{day.isoformat()}T12:00:00Z",
            "request_id": f"r{i}",
            "provider": provider,
            "model": model,
            **c,
        }
    )


usage = st.fixed_dictionaries(
    {
        "input_tokens": st.integers(0, 400_000),
        "cache_read_tokens": st.integers(0, 60_000),
        "cache_write_tokens": st.integers(0, 30_000),
        "cache_write_1h_tokens": st.integers(0, 30_000),
        "output_tokens": st.integers(0, 30_000),
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(CASES), usage, st.dates(dt.date(2025, 6, 1), dt.date(2026, 11, 20)))
def test_sql_cost_equals_genai_prices(
    case: tuple[str, str], counts: dict[str, int], day: dt.date
) -> None:
    provider, model = case
    if provider == "openai":  # OpenAI has no cache writes
        counts = {**counts, "cache_write_tokens": 0, "cache_write_1h_tokens": 0}
    with tempfile.TemporaryDirectory() as tmp, db.connect(":memory:") as con:
        path = Path(tmp) / "e.jsonl"
        path.write_text(_event(provider, model, day, 1, counts) + "\n")
        load(con, path)
        ours = con.execute("SELECT cost_usd FROM usage_events").fetchall()[0][0]
    expected = calc_price(
        Usage(
            input_tokens=counts["input_tokens"]
            + counts["cache_read_tokens"]
            + counts["cache_write_tokens"]
            + counts["cache_write_1h_tokens"],
            cache_read_tokens=counts["cache_read_tokens"],
            cache_write_tokens=counts["cache_write_tokens"] + counts["cache_write_1h_tokens"],
            cache_write_1h_tokens=counts["cache_write_1h_tokens"],
            output_tokens=counts["output_tokens"],
        ),
        model,
        provider_id=provider,
        genai_request_timestamp=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
    ).total_price
    assert ours == expected.quantize(Decimal("1e-12"))


def test_price_never_decreases_and_zero_for_zero(con: object, tmp_path: Path) -> None:
    lines = [
        _event(
            "anthropic",
            "claude-sonnet-4-5",
            dt.date(2026, 11, 1),
            i,
            {"input_tokens": n, "output_tokens": 0},
        )
        for i, n in enumerate([0, 1, 1000, 199_999, 200_000, 200_001, 500_000])
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with db.connect(":memory:") as c:
        load(c, path)
        costs = [
            r[0]
            for r in c.execute("SELECT cost_usd FROM usage_events ORDER BY input_tokens").fetchall()
        ]
    assert costs[0] == 0
    assert costs == sorted(costs)
    # The long-context tier applies to all tokens once input exceeds 200k (cliff).
    assert costs[4] == Decimal("0.600000000000") and costs[5] == Decimal("1.200006000000")


NEGOTIATED = """
[[price]]
model = "gpt-4o"
provider = "openai"
effective_from = "2026-11-01"
input_mtok = "2.00"
cache_read_mtok = "1.00"
output_mtok = "8.00"
source = "MSA 2026"

[[price]]
model = "ft:gpt-4o-mini:*"
input_mtok = 0.30
output_mtok = "1.20"
"""


def test_user_prices_override_by_date(tmp_path: Path) -> None:
    prices = tmp_path / "pricing"
    prices.mkdir()
    (prices / "deal.toml").write_text(NEGOTIATED)
    path = tmp_path / "e.jsonl"
    path.write_text(
        "\n".join(
            [
                _event(
                    "openai",
                    "gpt-4o",
                    dt.date(2026, 10, 31),
                    1,
                    {"input_tokens": 1_000_000, "output_tokens": 0},
                ),
                _event(
                    "openai",
                    "gpt-4o-2024-08-06",
                    dt.date(2026, 11, 1),
                    2,
                    {"input_tokens": 1_000_000, "output_tokens": 0},
                ),
                _event(
                    "openai",
                    "ft:gpt-4o-mini:acme::x1",
                    dt.date(2026, 11, 1),
                    3,
                    {"input_tokens": 1_000_000, "output_tokens": 1_000_000},
                ),
            ]
        )
        + "\n"
    )
    with db.connect(":memory:") as c:
        load(c, path, pricing=prices)
        rows = c.execute(
            "SELECT e.request_id, e.cost_usd, p.source, p.effective_from FROM usage_events e "
            "JOIN prices p USING (price_id) ORDER BY e.request_id"
        ).fetchall()
    assert rows[0][1] == Decimal("2.5") and rows[0][2].startswith("genai-prices")
    assert rows[1][1] == Decimal("2.0") and rows[1][2] == "MSA 2026"
    assert rows[1][3] == dt.date(2026, 11, 1)
    assert rows[2][1] == Decimal("1.5") and rows[2][2] == "pricing/deal.toml"


def test_changing_price_files_reprices_stored_calls(tmp_path: Path) -> None:
    prices = tmp_path / "pricing"
    prices.mkdir()
    path = tmp_path / "e.jsonl"
    path.write_text(
        _event(
            "openai",
            "ft:gpt-4o-mini:acme::x1",
            dt.date(2026, 11, 1),
            1,
            {"input_tokens": 1_000_000},
        )
        + "\n"
    )
    with db.connect(":memory:") as c:
        load(c, path, pricing=prices)
        assert c.execute("SELECT cost_usd FROM usage_events").fetchall()[0][0] is None
        (prices / "ft.csv").write_text("model,input_mtok,output_mtok\nft:gpt-4o-mini:*,0.30,1.20\n")
        assert ensure_prices(c, PriceSettings(prices)) is True
        assert c.execute("SELECT cost_usd FROM usage_events").fetchall()[0][0] == Decimal("0.3")


prices_per_million = st.decimals(
    min_value=Decimal(0), max_value=Decimal(200), places=9, allow_nan=False, allow_infinity=False
)


@settings(max_examples=30, deadline=None)
@given(
    st.tuples(prices_per_million, prices_per_million, prices_per_million),
    st.tuples(prices_per_million, prices_per_million, prices_per_million),
    st.lists(
        st.tuples(
            st.dates(dt.date(2026, 10, 25), dt.date(2026, 11, 10)),
            st.integers(0, 3_000_000),
            st.integers(0, 100_000),
            st.integers(0, 50_000),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_streamed_cost_equals_the_joined_price(
    before: tuple[Decimal, Decimal, Decimal],
    after: tuple[Decimal, Decimal, Decimal],
    calls: list[tuple[dt.date, int, int, int]],
) -> None:
    """A file priced as it streams in (constants per price row, per-token prices when every
    price per million has at most 6 decimals) gets the exact cost a join to ``prices`` gives,
    across a price change and whatever the prices' decimals."""
    from tokenaudit.pricing import cost_sql, price_join

    rows = []
    for start, (inp, read, out) in (("2026-10-01", before), ("2026-11-01", after)):
        rows.append(
            f'[[price]]\nmodel = "acme-*"\nprovider = "acme"\neffective_from = "{start}"\n'
            f'input_mtok = "{inp}"\ncache_read_mtok = "{read}"\noutput_mtok = "{out}"\n'
        )
    with tempfile.TemporaryDirectory() as tmp, db.connect(":memory:") as con:
        folder = Path(tmp) / "pricing"
        folder.mkdir()
        (folder / "acme.toml").write_text("\n".join(rows))
        path = Path(tmp) / "e.jsonl"
        path.write_text(
            "".join(
                _event(
                    "acme",
                    "acme-large",
                    day,
                    i,
                    {"input_tokens": n, "cache_read_tokens": r, "output_tokens": o},
                )
                + "\n"
                for i, (day, n, r, o) in enumerate(calls)
            )
        )
        load(con, path, pricing=folder)
        pairs = con.execute(
            f"SELECT s.cost_usd, {cost_sql('s')} FROM usage_events s {price_join('s')}"
        ).fetchall()
    assert len(pairs) == len(calls)
    assert all(streamed is not None and streamed == joined for streamed, joined in pairs)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(CASES),
            st.sampled_from([None, "standard", "batch", "priority", "flex", "Batch"]),
            st.dates(dt.date(2025, 6, 1), dt.date(2026, 11, 20)),
            st.sampled_from([0, 1, 199_999, 200_000, 200_001, 272_000, 272_001, 1_000_000]),
            st.integers(0, 50_000),
        ),
        min_size=1,
        max_size=15,
    )
)
def test_streamed_catalogue_prices_equal_the_join(
    calls: list[tuple[tuple[str, str], str | None, dt.date, int, int]],
) -> None:
    """Service tiers, input-size tiers and dated catalogue rows: the row a call streams in
    with is the row the join to ``prices`` picks, and so is its cost."""
    from tokenaudit.pricing import cost_sql, price_join

    lines = []
    for i, ((provider, model), tier, day, n, out) in enumerate(calls):
        extra = {"service_tier": tier} if tier else {}
        event = json.loads(
            _event(provider, model, day, i, {"input_tokens": n, "output_tokens": out})
        )
        lines.append(json.dumps({**event, **extra}))
    with tempfile.TemporaryDirectory() as tmp, db.connect(":memory:") as con:
        path = Path(tmp) / "e.jsonl"
        path.write_text("\n".join(lines) + "\n")
        load(con, path)
        rows = con.execute(
            f"SELECT s.price_id, p.price_id, s.cost_usd, {cost_sql('s')} "
            f"FROM usage_events s {price_join('s')}"
        ).fetchall()
    assert len(rows) == len(calls)
    assert all(a == b and c == d for a, b, c, d in rows)


def test_prices_per_token_only_when_exact() -> None:
    from tokenaudit.pricing.lookup import PriceMap

    row = ("openai", "m", "standard", 1, "m", dt.date(2026, 1, 1), None, -1, None)
    six = PriceMap(((*row, Decimal("0.150000"), None, None, None, Decimal("0.6"), None),))
    seven = PriceMap(((*row, Decimal("0.1500001"), None, None, None, Decimal("0.6"), None),))
    assert six.per_token and "input_tok" in six.lookup_sql("s", "1")
    assert not seven.per_token and "input_mtok" in seven.lookup_sql("s", "1")
    assert "0.00000015::DECIMAL(38,12)" in six.lookup_sql("s", "1")  # never an exponent


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[price]]\nmodel = "x"\ninput_mtok = "cheap"\n', "input_mtok 'cheap' is not a number"),
        ("[[price]]\ninput_mtok = 1\n", "'model' is required"),
        ('[[price]]\nmodel = "x"\ninptu_mtok = 1\n', "unknown key 'inptu_mtok'"),
        ('[[price]]\nmodel = "x"\n', "no price given"),
        ('[[price]]\nmodel = "x"\ninput_mtok = 1\neffective_from = "soon"\n', "not a date"),
        ("[[price]\n", "invalid TOML"),
    ],
)
def test_bad_price_files_name_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    prices = tmp_path / "pricing"
    prices.mkdir()
    (prices / "p.toml").write_text(text)
    with db.connect(":memory:") as c, pytest.raises(ConfigError) as e:
        ensure_prices(c, PriceSettings(prices))
    assert needle in str(e.value) and "p.toml" in str(e.value)


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("openai/gpt-4o", "gpt-4o"),
        (
            "arn:aws:bedrock:us-west-2:1:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "claude-3-7-sonnet-20250219",
        ),
        ("projects/p/locations/us/publishers/google/models/gemini-1.5-pro", "gemini-1.5-pro"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet-20240620"),
    ],
)
def test_name_candidates(logged: str, expected: str) -> None:
    assert expected in candidates(logged)


def test_bedrock_arn_and_dated_names_are_priced(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    arn = (
        "arn:aws:bedrock:us-west-2:1:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0"
    )
    path.write_text(
        "\n".join(
            [
                _event("bedrock", arn, dt.date(2026, 1, 5), 1, {"input_tokens": 10}),
                _event(
                    "openai", "gpt-4o-mini-2024-07-18", dt.date(2026, 1, 5), 2, {"input_tokens": 10}
                ),
            ]
        )
        + "\n"
    )
    with db.connect(":memory:") as c:
        load(c, path)
        ids = c.execute("SELECT model_id FROM usage_events ORDER BY request_id").fetchall()
    # Bedrock prices its own (regional) SKU of the model; the dated name maps to its family.
    assert ids == [("regional.anthropic.claude-3-7-sonnet-20250219-v1:0",), ("gpt-4o-mini",)]


def test_fine_tune_is_found_without_a_provider() -> None:
    from tokenaudit.pricing import catalogue

    # `prices MODEL` has no provider to go on: an ft: name implies OpenAI's catalogue.
    res, rows = catalogue.resolve(None, "ft:gpt-4o-mini-2024-07-18:acme::sup42")
    assert res.model_id == "ft:gpt-4o-mini"
    standard = [r for r in rows if r.service_tier == "standard"]
    assert standard[0].prices[0] == Decimal("0.3")  # not the base model's $0.15
    # and never the base model's price for a fine-tune the catalogue does not know
    assert catalogue.resolve(None, "ft:gpt-4.1-nano-2025-04-14:acme::x1")[0].model_id in (
        None,
        "ft:gpt-4.1-nano",
    )


def test_price_file_row_applies_to_calls_that_do_not_name_a_provider(tmp_path: Path) -> None:
    from tokenaudit.pricing import userfile

    path = tmp_path / "p.toml"
    path.write_text(
        '[[price]]\nmodel = "house-*"\nprovider = "openai"\ninput_mtok = "1"\noutput_mtok = "2"\n'
    )
    (row,) = userfile.load([path])
    assert row.matches("", "house-7b", None)
    assert row.matches("OpenAI", "house-7b", None)
    assert not row.matches("anthropic", "house-7b", None)


@pytest.mark.parametrize(
    ("value", "text"),
    [("0.3", "$0.30"), ("0.075", "$0.075"), ("15", "$15.00"), ("1.875", "$1.875")],
)
def test_prices_per_million_show_cents(value: str, text: str) -> None:
    from tokenaudit.report.render import per_mtok

    assert per_mtok(Decimal(value)) == text


@pytest.mark.parametrize(
    ("display", "logged"),
    [
        ("Claude Opus 4.5", "claude-opus-4-5-20251101"),
        ("Claude Sonnet 4", "claude-sonnet-4-20250514"),
        ("Claude Haiku 3.5", "claude-3-5-haiku-20241022"),
        ("Claude Sonnet 3.7", "claude-3-7-sonnet-20250219"),
        ("GPT-4o mini", "gpt-4o-mini-2024-07-18"),
    ],
)
def test_display_names_line_up_with_logged_ids(display: str, logged: str) -> None:
    # Billing consoles write display names; logs write dated ids: one normalization.
    from tokenaudit.pricing import catalogue

    provider = "anthropic" if display.startswith("Claude") else "openai"
    assert catalogue.resolve(provider, display)[0].model_id is not None
    assert (
        catalogue.resolve(provider, display)[0].model_id
        == catalogue.resolve(provider, logged)[0].model_id
    )
