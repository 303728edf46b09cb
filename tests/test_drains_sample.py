"""Every detector against the sample's ground truth, over several seeds and sizes.

A labelled drain is recalled when one finding of its kind holds at least half of its
calls; a finding is a true positive when it shares a call with a label of its kind.
Precision and recall are computed per kind over all the datasets together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load
from tokenaudit import db
from tokenaudit.drains import KINDS, detect
from tokenaudit.drains.base import Finding
from tokenaudit.sample import generate

DATASETS = [(20000, 7), (12000, 11), (30000, 23), (8000, 5)]  # (events, seed)


def _score(findings: list[Finding], labels: list[dict[str, Any]]) -> dict[str, list[int]]:
    """kind -> [labels, recalled, findings, true findings]."""
    out: dict[str, list[int]] = {k: [0, 0, 0, 0] for k in KINDS}
    for kind in KINDS:
        mine = [set(f.request_ids) for f in findings if f.kind == kind]
        truth = [set(x["request_ids"]) for x in labels if x["kind"] == kind]
        out[kind][0] = len(truth)
        out[kind][1] = sum(any(len(t & m) * 2 >= len(t) for m in mine) for t in truth)
        out[kind][2] = len(mine)
        out[kind][3] = sum(any(t & m for t in truth) for m in mine)
    return out


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[int]]:
    total: dict[str, list[int]] = {k: [0, 0, 0, 0] for k in KINDS}
    for events, seed in DATASETS:
        out = tmp_path_factory.mktemp(f"sample-{events}-{seed}")
        generate(out, events=events, seed=seed)
        labels = json.loads((out / "ground-truth.labels.json").read_text())["drains"]
        with db.connect(":memory:") as con:
            load(con, *sorted((out / "logs").iterdir()))
            found = detect(con).findings
        for kind, counts in _score(found, labels).items():
            total[kind] = [a + b for a, b in zip(total[kind], counts, strict=True)]
    return total


@pytest.mark.parametrize("kind", KINDS)
def test_precision_and_recall_at_least_90_percent(kind: str, scores: dict[str, list[int]]) -> None:
    labels, recalled, findings, true = scores[kind]
    assert labels > 0, f"no {kind} in the samples"
    assert recalled / labels >= 0.9, f"{kind}: recall {recalled}/{labels}"
    assert findings and true / findings >= 0.9, f"{kind}: precision {true}/{findings}"


def test_scores_are_written_to_docs(scores: dict[str, list[int]]) -> None:
    """docs/drains.md quotes these figures: they must be the ones the detectors reach."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "drains.md").read_text()
    for kind, (labels, recalled, findings, true) in scores.items():
        row = f"| `{kind}` | {labels} | {recalled} | {findings} | {true} |"
        assert row in doc, f"docs/drains.md lacks: {row}"
