"""Where a Claude Code file sits and what it is: its place in a tree, its workflow, detection.

``place_of`` reads a file's project folder, session and agent from its path alone;
``workflow_of`` names the workflow from the folder and the ``cwd`` values in the file;
``sniff_claude`` tells a Claude Code session file by its first lines. Rules are
described in ``ingest.claude_code``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from tokenaudit.ingest.source import HEAD_BYTES

# --- files, folders and workflows ----------------------------------------------------------


@dataclass(frozen=True)
class FilePlace:
    """Where a file sits in a Claude Code tree (from its path alone)."""

    folder: str | None  # the project folder's name (the one under projects/), or None
    parent: str  # the folder holding the session (a fallback workflow)
    session: str | None  # the session id the path names
    in_subagents: bool
    agent: str | None  # agent-<id>.jsonl -> <id>


def place_of(path: PurePath) -> FilePlace:
    parts = path.parts
    stem = path.name
    for suffix in (".gz", ".jsonl", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    in_sub = len(parts) >= 3 and parts[-2] == "subagents"
    session = parts[-3] if in_sub else stem
    holder = parts[-4] if in_sub and len(parts) >= 4 else (parts[-2] if len(parts) >= 2 else "")
    folder = None
    dirs = parts[:-1]
    if "projects" in dirs:
        i = len(dirs) - 1 - dirs[::-1].index("projects")
        if i + 1 < len(dirs):
            folder = dirs[i + 1]
    agent = stem[6:] if in_sub and stem.startswith("agent-") else None
    return FilePlace(folder, holder, session or None, in_sub, agent)


_HOME_PREFIX = re.compile(
    r"^(?:[A-Za-z]--Users-[^-]+-|-home-[^-]+-|-Users-[^-]+-|-root-|[A-Za-z]--|-)"
)


def encode_path(path: str) -> str:
    """Claude Code's project folder name for a directory (other characters to '-')."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


def _path(cwd: str) -> PurePath:
    """A cwd as a path of its own flavour (Claude Code also runs on Windows)."""
    if "\\" in cwd or re.match(r"^[A-Za-z]:", cwd):
        return PureWindowsPath(cwd)
    return PurePosixPath(cwd)


def workflow_of(place: FilePlace, cwds: Iterable[str]) -> str | None:
    """The workflow of a file: the base name of the directory its project folder encodes.

    The folder name is lossy (``-home-u-my-app`` may be ``/home/u/my/app`` or
    ``/home/u/my-app``), so the ``cwd`` values in the file are the key: the cwd (or a
    parent of it) whose encoding is the folder name gives the base name. Without a
    match the folder name loses its home prefix (``-home-user-proj`` -> ``proj``). A
    file outside a ``projects/`` tree is named by its first cwd, else by its folder.
    """
    paths = [_path(c) for c in cwds if c and c.strip()]
    if place.folder is None:
        for p in paths:
            if p.name:
                return p.name
        return place.parent or None
    for p in paths:
        for candidate in (p, *p.parents):
            if encode_path(str(candidate)) == place.folder:
                return candidate.name or str(candidate)
    if place.folder.startswith("-") or re.match(r"^[A-Za-z]--", place.folder):
        return _HOME_PREFIX.sub("", place.folder, count=1) or place.folder
    return place.folder


def attrs_rows(
    places: dict[str, FilePlace], cwds: dict[str, list[str]]
) -> list[tuple[str, str | None, str | None, bool, str | None]]:
    """Per file: (file_key, workflow, path session, in subagents, path agent)."""
    return [
        (key, workflow_of(p, cwds.get(key, [])), p.session, p.in_subagents, p.agent)
        for key, p in places.items()
    ]


# --- detection ------------------------------------------------------------------------------

_LINE_TYPES = {
    "user",
    "assistant",
    "system",
    "progress",
    "summary",
    "file-history-snapshot",
    "queue-operation",
}


def looks_like_claude_line(obj: Any) -> bool:
    if not isinstance(obj, dict) or "payload" in obj:  # Codex rollouts have a payload
        return False
    kind = obj.get("type")
    if kind in _LINE_TYPES and ("sessionId" in obj or "parentUuid" in obj):
        return True
    if kind == "file-history-snapshot" and "snapshot" in obj:
        return True
    if kind == "summary" and "leafUuid" in obj:
        return True
    message = obj.get("message")
    if isinstance(message, dict) and isinstance(message.get("usage"), dict):
        # a call line with a lean envelope (as in ccusage's fixtures)
        return kind == "assistant" or "requestId" in obj or "sessionId" in obj
    return False


def sniff_claude(head: bytes, lines: int = 40) -> bool:
    """A Claude Code file: one of its first lines has the session envelope.

    Lines are cut from the head's bytes one at a time (a 256 KiB head is not decoded
    whole); a first line longer than the head is judged by the envelope's keys.
    """
    start = len(head) - len(head.lstrip(b"\xef\xbb\xbf \t\r\n"))
    if head[start : start + 1] != b"{":
        return False
    seen = 0
    while seen < lines:
        end = head.find(b"\n", start)
        if end < 0:
            if len(head) >= HEAD_BYTES:
                break  # cut by the head: not parsed
            end = len(head)
        raw = head[start:end].strip()
        start = end + 1
        if raw:
            try:
                obj = json.loads(raw)
            except ValueError:
                return False
            if looks_like_claude_line(obj):
                return True
            seen += 1
        if start >= len(head):
            break
    if seen:
        return False
    text = head[:HEAD_BYTES].decode("utf-8", errors="replace")
    return '"sessionId":' in text and ('"parentUuid":' in text or '"isSidechain":' in text)
