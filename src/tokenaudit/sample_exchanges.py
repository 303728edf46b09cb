"""The part of the sample's traffic logged with its prompt text, as recorded exchanges.

The support gateway records request/response pairs (the ``openai-logs`` format) for the
workflows of ``tokenaudit.sample.RECORDED``: their calls go to ``logs/gateway-exchanges.jsonl.gz``
instead of native lines, the same calls (request ids, timestamps to the second as HTTP
gives them, tokens, attribution in the request ``metadata``, ``user``), so that totals,
billing and the drain labels hold. A failed call has its HTTP error status and error body.
Outcomes, which an exchange cannot carry, go to ``logs/gateway-outcomes.jsonl.gz``.

Prompt text is made of ``WORDS``, each one token in ``o200k_base`` and ``cl100k_base`` with
or without a leading space, lower case or capitalized, the product name ``CANARY`` (one
token with its leading space), ``.`` and ``.\\n\\n`` (one token each): a text's count is its
number of units, known without a tokenizer. Tool definitions and tool calls are fixed, their
counts constants (tests/test_sample_tokens.py checks all of it with tiktoken). Chat overheads
as ``tokenaudit.tokens.count`` adds them: 3 per message plus its role, 3 for the priming.

* ticket-classify (OpenAI): the local count equals the reported ``prompt_tokens``; system
  prompt and tools make the agent's prefix, the ticket fills the rest; 30 % of the
  conversations looked the customer's account up (a tool call and its result).
* ticket-summary (Anthropic): the reference count is the reported prompt / ``RATIO`` times a
  log-normal noise of sd ``NOISE`` (clipped), so that calibration finds ``RATIO``.

Injected token drifts (``DRIFTS``, labelled under ``token_drift``; billed tokens unchanged):
the log dropped the tools array of a conversation with tool calls ("tool schemas"), the
user sent an image the provider counted (``IMAGE_TOKENS``, "images or files"), the logged
prompt was cut ("truncated log"). All is drawn from random streams of its own: the rest of
the sample does not change.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import hashlib
import itertools
import json
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

from tokenaudit.sample import WF, Call, World

EXCHANGES_NAME = "gateway-exchanges.jsonl.gz"
OUTCOMES_NAME = "gateway-outcomes.jsonl.gz"
RATIO = 1.15  # ticket-summary: provider tokens per reference (o200k_base) token
NOISE = 0.015  # sd of ln(reported / reference), clipped at CLIP sd: none leaves the band
CLIP = 2.5
IMAGE_TOKENS = 765
CANARY = "Beaver"
TRUNCATED = "... [truncated]"
DRIFTS = {  # workflow -> cause -> calls
    "ticket-classify": {"tool schemas": 4, "truncated log": 3},  # too short for an image
    "ticket-summary": {"images or files": 4, "truncated log": 3},
}
_WORDS = """the customer customers reports that order orders was not on time and for a please check
    account status before reply with short summary ticket tickets priority high low medium
    issue billing payment card charge invoice receipt missing item package shipping address
    change login password reset email phone number support team agent agents happy thanks
    hello again still waiting since last week month day today product service plan plans
    upgrade cancel subscription trial free price discount code error page app slow update
    version mobile web browser data export report access user admin role permission request
    review note follow up call back contact manager policy return exchange store delivery
    tracking carrier late early warehouse stock out available new old first second third
    final total amount due paid balance credit bank transfer failed success pending open
    closed category label tag assign owner queue response hours minutes never always often
    sometimes help need want would like could should will can may must be is are were has
    have had do does did no yes any all some many few more most less other same different
    very also only just even then than when where what which who why how this these those
    there here our your their my its it he she they we you us them of to in from by as at or
    an if so into about after but because per via over under between during without within
    write read keep list each every both either reason answer question long clear delay
    broken wrong size color quality repair replace replacement tax fee license seat limit
    limits usage bug feature settings profile device devices sync file files upload download
    link links screen button form field value name names date dates region country language
    english thread threads message messages chat intent positive negative neutral tool tools
    result results step steps rule rules example examples input output format text one five
    sort whether save"""
WORDS = tuple(dict.fromkeys(_WORDS.split()))
_WEIGHTS = tuple(1 / len(w) ** 2 for w in WORDS)  # short words more often, as in prose
_PER_MESSAGE, _PRIMING = 3, 3  # the gpt-4o and "other" families' chat overheads
_SEP = "\n\n"  # after a paragraph's "." it makes the single token ".\n\n"

CLASSIFY_TOOLS = json.loads("""[
{"type": "function", "function": {"name": "lookup_account", "description":
 "Look up the account of the customer who wrote the ticket.", "parameters": {"type": "object",
 "properties": {"email": {"type": "string", "description": "The email address on the ticket."}},
 "required": ["email"]}}},
{"type": "function", "function": {"name": "recent_orders", "description":
 "List the last orders of an account.", "parameters": {"type": "object", "properties": {
 "account_id": {"type": "string", "description": "The account id."},
 "limit": {"type": "integer", "description": "How many orders to list."}},
 "required": ["account_id"]}}}]""")
SUMMARY_TOOLS = json.loads("""[
{"name": "save_summary", "description": "Save the summary of a support thread.",
 "input_schema": {"type": "object", "properties": {
 "summary": {"type": "string", "description": "At most five short sentences."},
 "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
 "follow_up": {"type": "boolean", "description": "Whether an agent should reply."}},
 "required": ["summary", "sentiment"]}}]""")
# o200k_base counts of the fixed pieces (the tests check them)
CLASSIFY_TOOLS_TOKENS = 88
SUMMARY_TOOLS_TOKENS = 71
LOOKUP_TOKENS = 12  # the assistant's lookup_account call: name and arguments, any tenant
_CLASSIFY_INTRO = (
    f"You read each support ticket from {CANARY} customers and assign one category and one"
    " priority. Check the account with the tools when you need to."
)
_SUMMARY_INTRO = (
    f"You write a short summary of each support thread for the {CANARY} support team. Save"
    " it with the tool and keep it clear."
)
_SUMMARY_ASK = "Write a short summary of this thread."


def lookup_args(tenant: str) -> str:
    return json.dumps({"email": f"support@{tenant}.example"})


def sentence_units(words: Sequence[str], first: bool) -> list[str]:
    """A sentence's units: first word capitalized (leading space unless ``first``), a "."."""
    out = [("" if first else " ") + words[0][:1].upper() + words[0][1:]]
    return [*out, *(" " + w for w in words[1:]), "."]


@dataclass(frozen=True, slots=True)
class Para:
    """A paragraph: its text, its units (one token each, in order), where sentences start."""

    text: str
    units: tuple[str, ...]
    starts: tuple[int, ...] = (0,)

    @classmethod
    def of(cls, sentences: Sequence[Sequence[str]]) -> Para:
        units: list[str] = []
        starts = []
        for i, words in enumerate(sentences):
            starts.append(len(units))
            units += sentence_units(words, i == 0)
        return cls("".join(units), tuple(units), tuple(starts))

    def tail(self, k: int) -> Para:
        """The paragraph from its ``k``-th unit (a sentence start) on."""
        units = (self.units[k].lstrip(), *self.units[k + 1 :])
        return Para("".join(units), units)


def paragraph(text: str) -> Para:
    """A fixed paragraph of WORDS (and CANARY) sentences, each ending with "."."""
    return Para.of([s.split() for s in text.split(".")[:-1]])


def pool(seed: int, n: int = 12) -> list[Para]:
    """Paragraphs of 6-12 sentences of 4-14 random WORDS: the stuff of every prompt.

    Few and long, so that a prompt is a few long repeats that gzip finds in its window."""
    r = Random(f"{seed}:paragraphs")
    sentences = (r.choices(WORDS, _WEIGHTS, k=r.randint(4, 14)) for _ in itertools.count())
    return [Para.of(list(itertools.islice(sentences, r.randint(6, 12)))) for _ in range(n)]


def fill(r: Random, paras: Sequence[Para], n: int, head: Para | None = None) -> str:
    """Text of exactly ``n`` tokens: ``head`` (else a random paragraph from a random
    sentence on), then random paragraphs, the last one cut."""
    if head is None:
        p = r.choice(paras)
        head = p.tail(r.choice(p.starts))
    parts: list[str] = []
    p = head
    while n > 0:
        parts.append(p.text if len(p.units) <= n else "".join(p.units[:n]))
        n -= len(p.units)
        p = r.choice(paras)
    return _SEP.join(parts)


def truncate(r: Random, text: str) -> str:
    """The logged text cut to 35-65 % of its length (at a space), ending with TRUNCATED."""
    return text[: text.rfind(" ", 0, int(len(text) * r.uniform(0.35, 0.65)))] + TRUNCATED


def _hex(*parts: str, n: int = 12) -> str:
    return hashlib.blake2b("|".join(parts).encode(), digest_size=n).hexdigest()


class Recorder:
    """The recorded calls of a World, their exchanges and the token drifts injected."""

    def __init__(self, w: World) -> None:
        self.w, self.paras = w, pool(w.seed)
        self.calls = [c for c in w.calls if w.recorded(c)]  # w.calls is in time order
        self.sizes: dict[str, int] = {}  # prompt_hash -> prompt of its successful call
        self.shared: set[str] = set()  # prompt hashes of more than one call (retries)
        seen: set[str] = set()
        for c in w.calls:
            if c.prompt_hash in seen:
                self.shared.add(c.prompt_hash)
            seen.add(c.prompt_hash)
            if c.http_status == 200 and w.recorded(c):
                self.sizes.setdefault(c.prompt_hash, c.prompt)
        self.systems: dict[str, str] = {}  # prefix_hash -> system prompt
        self.drifts: dict[str, str] = {}  # request_id -> cause
        self.salts: dict[str, int] = {}  # prompt_hash -> the draw that made its prompt unique
        self.prompts: set[str] = set()
        self.epoch = int(dt.datetime.combine(w.start, dt.time(), dt.UTC).timestamp())

    def inject(self, labelled: set[str]) -> list[dict[str, Any]]:
        """Choose the calls of each DRIFTS cause among the longer unlabelled prompts; labels."""
        r = Random(f"{self.w.seed}:token-drift")
        labels: list[dict[str, Any]] = []
        for name, causes in DRIFTS.items():
            agent = WF[name].agents[-1]
            free = [
                c
                for c in self.calls
                if c.ctx.wf.name == name and c.http_status == 200 and c.request_id not in labelled
                and c.prompt_hash not in self.shared and c.prompt >= agent.prefix + agent.body
            ]  # fmt: skip
            for cause, n in causes.items():
                chosen = sorted(r.sample(free, min(n, len(free))), key=lambda c: c.ts)
                for c in chosen:
                    self.drifts[c.request_id] = cause
                    free.remove(c)
                if chosen:
                    labels.append({
                        "id": f"token_drift-{len(labels) + 1:03d}", "cause": cause,
                        "workflow": name, "provider": WF[name].provider,
                        "model": chosen[0].model, "calls": len(chosen),
                        "request_ids": [c.request_id for c in chosen],
                    })  # fmt: skip
        return labels

    def system(self, c: Call, tokens: int, intro: str) -> str:
        text = self.systems.get(c.prefix_hash)
        if text is None:
            r = Random(f"{self.w.seed}:{c.prefix_hash}")
            text = self.systems[c.prefix_hash] = fill(r, self.paras, tokens, paragraph(intro))
        return text

    def lines(self) -> list[str]:
        return [json.dumps(self.exchange(c), separators=(",", ":")) for c in self.calls]

    def exchange(self, c: Call) -> dict[str, Any]:
        x, wf = c.ctx, c.ctx.wf
        openai = wf.provider == "openai"
        drift = self.drifts.get(c.request_id)
        size = self.sizes.get(c.prompt_hash) or c.agent.prefix + c.agent.body
        salt = self.salts.get(c.prompt_hash)
        for k in itertools.count() if salt is None else (salt,):  # no prompt is repeated...
            r = Random(f"{self.w.seed}:{c.prompt_hash}:{k}")  # ... but by a retry
            body = (self.classify if openai else self.summary)(c, r, drift, size)
            key = _hex(json.dumps(body["messages"]))
            if salt is not None or key not in self.prompts:
                self.salts[c.prompt_hash] = k
                self.prompts.add(key)
                break
        meta = {
            "workflow": wf.name, "team": wf.team, "tenant": x.tenant, "agent": c.agent.name,
            "prompt_version": x.version, "environment": x.env, "project": wf.project,
            "session_id": x.session, "trace_id": x.trace,
        }  # fmt: skip
        if openai:
            body["user"], body["metadata"] = x.user, meta
        else:
            body["metadata"] = {"user_id": x.user, **meta}
        secs = self.epoch + c.ts // 1000
        response: dict[str, Any] = {
            "status": c.http_status,
            "date": email.utils.formatdate(secs, usegmt=True),
            "request_id": c.request_id,
        }
        if openai:
            response["headers"] = {"openai-processing-ms": str(c.latency)}
        response["body"] = self.answer(c, r, secs) if c.http_status == 200 else _error(c)
        host = "api.openai.com/v1/chat/completions" if openai else "api.anthropic.com/v1/messages"
        retries = {"x-stainless-retry-count": str(c.attempt - 1)}
        request = {"method": "POST", "uri": f"https://{host}", "headers": retries, "body": body}
        return {"request": request, "response": response}

    def classify(self, c: Call, r: Random, drift: str | None, size: int) -> dict[str, Any]:
        """A ticket-classify request whose local count is ``size`` (less a drift's)."""
        prefix, result = c.agent.prefix, r.randint(10, 30)
        system = self.system(c, prefix - _PER_MESSAGE - 1 - CLASSIFY_TOOLS_TOKENS, _CLASSIFY_INTRO)
        rest = size - prefix - _PER_MESSAGE - 1 - _PRIMING
        lookup = 2 * (_PER_MESSAGE + 1) + LOOKUP_TOKENS + result  # the call and its result
        tool_call = (drift == "tool schemas" or r.random() < 0.3) and rest > lookup
        text = fill(r, self.paras, rest - lookup * tool_call)
        if drift == "truncated log":
            text = truncate(r, text)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": text},
        ]
        if tool_call:
            call_id = "call_" + _hex(c.prompt_hash, "call")
            fn = {"name": "lookup_account", "arguments": lookup_args(c.ctx.tenant)}
            call = {"id": call_id, "type": "function", "function": fn}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": fill(r, self.paras, result)}
            )
        body: dict[str, Any] = {"model": c.model, "messages": messages}
        if drift != "tool schemas":
            body["tools"] = CLASSIFY_TOOLS
        return body | {"max_completion_tokens": 64}

    def summary(self, c: Call, r: Random, drift: str | None, size: int) -> dict[str, Any]:
        """A ticket-summary request whose reference count is ~``size`` / RATIO."""
        noise = max(-CLIP, min(CLIP, r.gauss(0, 1))) * NOISE if drift is None else 0.0
        size -= IMAGE_TOKENS if drift == "images or files" else 0
        tokens = round(c.agent.prefix / RATIO) - _PER_MESSAGE - 1 - SUMMARY_TOOLS_TOKENS
        system: dict[str, Any] = {"type": "text", "text": self.system(c, tokens, _SUMMARY_INTRO)}
        if not c.nocache:
            system["cache_control"] = {"type": "ephemeral"}
        rest = round(size / (RATIO * math.exp(noise))) - 2 * (_PER_MESSAGE + 1) - _PRIMING
        rest -= tokens + SUMMARY_TOOLS_TOKENS
        text = fill(r, self.paras, rest, paragraph(_SUMMARY_ASK))
        if drift == "truncated log":
            text = truncate(r, text)
        content: Any = text
        if drift == "images or files":
            url = f"https://files.{c.ctx.tenant}.example/tickets/{_hex(c.request_id)}.png"
            image = {"type": "image", "source": {"type": "url", "url": url}}
            content = [image, {"type": "text", "text": text}]
        return {
            "model": c.model,
            "max_tokens": 1024,
            "system": [system],
            "tools": SUMMARY_TOOLS,
            "tool_choice": {"type": "tool", "name": "save_summary"},
            "messages": [{"role": "user", "content": content}],
        }

    def answer(self, c: Call, r: Random, secs: int) -> dict[str, Any]:
        """The body of a successful response, its usage the call's tokens."""
        if c.ctx.wf.provider == "openai":
            label = {"category": r.choice(("billing", "shipping", "login", "product", "other"))}
            label["priority"] = r.choice(("low", "medium", "high"))
            message = {"role": "assistant", "content": json.dumps(label)}
            prompt = c.input + c.cache_read
            return {
                "id": "chatcmpl-" + _hex(c.request_id, "chat", n=15),
                "object": "chat.completion", "created": secs, "model": c.model,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": prompt, "completion_tokens": c.output,
                    "total_tokens": prompt + c.output,
                    "prompt_tokens_details": {"cached_tokens": c.cache_read},
                    "completion_tokens_details": {"reasoning_tokens": c.reasoning},
                },
            }  # fmt: skip
        summary = {
            "summary": fill(r, self.paras, max(1, c.output - 24)),
            "sentiment": r.choice(("positive", "neutral", "negative")),
        }
        tool = {"type": "tool_use", "id": "toolu_" + _hex(c.request_id, "tool"),
                "name": "save_summary", "input": summary}  # fmt: skip
        return {
            "id": "msg_" + _hex(c.request_id, "msg"), "type": "message", "role": "assistant",
            "model": c.model, "content": [tool], "stop_reason": "tool_use",
            "usage": {
                "input_tokens": c.input, "cache_read_input_tokens": c.cache_read,
                "cache_creation_input_tokens": c.cache_write + c.cache_write_1h,
                "cache_creation": {"ephemeral_5m_input_tokens": c.cache_write,
                                   "ephemeral_1h_input_tokens": c.cache_write_1h},
                "output_tokens": c.output,
            },
        }  # fmt: skip


_OPENAI_ERRORS = {
    429: ("requests", "Rate limit reached for requests per min. Please try again later."),
    500: ("server_error", "The server had an error while processing your request."),
    503: ("server_error", "The service is temporarily unavailable. Please try again later."),
}
_ANTHROPIC_ERRORS = {429: "Number of requests has exceeded your rate limit.", 529: "Overloaded"}


def _error(c: Call) -> dict[str, Any]:
    """The error body of a failed call, whose code (or type) is the call's error_type."""
    err = c.error_type or "api_error"
    if c.ctx.wf.provider == "openai":
        kind, message = _OPENAI_ERRORS.get(c.http_status, ("server_error", "Server error."))
        code = None if err == kind else err
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
    message = _ANTHROPIC_ERRORS.get(c.http_status, "Internal server error")
    return {"type": "error", "error": {"type": err, "message": message}}


def _gzip(path: Path, lines: list[str]) -> None:
    """JSON lines, gzip-compressed with a fixed mtime: the same bytes every run."""
    with open(path, "wb") as raw, gzip.GzipFile(path.name[:-3], "wb", 6, raw, 0) as f:
        f.write(("\n".join(lines) + "\n").encode())


def write(out: Path, w: World, labelled: set[str]) -> tuple[list[Path], int, dict[str, Any]]:
    """Write the exchanges and their outcomes under ``out/logs``; the files, the number of
    calls, the labels (``exchanges``, ``token_drift``). ``labelled``: ids of drain calls."""
    rec = Recorder(w)
    if not rec.calls:
        return [], 0, {}
    drifts = rec.inject(labelled)
    files = [out / "logs" / EXCHANGES_NAME]
    _gzip(files[0], rec.lines())
    outcomes = [{"request_id": c.request_id, "outcome": c.outcome} for c in rec.calls]
    if any(o["outcome"] for o in outcomes):
        files.append(out / "logs" / OUTCOMES_NAME)
        _gzip(files[1], [json.dumps(o) for o in outcomes if o["outcome"]])
    per_wf: dict[str, list[Call]] = {}
    for c in rec.calls:
        per_wf.setdefault(c.ctx.wf.name, []).append(c)
    workflows = {
        name: {
            "provider": calls[0].ctx.wf.provider,
            "models": sorted({c.model for c in calls}),
            "from": w.iso(w.logged_ts(calls[0]))[:10],
            "calls": len(calls),
        }
        for name, calls in per_wf.items()
    }
    info = {
        "file": f"logs/{EXCHANGES_NAME}",
        "outcomes_file": f"logs/{OUTCOMES_NAME}" if len(files) > 1 else None,
        "workflows": workflows,
        "reference_ratio": {"ticket-summary": RATIO, "noise_sd": NOISE},
        "product_name": CANARY,
    }
    return files, len(rec.calls), {"exchanges": info, "token_drift": drifts}


_WHAT = {
    "tool schemas": "the log dropped the tools array of a conversation with tool calls "
    "(the provider counted the tools)",
    "images or files": f"an image in the user message, which the provider counted "
    f"({IMAGE_TOKENS} tokens) and a local count cannot",
    "truncated log": f"the logged prompt was cut and ends with `{TRUNCATED}`",
}
_PROVIDERS = {"openai": "OpenAI", "anthropic": "Anthropic"}


def _wrap(text: str, indent: str = "") -> str:
    """``text`` filled to 90 columns, never breaking inside `code`."""
    parts = text.split("`")
    parts[1::2] = [p.replace(" ", "\0") for p in parts[1::2]]
    filled = textwrap.fill("`".join(parts), 90, subsequent_indent=indent, break_on_hyphens=False)
    return filled.replace("\0", " ")


def readme(tokens: dict[str, Any] | None, calls: int) -> str:
    """The README.md section on the recorded exchanges ("" when there are none)."""
    if not tokens:
        return ""
    info = tokens["exchanges"]
    which = " and ".join(
        f"{name} ({_PROVIDERS[d['provider']]} {', '.join(f'`{m}`' for m in d['models'])}; "
        f"{d['calls']} calls from {d['from']})"
        for name, d in info["workflows"].items()
    )
    drifts = "\n".join(
        _wrap(f"- {d['cause']} ({d['workflow']}, {d['calls']} calls): {_WHAT[d['cause']]}", "  ")
        for d in tokens["token_drift"]
    )
    outcomes = f", their outcomes in `{info['outcomes_file']}`" if info["outcomes_file"] else ""
    intro = _wrap(
        f"The support gateway records whole exchanges, prompt text included, for {which}. "
        f"These {calls} calls are in `{info['file']}` (request/response pairs, the "
        f"`openai-logs` format){outcomes}, instead of the native logs: the same calls, but "
        "timestamps to the second and attempts not numbered (an HTTP exchange has neither). "
        "`tokenaudit reconcile --tokens` compares the providers' input counts with counts of "
        "that text tokenized at ingest: ticket-classify's equal them exactly; Claude has no "
        "public tokenizer, so ticket-summary is counted with `o200k_base` and reported about "
        f"{RATIO}x that (noise {NOISE:.1%}), a ratio the calibration learns from the data. "
        "Token drifts injected on purpose (the billed tokens unchanged), listed under "
        "`token_drift` in `ground-truth.labels.json`:"
    )
    canary = _wrap(
        f"Every system prompt names the product {info['product_name']}, a word found nowhere "
        "else in the data: no prompt text is stored, so it is not in the database after ingest."
    )
    return f"\n{intro}\n\n{drifts}\n\n{canary}\n"
