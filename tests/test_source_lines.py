"""Splitting a file into numbered lines in large blocks (``source.line_blocks``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenaudit.ingest import source


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r\n", b"\xef\xbb\xbf", b"{}"]), max_size=40),
    st.integers(1, 9),
    st.booleans(),
)
def test_lines_and_numbers_whatever_the_block_size(
    pieces: list[bytes], block: int, strip_bom: bool
) -> None:
    data = b"".join(pieces)
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(source, "LINE_BLOCK", block)
        path = Path(tmp) / "f.jsonl"
        path.write_bytes(data)
        got = [
            (n, line)
            for first, lines in source.line_blocks(path, strip_bom)
            for n, line in enumerate(lines, first)
        ]
    text = data.removeprefix(source.BOM) if strip_bom else data
    expected = text.split(b"\n")
    if expected[-1] == b"":
        expected.pop()  # a final newline ends the last line, it does not start one
    assert got == list(enumerate(expected, 1))


def test_arrow_lines_keep_their_numbers() -> None:
    table = source.arrow_lines([3, 7], [b"x", b"\xff"])
    assert table.column("line_no").to_pylist() == [3, 7]
    assert table.column("raw").to_pylist() == [b"x", b"\xff"]
