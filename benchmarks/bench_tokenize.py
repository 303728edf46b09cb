"""Local tokenization throughput at ingest: raw tiktoken vs tokenaudit's counting stage.

    TIKTOKEN_CACHE_DIR=... python benchmarks/bench_tokenize.py [--prompts 10000] [--runs 5]
        [--workdir /tmp/tokenaudit-bench-tok]

Generates (fixed seed) N recorded OpenAI exchanges (``openai-logs`` format: request body
with ``model`` and ``messages``, a ``chat.completion`` response with usage) whose prompts
are ~2 KB chat prompts: a system message and one or two user turns (sometimes with an
assistant turn between), mixing English prose, code, JSON, identifiers and numbers; models
gpt-4o-mini and gpt-4.1 (o200k_base) and gpt-4 (cl100k_base). Then measures, best of
``--runs``:

  a. raw tiktoken on one thread: ``len(enc.encode_ordinary(t))`` for every text piece of
     every prompt (the pieces ``tokens.prompt`` makes: roles and message contents), each
     with its model's encoding: the reference. All its runs come before any other thread
     has used the encoders;
  b. ``tokenaudit.tokens.count.count`` on the same prompts (as ``base.write_stage`` runs
     it at ingest, over every core), prompts built and encodings loaded beforehand;
  c. ``tokenaudit ingest FILE --db NEW`` in a fresh process, twice: as shipped, and with
     the counting stage (``tokens.count.apply`` as ``base.write_stage`` calls it) replaced
     by a no-op inside that process: a measurement switch of this script, not a product
     option. The time spent inside the counting stage is recorded (it includes reading
     the encodings' files, which the first chunk pays).

Tokens/s counts text tokens only (no chat-format overheads), the same total for a and b.
The time to load the encodings is measured once, in this process. Results go to stdout
(markdown) and to <workdir>/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

MODELS = [("gpt-4o-mini", 45), ("gpt-4.1", 35), ("gpt-4", 20)]
RESPONSE_MODEL = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4": "gpt-4-0613",
}

# Word pools: function words for the grammar, content words for prose and identifiers.
_FUNCTION = """
the a an of to in for on with at by from as into about over after before under between
through during without within against among across behind beyond toward upon and or but so
yet because although while unless since whereas if then when where which is are was were be
been being has have had do does did can could should would may might must will shall need
needs needed make makes made take takes took give gives gave find
"""
_CONTENT = """
customer order invoice account payment refund shipment warehouse supplier contract report
summary quarter revenue margin forecast budget expense ledger balance transaction audit
user session request response latency throughput error timeout retry cache index query
table column schema migration deployment cluster node container service endpoint token
model prompt completion embedding vector dataset evaluation metric benchmark baseline
policy compliance security incident ticket escalation priority severity owner deadline
please explain describe summarize compare list extract translate rewrite review check
carefully briefly clearly precisely concise detailed formal friendly neutral helpful
important relevant missing duplicate inconsistent unexpected invalid pending approved
daily weekly monthly annual recent previous current next first last final initial
customers orders invoices accounts payments refunds shipments suppliers reports tickets
"""
TEAMS = "engineering marketing finance legal operations support product design research sales"
CONTENT = _CONTENT.split()
WORDS = _FUNCTION.split() + CONTENT + TEAMS.split()

OPENERS = [
    "Please review the following",
    "Can you help me understand why the",
    "Summarize the key points of this",
    "Rewrite this in a more formal tone:",
    "Explain step by step how the",
    "Extract every date and amount from the",
    "Compare the two approaches below and recommend one for the",
    "Here is the latest",
    "I am seeing an unexpected result in the",
    "Translate the following note for the",
]

SYSTEM_TEMPLATES = [
    "You are {name}, an assistant for the {team} team at {company}. Answer in {lang}, "
    "be concise and cite the relevant {thing} when you can.",
    "You are a careful reviewer of {thing} documents for {company}. Flag anything that "
    "looks inconsistent, missing or unusual, and never invent figures.",
    "You are {name}, a senior {team} engineer. Reply with working code first, then a short "
    "explanation. Target Python {pyver} and keep functions small.",
    "You classify support tickets for {company}. Output JSON with the keys category, "
    "priority and summary only.",
]

CODE_TEMPLATES = [
    "def {f}({a}: list[dict], {b}: int = {n}) -> dict:\n"
    "    totals = {{}}\n"
    "    for row in {a}[:{b}]:\n"
    "        key = row.get('{k}') or 'unknown'\n"
    "        totals[key] = totals.get(key, 0) + float(row['{k2}'])\n"
    "    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))\n",
    "SELECT {k}, date_trunc('day', created_at) AS day, sum({k2}) AS total\n"
    "FROM {t}\nWHERE created_at >= DATE '2025-{m:02d}-{d:02d}' AND status <> 'void'\n"
    "GROUP BY ALL\nORDER BY total DESC\nLIMIT {n};\n",
    "async function {f}({a}, {b}) {{\n"
    "  const res = await fetch(`/api/v{v}/{t}/${{{a}.id}}`, {{ method: 'POST' }});\n"
    "  if (!res.ok) throw new Error(`{f} failed: ${{res.status}}`);\n"
    "  return (await res.json()).{k}.filter((x) => x.{k2} > {n});\n"
    "}}\n",
    "class {F}:\n"
    "    def __init__(self, {a}: str, {b}: float = {x}):\n"
    "        self.{a} = {a}\n"
    "        self.{b} = {b}\n\n"
    "    def {f}(self) -> bool:\n"
    "        return len(self.{a}) > {n} and self.{b} < {x}\n",
]


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def ident(self) -> str:
        r = self.r
        parts = r.sample(CONTENT, r.randint(1, 3))
        style = r.random()
        if style < 0.5:
            return "_".join(parts)
        if style < 0.8:
            return parts[0] + "".join(p.title() for p in parts[1:])
        return "".join(p.title() for p in parts)

    def number(self) -> str:
        r = self.r
        kind = r.random()
        if kind < 0.3:
            return str(r.randint(2, 99_999))
        if kind < 0.55:
            return f"{r.uniform(0, 50_000):,.2f}"
        if kind < 0.75:
            return f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
        if kind < 0.9:
            return f"{r.randint(1, 99)}%"
        return f"#{r.randint(1000, 99_999)}"

    def sentence(self) -> str:
        r = self.r
        words = []
        for _ in range(r.randint(8, 22)):
            x = r.random()
            word = self.ident() if x < 0.08 else self.number() if x < 0.15 else r.choice(WORDS)
            words.append(word)
        text = " ".join(words)
        if r.random() < 0.2:
            text = r.choice(OPENERS) + " " + text
        return text[0].upper() + text[1:] + r.choice(".....?!:")

    def prose(self, chars: int) -> str:
        out: list[str] = []
        size = 0
        while size < chars:
            s = self.sentence()
            out.append(s)
            size += len(s) + 1
            if self.r.random() < 0.15:
                out.append("\n\n")
        return " ".join(out).replace(" \n\n ", "\n\n")

    def code(self) -> str:
        r = self.r
        return r.choice(CODE_TEMPLATES).format(
            f=self.ident().lower(),
            F="".join(p.title() for p in r.sample(CONTENT, 2)),
            a=r.choice(CONTENT),
            b=r.choice(CONTENT) + "_limit",
            k=self.ident().lower(),
            k2=self.ident().lower(),
            t=r.choice(CONTENT) + "s",
            n=r.randint(1, 500),
            x=round(r.uniform(0, 10), 2),
            m=r.randint(1, 12),
            d=r.randint(1, 28),
            v=r.randint(1, 3),
        )

    def json_blob(self) -> str:
        r = self.r
        items = [
            {
                "id": f"{r.choice(['ord', 'inv', 'cus', 'tkt'])}_{r.getrandbits(40):010x}",
                self.ident().lower(): self.number(),
                "status": r.choice(["pending", "approved", "rejected", "shipped", "refunded"]),
                "amount": round(r.uniform(1, 9999), 2),
                "tags": r.sample(CONTENT, r.randint(0, 3)),
            }
            for _ in range(r.randint(1, 4))
        ]
        return json.dumps({"items": items, "page": r.randint(1, 40)}, indent=r.choice([None, 2]))

    def system(self) -> str:
        r = self.r
        head = r.choice(SYSTEM_TEMPLATES).format(
            name=r.choice(["Ada", "Atlas", "Juniper", "Orion", "Sage"]),
            team=r.choice(TEAMS.split()),
            company=self.ident().title().replace("_", " "),
            lang=r.choice(["English", "French", "German", "Spanish"]),
            thing=r.choice(CONTENT),
            pyver=f"3.{r.randint(9, 13)}",
        )
        return head + "\n\n" + self.prose(r.randint(250, 550))

    def user(self, chars: int) -> str:
        r = self.r
        parts = [self.prose(r.randint(chars // 4, chars // 2))]
        x = r.random()
        if x < 0.35:
            parts.append("```\n" + self.code() + "```")
        elif x < 0.65:
            parts.append(self.json_blob())
        size = sum(map(len, parts))
        if size < chars:
            parts.append(self.prose(chars - size))
        return "\n\n".join(parts)

    def messages(self) -> list[dict[str, str]]:
        r = self.r
        msgs = [{"role": "system", "content": self.system()}]
        budget = r.randint(1500, 2200) - len(msgs[0]["content"])
        if r.random() < 0.3:
            first = budget // 3
            msgs.append({"role": "user", "content": self.user(first)})
            msgs.append({"role": "assistant", "content": self.prose(r.randint(120, 300))})
            budget -= first + len(msgs[-1]["content"])
        msgs.append({"role": "user", "content": self.user(max(budget, 200))})
        return msgs

    def exchange(self, i: int, t0: datetime) -> dict[str, Any]:
        r = self.r
        model = r.choices([m for m, _ in MODELS], [w for _, w in MODELS])[0]
        msgs = self.messages()
        chars = sum(len(m["content"]) for m in msgs)
        when = t0 + timedelta(seconds=i * 7 + r.randint(0, 6))
        prompt_tokens = chars // 4 + 3 * len(msgs) + 3
        cached = r.choice([0, 0, 0, 1024]) if prompt_tokens > 1024 else 0
        completion = r.randint(20, 900)
        return {
            "request": {
                "method": "POST",
                "uri": "https://api.openai.com/v1/chat/completions",
                "body": {
                    "model": model,
                    "messages": msgs,
                    "metadata": {"workflow": f"wf-{i % 23}", "team": r.choice(TEAMS.split())},
                },
            },
            "response": {
                "status": 200,
                "date": format_datetime(when, usegmt=True),
                "request_id": f"req_{r.getrandbits(96):024x}",
                "body": {
                    "id": f"chatcmpl-{r.getrandbits(80):020x}",
                    "object": "chat.completion",
                    "created": int(when.timestamp()),
                    "model": RESPONSE_MODEL[model],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "(not recorded)"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion,
                        "total_tokens": prompt_tokens + completion,
                        "prompt_tokens_details": {"cached_tokens": cached},
                    },
                },
            },
        }


def generate(path: Path, prompts: int, seed: int) -> None:
    gen = Gen(seed)
    t0 = datetime(2025, 4, 1, 8, tzinfo=UTC)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(prompts):
            f.write(json.dumps(gen.exchange(i, t0), ensure_ascii=False) + "\n")
    tmp.replace(path)


# Runs `tokenaudit ingest` in this process, optionally with counting switched off, and
# writes the seconds spent inside tokens.count.apply to argv[1].
CHILD = """
import sys, time
out, off = sys.argv[1], sys.argv[2] == "off"
import tokenaudit.tokens.count as tc
import tokenaudit.ingest.base as base
spent = [0.0]
real = tc.apply
def timed(rows, *args, **kw):
    t = time.perf_counter()
    if off:
        for row in rows:
            row.pop("_prompt", None)
    else:
        real(rows, *args, **kw)
    spent[0] += time.perf_counter() - t
tc.apply = base.apply_counts = timed
from tokenaudit.cli import main
sys.argv = ["tokenaudit", "ingest", *sys.argv[3:]]
try:
    main()
except SystemExit as e:
    if e.code:
        raise
open(out, "w").write(repr(spent[0]))
"""


def ingest_once(work: Path, data: Path, counting: bool) -> tuple[float, float]:
    db = work / "ingest.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    spent = work / "apply_seconds"
    cmd = [
        sys.executable,
        "-c",
        CHILD,
        str(spent),
        "on" if counting else "off",
        str(data),
        "--db",
        str(db),
        "--format",
        "json",
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return wall, float(spent.read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5, help="repeat each measurement, keep the best")
    ap.add_argument("--seed", type=int, default=20251126)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/tokenaudit-bench-tok"))
    args = ap.parse_args()
    if not os.environ.get("TIKTOKEN_CACHE_DIR"):
        sys.exit("set TIKTOKEN_CACHE_DIR to the folder holding tiktoken's encoding files")
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"exchanges-{args.prompts}-{args.seed}.jsonl"
    if not data.exists():
        generate(data, args.prompts, args.seed)

    import duckdb
    import tiktoken

    from tokenaudit.tokens import count as tc
    from tokenaudit.tokens.encodings import Registry
    from tokenaudit.tokens.prompt import from_request

    prompts = []
    with open(data, encoding="utf-8") as f:
        for line in f:
            body = json.loads(line)["request"]["body"]
            p = from_request(body)
            assert p is not None
            prompts.append((p, body["model"]))
    registry = Registry()
    start = time.perf_counter()  # reading the encodings' files, once per process
    choices = [registry.choose(m) for _, m in prompts]
    load_s = time.perf_counter() - start
    assert all(c.exact and c.tokenizer != "chars/4" for c in choices), "encodings not loaded"
    encodings = {c.tokenizer: tiktoken.get_encoding(c.tokenizer) for c in choices}
    pieces = [
        (encodings[c.tokenizer], t)
        for (p, _), c in zip(prompts, choices, strict=True)
        for t in p.texts
    ]
    chars = sum(len(t) for _, t in pieces)
    by_encoding = {name: sum(c.tokenizer == name for c in choices) for name in encodings}

    def raw() -> int:
        return sum(len(enc.encode_ordinary(t)) for enc, t in pieces)

    # (a) first, while no other thread has touched the encoders: tiktoken alone on one core.
    tokens = raw()  # warm-up
    best_raw = best_count = float("inf")
    for _ in range(args.runs):
        t = time.perf_counter()
        assert raw() == tokens
        best_raw = min(best_raw, time.perf_counter() - t)
    tc.count(prompts, registry)  # warm-up
    for _ in range(args.runs):
        t = time.perf_counter()
        tc.count(prompts, registry)
        best_count = min(best_count, time.perf_counter() - t)

    ingest: dict[bool, tuple[float, float]] = {}
    for _ in range(args.runs):
        for counting in (True, False):
            result = ingest_once(work, data, counting)
            if counting not in ingest or result[0] < ingest[counting][0]:
                ingest[counting] = result

    raw_rate, count_rate = tokens / best_raw, tokens / best_count
    on_wall, on_apply = ingest[True]
    off_wall, _ = ingest[False]
    results = {
        "prompts": args.prompts,
        "file_mb": round(data.stat().st_size / 1e6, 1),
        "text_pieces": len(pieces),
        "chars": chars,
        "chars_per_prompt": round(chars / len(prompts)),
        "tokens": tokens,
        "prompts_by_encoding": by_encoding,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, tiktoken {tiktoken.__version__}, "
        f"duckdb {duckdb.__version__}",
        "runs": args.runs,
        "load_s": round(load_s, 3),
        "raw_s": round(best_raw, 4),
        "raw_tokens_per_s": round(raw_rate),
        "count_s": round(best_count, 4),
        "count_tokens_per_s": round(count_rate),
        "count_vs_raw": round(count_rate / raw_rate, 2),
        "ingest_s": round(on_wall, 3),
        "ingest_apply_s": round(on_apply, 3),
        "ingest_apply_share": round(on_apply / on_wall, 3),
        "ingest_no_count_s": round(off_wall, 3),
    }
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(
        f"{args.prompts:,} recorded exchanges, {results['file_mb']} MB; {len(pieces):,} text "
        f"pieces, {chars / 1e6:.1f}M characters ({results['chars_per_prompt']:,} per prompt), "
        f"{tokens:,} tokens; prompts by encoding {by_encoding}\n{results['machine']}; "
        f"best of {args.runs}\n"
    )
    print("| measurement | time | tokens/s | vs a |")
    print("|---|---:|---:|---:|")
    print(f"| loading the encodings (once per process) | {load_s:.3f} s | | |")
    print(
        f"| a. raw tiktoken `encode_ordinary`, 1 thread | {best_raw:.3f} s "
        f"| {raw_rate / 1e6:.2f}M | 1.00x |"
    )
    print(
        f"| b. `tokens.count.count`, {os.cpu_count()} cores | {best_count:.3f} s "
        f"| {count_rate / 1e6:.2f}M | {count_rate / raw_rate:.2f}x |"
    )
    print(f"| c. `tokenaudit ingest` (process wall time) | {on_wall:.3f} s | | |")
    print(
        f"| … of which counting (`tokens.count.apply`, loading included) | {on_apply:.3f} s "
        f"({on_apply / on_wall:.0%}) | | |"
    )
    print(f"| c'. `tokenaudit ingest`, counting switched off | {off_wall:.3f} s | | |")


if __name__ == "__main__":
    main()
