"""Protect spans that must survive translation verbatim (sPhinX-style selective translation).

`mask` replaces code blocks, inline code, URLs, math, numbers and listed terms by numbered placeholders; `restore`
puts the original bytes back after translation. A translation that lost, duplicated or invented a placeholder raises
`PlaceholderError`, so the example is quarantined with the reason instead of being emitted broken.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# Priority order matters: a URL inside a code block belongs to the code block.
KINDS: dict[str, str] = {
    "code_block": r"```.*?```|~~~.*?~~~",
    "inline_code": r"`[^`\n]+`",
    "url": r"(?:https?|ftp)://[^\s<>\"'`)\]]+[^\s<>\"'`)\].,;:!?]|www\.[^\s<>\"'`)\]]+[^\s<>\"'`)\].,;:!?]",
    "math": r"\$\$.+?\$\$|\$[^$\n]+\$|\\\(.+?\\\)|\\\[.+?\\\]",
    "number": r"(?<![\w.])[-+]?\d+(?:[.,:/]\d+)*%?(?![\w])",
}
DEFAULT_KINDS = ("code_block", "inline_code", "url", "math", "number")
PLACEHOLDER = "⟦{}⟧"  # brackets no tokenizer merges with letters; format with the span index
_PH_RE = re.compile(r"⟦(\d+)⟧")


class PlaceholderError(ValueError):
    """A placeholder did not survive translation (or the source already contained one)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class Masked:
    text: str  # the text with placeholders
    spans: list[str] = field(default_factory=list)  # spans[i] is what placeholder i stands for
    kinds: list[str] = field(default_factory=list)


def _pattern(kinds: Iterable[str], terms: Iterable[str]) -> re.Pattern:
    parts = []
    for kind in kinds:
        if kind == "terms":
            continue
        if kind not in KINDS:
            raise ValueError(f"unknown protected span kind {kind!r}; expected one of {', '.join([*KINDS, 'terms'])}")
        parts.append(f"(?P<{kind}>{KINDS[kind]})")
    terms = sorted({t for t in terms if t.strip()}, key=len, reverse=True)
    if terms:  # before numbers: a term like "GPT-4" must stay whole
        alt = "|".join(re.escape(t) for t in terms)
        parts.insert(len(parts) - ("number" in kinds), rf"(?P<terms>(?<!\w)(?:{alt})(?!\w))")
    return re.compile("|".join(parts), re.DOTALL)


def mask(text: str, kinds: Iterable[str] = DEFAULT_KINDS, terms: Iterable[str] = ()) -> Masked:
    if _PH_RE.search(text):
        raise PlaceholderError("placeholder_collision", "the source text already contains a placeholder marker")
    kinds = list(kinds)
    pattern = _pattern(kinds, terms)
    out, spans, found = [], [], []
    last = 0
    for m in pattern.finditer(text):
        out.append(text[last:m.start()])
        out.append(PLACEHOLDER.format(len(spans)))
        spans.append(m.group(0))
        found.append(m.lastgroup or "")
        last = m.end()
    out.append(text[last:])
    return Masked("".join(out), spans, found)


def restore(translated: str, spans: list[str]) -> str:
    """Put the spans back byte-for-byte. Every placeholder must occur exactly once, and no unknown one may appear."""
    seen = [int(x) for x in _PH_RE.findall(translated)]
    missing = [i for i in range(len(spans)) if i not in seen]
    duplicated = sorted({i for i in seen if seen.count(i) > 1})
    unknown = sorted({i for i in seen if i >= len(spans)})
    if missing or duplicated or unknown:
        parts = []
        for label, ids in (("missing", missing), ("duplicated", duplicated), ("unknown", unknown)):
            if ids:
                parts.append(f"{label} {', '.join(PLACEHOLDER.format(i) for i in ids)}")
        raise PlaceholderError("placeholder_lost", "; ".join(parts))
    return _PH_RE.sub(lambda m: spans[int(m.group(1))], translated)
