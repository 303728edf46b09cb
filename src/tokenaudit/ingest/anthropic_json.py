"""Anthropic Admin API report files as JSON: a small parser that keeps where each value
starts and numbers exact (``Obj`` remembers repeated keys), and the walk from pages to
buckets to results, each with the line it starts on (``records``).
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tokenaudit.errors import InputError

if TYPE_CHECKING:
    from tokenaudit.ingest.source import Source


class Obj(dict[str, Any]):
    """A JSON object that remembers the keys it repeats."""

    def __init__(self) -> None:
        super().__init__()
        self.dups: set[str] = set()


class _Arr(list[Any]):
    """A JSON array that remembers where each item starts."""

    def __init__(self) -> None:
        super().__init__()
        self.positions: list[int] = []


class _Odd:
    """A number JSON parsers accept but no count or amount can be (NaN, a 5,000-digit int)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _pairs(pairs: list[tuple[str, Any]]) -> Obj:
    obj = Obj()
    for key, value in pairs:
        if key in obj:
            obj.dups.add(key)
        obj[key] = value
    return obj


def _int(text: str) -> int | _Odd:
    return int(text) if len(text) <= 40 else _Odd(text[:20] + "…")


_DECODER = json.JSONDecoder(
    parse_float=Decimal, parse_int=_int, parse_constant=_Odd, object_pairs_hook=_pairs
)
_WS = re.compile(r"[ \t\n\r]*")
_WALKED = 5  # containers less deep than this are walked here, to know where items start


def _skip(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


def _value(text: str, pos: int, depth: int) -> tuple[Any, int]:
    if depth < _WALKED and text.startswith("{", pos):
        return _object(text, pos, depth)
    if depth < _WALKED and text.startswith("[", pos):
        return _array(text, pos, depth)
    return _DECODER.raw_decode(text, pos)


def _object(text: str, pos: int, depth: int) -> tuple[Obj, int]:
    obj = Obj()
    i = _skip(text, pos + 1)
    if text.startswith("}", i):
        return obj, i + 1
    while True:
        if not text.startswith('"', i):
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
        key, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if not text.startswith(":", i):
            raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
        value, i = _value(text, _skip(text, i + 1), depth + 1)
        if key in obj:
            obj.dups.add(key)
        obj[key] = value
        i = _skip(text, i)
        if text.startswith(",", i):
            i = _skip(text, i + 1)
        elif text.startswith("}", i):
            return obj, i + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)


def _array(text: str, pos: int, depth: int) -> tuple[_Arr, int]:
    arr = _Arr()
    i = _skip(text, pos + 1)
    if text.startswith("]", i):
        return arr, i + 1
    while True:
        arr.positions.append(i)
        value, i = _value(text, i, depth + 1)
        arr.append(value)
        i = _skip(text, i)
        if text.startswith(",", i):
            i = _skip(text, i + 1)
        elif text.startswith("]", i):
            return arr, i + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)


def _parse(src: Source) -> tuple[list[tuple[Any, int]], str]:
    """The JSON values of the file (one, or several in a row) with their start offsets."""
    try:
        text = src.data_path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        raise InputError(f"{src.path}: not UTF-8 text (byte {e.start})") from None
    values: list[tuple[Any, int]] = []
    pos = _skip(text, 0)
    try:
        while pos < len(text):
            value, end = _value(text, pos, 0)
            values.append((value, pos))
            pos = _skip(text, end)
    except json.JSONDecodeError as e:
        raise InputError(
            f"{src.path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None
    except RecursionError:
        raise InputError(f"{src.path}: JSON nested too deeply") from None
    return values, text


def _items(value: Any, pos: int) -> list[tuple[Any, int]]:
    if isinstance(value, _Arr):
        return list(zip(value, value.positions, strict=True))
    if isinstance(value, list):
        return [(v, pos) for v in value]
    return [(value, pos)]


def records(src: Source, what: str) -> Iterator[tuple[int, Any, Any, str | None]]:
    """(line, bucket, result, reason) of every result of the file, pages and arrays unfolded."""
    values, text = _parse(src)
    starts = [m.end() for m in re.finditer("\n", text)]
    found = False
    odd: list[tuple[int, Any, Any, str | None]] = []
    for value, pos in values:
        for item, ipos in _items(value, pos):
            line = bisect_right(starts, ipos) + 1
            if isinstance(item, dict) and item.get("type") == "error" and "error" in item:
                kind = item["error"].get("type") if isinstance(item["error"], dict) else None
                raise InputError(f"{src.path}: an API error response ({kind}), not {what}")
            if isinstance(item, dict) and "data" in item and "results" not in item:
                found = True
                if item["data"] is not None and not isinstance(item["data"], list):
                    odd.append((line, None, None, "data is not a list"))
                    continue
                buckets = _items(item["data"] or [], ipos)
            elif isinstance(item, dict) and ("results" in item or "starting_at" in item):
                found = True
                buckets = [(item, ipos)]
            else:
                odd.append((line, None, None, "not a report page or bucket"))
                continue
            for bucket, bpos in buckets:
                bline = bisect_right(starts, bpos) + 1
                if not isinstance(bucket, dict):
                    yield bline, None, None, "bucket is not an object"
                    continue
                results = bucket.get("results")
                if results is not None and not isinstance(results, list):
                    yield bline, None, None, "results is not a list"
                    continue
                for result, rpos in _items(results or [], bpos):
                    yield bisect_right(starts, rpos) + 1, bucket, result, None
    if odd and not found:
        raise InputError(f"{src.path}: not {what} (no report pages or buckets)")
    yield from odd
