"""One normalization of model names, so every source lines up with the catalogue.

Sources spell the same model many ways: ``gpt-4o-mini`` and ``gpt-4o-mini-2024-07-18``,
``openai/gpt-4o`` (gateway prefixes), Bedrock ARNs and region profiles
(``arn:aws:bedrock:us-west-2:1:inference-profile/us.anthropic.claude-3-7-sonnet-20250219-v1:0``),
Vertex resource paths (``projects/p/locations/l/publishers/google/models/gemini-1.5-pro``)
and ``@`` versions (``claude-3-5-sonnet@20240620``). ``candidates`` yields the
names to try against the catalogue, most specific first, with a provider hint.
"""

from __future__ import annotations

import re

PROVIDER_ALIASES = {
    "openai": "openai",
    "azure": "azure",
    "azure_openai": "azure",
    "azure.ai.openai": "azure",
    "anthropic": "anthropic",
    "bedrock": "aws",
    "aws.bedrock": "aws",
    "aws": "aws",
    "vertex_ai": "google",
    "vertex": "google",
    "gcp.vertex_ai": "google",
    "gcp.gemini": "google",
    "gemini": "google",
    "google": "google",
    "mistral": "mistral",
    "mistral_ai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "cohere": "cohere",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "openrouter": "openrouter",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
}

_BEDROCK_VENDOR = re.compile(
    r"^(?:(?:us|eu|apac|global|au|jp|ca)\.)?(?:anthropic|meta|amazon|mistral|cohere|ai21|deepseek)\."
)


def provider_hint(provider: str | None, model: str = "") -> str | None:
    """The catalogue's provider id for ``provider``; for none, one the model's name implies."""
    if not provider:
        # OpenAI fine-tunes ("ft:gpt-4o-mini-2024-07-18:org::id") are only found under openai.
        return "openai" if model.strip().startswith("ft:") else None
    return PROVIDER_ALIASES.get(provider.strip().lower(), provider.strip().lower())


_CLAUDE_DISPLAY = re.compile(r"claude-(opus|sonnet|haiku)-(\d+)(?:[.-](\d+))?$")


def _display_names(name: str) -> list[str]:
    """Ids for a display name as billing consoles write it ("Claude Opus 4.5",
    "Claude Haiku 3.5", "GPT-4o mini"): lower case, words joined by hyphens; Claude 3.x
    ids put the version first (claude-3-5-haiku)."""
    slug = re.sub(r"\s+", "-", name.strip().lower())
    out = [slug]
    m = _CLAUDE_DISPLAY.match(slug)
    if m:
        family, major, minor = m.groups()
        version = f"{major}-{minor}" if minor else major
        out.append(f"claude-{family}-{version}")
        if int(major) < 4:
            out.append(f"claude-{version}-{family}")
    return out


def candidates(model: str) -> list[str]:
    """Names to look up for ``model``, most specific first (deduplicated)."""
    name = model.strip()
    out: list[str] = []

    def add(value: str) -> None:
        value = value.strip()
        if value and value.lower() not in (o.lower() for o in out):
            out.append(value)

    add(name)
    if " " in name.strip():
        for display in _display_names(name):
            add(display)
    if name.startswith("arn:") and "/" in name:
        name = name.rsplit("/", 1)[1]
    if "/models/" in name:
        name = name.rsplit("/models/", 1)[1]
    if name.startswith("models/"):
        name = name[len("models/") :]
    if "/" in name:
        name = name.rsplit("/", 1)[1]
    add(name)
    stripped = _BEDROCK_VENDOR.sub("", name)
    stripped = re.sub(r"-v\d+(:\d+)?$", "", stripped)
    stripped = re.sub(r":\d+$", "", stripped)
    add(stripped)
    if "@" in stripped:
        base, _, version = stripped.partition("@")
        add(f"{base}-{version}" if version and version != "latest" else base)
        add(base)
    # Fine-tuned models ("ft:gpt-4o-mini-2024-07-18:org::id") cost more than their base,
    # so never fall back to the base name: the catalogue prices the fine-tunes it knows
    # by their full name; the others stay unpriced unless a price file names them.
    if model.strip().startswith("ft:"):
        return [model.strip()]
    return out
