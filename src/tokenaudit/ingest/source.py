"""Input files: walking paths, decompressing ``.gz``, hashing and pre-scanning.

A ``Source`` is one input file as the ingesters see it. Its ``sha256`` covers
the decompressed bytes, so ``x.jsonl`` and ``x.jsonl.gz`` are the same data and
load once. The pre-scan (one pass in large blocks, C-level byte operations
only) also counts lines and notes carriage returns, which decides whether the
fast DuckDB line reader can be trusted for line numbers.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tokenaudit.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

BLOCK = 8 << 20
LINE_BLOCK = 64 << 20  # bytes per block when a file is split into lines in Python
BOM = b"\xef\xbb\xbf"
HEAD_BYTES = 256 << 10
QUICK_BYTES = 1 << 20
MAX_DECOMPRESSED = 8 << 30  # a decompressed-size cap against gzip bombs

SKIP_NAMES = {".DS_Store"}
SKIP_SUFFIXES = {".md", ".txt", ".toml", ".py", ".yaml", ".yml", ".duckdb", ".wal", ".tmp"}


@dataclass(frozen=True)
class Scan:
    sha256: str
    size_bytes: int
    line_count: int  # lines, a last line without newline included
    has_cr: bool


@dataclass(frozen=True)
class Source:
    path: Path  # as given by the user (for messages)
    data_path: Path  # what to read: the file itself, or its decompressed copy
    head: bytes  # the first bytes of the (decompressed) content
    quick_key: str  # size + hashes of the first and last MiB: cheap "seen before?" test
    stat_size: int
    compressed: bool
    _scan: Future[Scan] = field(repr=False, compare=False)

    @property
    def scan(self) -> Scan:
        """The full pre-scan (hash, line count); computed in the background, waited for here."""
        return self._scan.result()

    @property
    def sha256(self) -> str:
        return self.scan.sha256

    @property
    def size_bytes(self) -> int:
        return self.scan.size_bytes

    @property
    def line_count(self) -> int:
        return self.scan.line_count

    @property
    def has_cr(self) -> bool:
        return self.scan.has_cr

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def suffix(self) -> str:
        """The file's format suffix, ignoring ``.gz``."""
        name = self.path.name.lower()
        if name.endswith(".gz"):
            name = name[:-3]
        return Path(name).suffix


_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenaudit-scan")


def walk(paths: list[Path]) -> Iterator[Path]:
    """Files under ``paths`` (folders recursively, sorted), refusing non-regular files."""
    for p in paths:
        if not p.exists():
            raise InputError(f"{p}: no such file or directory")
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if child.is_file() and _wanted(child):
                    yield child
        else:
            mode = p.stat().st_mode
            if not stat.S_ISREG(mode):
                raise InputError(f"{p}: not a regular file")
            yield p


def _wanted(p: Path) -> bool:
    if p.name in SKIP_NAMES or p.name.startswith("."):
        return False
    if p.name.lower().endswith((".labels.json", ".labels.json.gz")):
        return False  # ground-truth files written by `tokenaudit sample`
    return p.suffix.lower() not in SKIP_SUFFIXES or p.name.lower().endswith(".gz")


def open_source(path: Path, workdir: Path) -> Source:
    """Open ``path`` (decompressing ``.gz`` into ``workdir``) and start its full pre-scan.

    The sha256 and line count are computed in a background thread (hashlib releases the
    GIL), overlapping DuckDB's own reading of the file.
    """
    compressed = _is_gzip(path)
    data_path = _decompress(path, workdir) if compressed else path
    try:
        size = data_path.stat().st_size
        with open(data_path, "rb") as f:
            head = f.read(HEAD_BYTES)
            quick = hashlib.sha256(str(size).encode())
            quick.update(head[:QUICK_BYTES])
            if size > QUICK_BYTES:
                f.seek(max(size - QUICK_BYTES, 0))
                quick.update(f.read(QUICK_BYTES))
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    return Source(
        path=path,
        data_path=data_path,
        head=head,
        quick_key=quick.hexdigest()[:32],
        stat_size=size,
        compressed=compressed,
        _scan=_POOL.submit(_full_scan, path, data_path),
    )


def _full_scan(path: Path, data_path: Path) -> Scan:
    digest = hashlib.sha256()
    size = 0
    newlines = 0
    has_cr = False
    last = b""
    try:
        with open(data_path, "rb") as f:
            while block := f.read(BLOCK):
                digest.update(block)
                size += len(block)
                newlines += block.count(b"\n")
                if not has_cr and b"\r" in block:
                    has_cr = True
                last = block[-1:]
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    lines = newlines + (1 if size and last != b"\n" else 0)
    return Scan(digest.hexdigest(), size, lines, has_cr)


def _is_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None


def _decompress(path: Path, workdir: Path) -> Path:
    fd, name = tempfile.mkstemp(dir=workdir, suffix=path.stem and Path(path.stem).suffix)
    total = 0
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as f:
            while block := f.read(BLOCK):
                total += len(block)
                if total > MAX_DECOMPRESSED:
                    raise InputError(
                        f"{path}: decompresses to more than {MAX_DECOMPRESSED >> 30} GiB; refused"
                    )
                out.write(block)
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(f"{path}: corrupt or truncated gzip file ({e})") from None
    return Path(name)


def iter_lines(src: Source) -> Iterator[tuple[int, bytes]]:
    """(line number, line bytes without the newline) for every line of ``src``."""
    with open(src.data_path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            yield n, raw


def line_blocks(path: Path, strip_bom: bool = False) -> Iterator[tuple[int, list[bytes]]]:
    """A file's lines, split at ``\\n`` in large blocks by C-level byte operations: pairs of
    (the number of the block's first line, its lines). A last line without a newline is
    included; a carriage return before the newline is left on the line."""
    tail = b""
    line_no = 0
    with open(path, "rb") as f:
        block = f.read(LINE_BLOCK)
        if strip_bom:
            while len(block) < len(BOM) and (more := f.read(LINE_BLOCK)):
                block += more  # the whole mark, however small the blocks
            if block.startswith(BOM):
                block = block[len(BOM) :] or f.read(LINE_BLOCK)  # empty only at the end
        while True:
            if block:
                parts = (tail + block).split(b"\n")
                tail = parts.pop()
            else:
                parts = [tail] if tail else []
            if parts:
                yield line_no + 1, parts
                line_no += len(parts)
            if not block:
                return
            block = f.read(LINE_BLOCK)


def arrow_lines(line_nos: Sequence[int], lines: Sequence[bytes]) -> pa.Table:
    """Lines and their numbers as an Arrow table (line_no BIGINT, raw BLOB) for DuckDB."""
    import pyarrow as pa

    numbers, raw = pa.array(line_nos, pa.int64()), pa.array(lines, pa.binary())
    return pa.table({"line_no": numbers, "raw": raw})
