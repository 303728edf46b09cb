"""Langfuse scores as outcomes: which scores express an outcome (accepted, edited, rejected,
escalated), and the outcome_stage columns of one (no I/O here).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from tokenaudit.ingest.base import RecordError
from tokenaudit.ingest.langfuse_readers import EMAIL, JSON, parse_ts, text

_WORDS = {
    "accepted": ("accepted", "accept", "approved", "approve", "resolved"),
    "edited": ("edited", "edit", "modified", "corrected", "revised"),
    "rejected": ("rejected", "reject", "declined", "discarded", "denied"),
    "escalated": ("escalated", "escalate", "handoff", "handed_off", "human_handoff"),
}
OUTCOME_WORDS = {w: outcome for outcome, words in _WORDS.items() for w in words}
_POSITIVE = frozenset({"thumbs_up", "thumbsup", "up", "positive", "good", "yes", "true", "like"})
_NEGATIVE = frozenset({"thumbs_down", "thumbsdown", "down", "negative", "bad", "no", "false"})
_EMOJI = {"\U0001f44d": "thumbs_up", "\U0001f44e": "thumbs_down"}
# Score names that carry user or reviewer acceptance: true / 1 / thumbs up -> accepted,
# false / 0 (or -1) / thumbs down -> rejected.
FEEDBACK_NAMES = frozenset(
    {
        "accepted", "accept", "acceptance", "is_accepted", "user_accepted", "approved",
        "approval", "user_feedback", "feedback", "human_feedback", "user_vote", "vote",
        "thumbs", "thumb", "thumbs_up", "thumbs_up_down", "helpful", "is_helpful", "outcome",
    }
)  # fmt: skip
# Score names that are an outcome flag: true / 1 -> that outcome; false / 0 says nothing.
FLAG_NAMES = {
    **dict.fromkeys(("rejected", "is_rejected", "user_rejected", "thumbs_down"), "rejected"),
    **dict.fromkeys(("edited", "is_edited", "user_edited", "corrected", "modified"), "edited"),
    **dict.fromkeys(
        ("escalated", "is_escalated", "escalation", "handoff", "human_handoff"), "escalated"
    ),
}


def _norm(value: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(value).strip().lower()).strip("_")


def outcome_of(score: JSON) -> str | None:
    """The outcome a Langfuse score expresses, or None (an evaluation metric, free text)."""
    name = _norm(score.get("name") or "")
    data_type = str(score.get("dataType") or "").upper()
    value, label = score.get("value"), score.get("stringValue")
    if data_type == "CORRECTION":
        return "edited"  # a reviewer corrected the output
    if data_type == "TEXT":
        return None
    if data_type == "CATEGORICAL" or isinstance(value, str):
        raw = str(label if isinstance(label, str) and label else value).strip()
        word = _EMOJI.get(raw) or _norm(raw)
        if word in OUTCOME_WORDS:
            return OUTCOME_WORDS[word]
        if name in FEEDBACK_NAMES:
            return "accepted" if word in _POSITIVE else "rejected" if word in _NEGATIVE else None
        return None
    if isinstance(value, bool):
        number = Decimal(int(value))
    elif isinstance(value, int | Decimal):
        number = Decimal(value)
    elif data_type == "BOOLEAN" and isinstance(label, str):
        number = Decimal(1 if label.strip().lower() == "true" else 0)
    else:
        return None
    if name in FLAG_NAMES:
        return FLAG_NAMES[name] if number == 1 else None
    if name in FEEDBACK_NAMES:
        if number == 1:
            return "accepted"
        if number == 0 or (number == -1 and data_type != "BOOLEAN"):
            return "rejected"
    return None


def outcome_row(score: JSON, fallback_ts: dt.datetime | None) -> JSON | None:
    """The outcome_stage columns of a score that expresses an outcome, else None."""
    outcome = outcome_of(score)
    if outcome is None:
        return None
    row: JSON = {"reason": None, "outcome": outcome, "key_kind": None, "key": None}
    for kind, field in (
        ("trace", "traceId"),
        ("session", "sessionId"),
        ("request", "observationId"),
    ):
        key = text(score.get(field))
        if key:
            row["key_kind"], row["key"] = kind, key
            break
    try:
        row["ts"] = parse_ts(score.get("timestamp"), "score timestamp") or fallback_ts
    except RecordError as e:
        row["reason"], row["ts"] = str(e), None
    reviewer = text(score.get("authorUserId"), 80) or text(score.get("source"), 40)
    row["reviewer"] = reviewer if reviewer and not EMAIL.search(reviewer) else None
    return row
