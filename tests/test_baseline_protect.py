"""Protected spans (sPhinX selective translation): masked before translation, restored byte-for-byte after; a lost,
duplicated, invented or damaged placeholder raises, and the stage quarantines the example instead of emitting it."""

from __future__ import annotations

import pytest

from mlift.baselines.protect import DEFAULT_KINDS, PlaceholderError, mask, restore

KINDS = (*DEFAULT_KINDS, "terms")

SAMPLES = [
    "Use `pip install -U mlift` and read https://example.org/docs?page=2&x=1 for details.",
    "Solve $x^2 + 3x - 4 = 0$ and $$\\int_0^1 f(x)\\,dx$$ then report 12.5% of 1,000.",
    "Here is code:\n```python\ndef f(x):\n\treturn x  \n\n    # trailing spaces and tabs kept\n```\nThat was Python.",
    "Version 3.10.2 of JavaScript tooling at www.node.dev/äöü-path costs 42€; ratio 3/4 at 10:30.",
    "No protected span at all in this sentence.",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_mask_then_restore_is_byte_identical(text):
    m = mask(text, KINDS, terms=["Python", "JavaScript"])
    assert "`" not in m.text and "https://" not in m.text and "```" not in m.text
    assert restore(m.text, m.spans).encode("utf-8") == text.encode("utf-8")


def test_restore_after_a_translation_that_moves_placeholders():
    text = "Run `make test` in 3 minutes, see https://ci.example.com/run/7."
    m = mask(text, KINDS)
    assert m.kinds == ["inline_code", "number", "url"]
    # A French translation that reorders the sentence around the placeholders (what MT systems do).
    translated = "Voir ⟦2⟧ : lancez ⟦0⟧ en ⟦1⟧ minutes."
    assert restore(translated, m.spans) == "Voir https://ci.example.com/run/7 : lancez `make test` en 3 minutes."


def test_terms_are_kept_whole_and_only_on_word_boundaries():
    m = mask("GPT-4 beats GPT-40 and Pythonic Python.", ("terms",), terms=["GPT-4", "Python"])
    assert m.spans == ["GPT-4", "Python"]
    assert m.text == "⟦0⟧ beats GPT-40 and Pythonic ⟦1⟧."


@pytest.mark.parametrize("damaged, what", [
    ("Lancez ⟦0⟧ en minutes, voir ⟦2⟧.", "missing ⟦1⟧"),  # a placeholder dropped
    ("Lancez ⟦0⟧ ⟦0⟧ en ⟦1⟧ minutes, voir ⟦2⟧.", "duplicated ⟦0⟧"),  # duplicated
    ("Lancez ⟦0⟧ en ⟦1⟧ minutes, voir ⟦2⟧ et ⟦7⟧.", "unknown ⟦7⟧"),  # invented
    ("Lancez [0] en ⟦1⟧ minutes, voir ⟦2⟧.", "missing ⟦0⟧"),  # brackets mangled by the translator
    ("Lancez ⟦ 0 ⟧ en ⟦1⟧ minutes, voir ⟦2⟧.", "missing ⟦0⟧"),  # spaces inserted inside
])
def test_restore_refuses_damaged_placeholders(damaged, what):
    m = mask("Run `make test` in 3 minutes, see https://ci.example.com/run/7.", KINDS)
    with pytest.raises(PlaceholderError) as err:
        restore(damaged, m.spans)
    assert err.value.reason == "placeholder_lost"
    assert what in err.value.detail


def test_source_that_already_contains_a_marker_is_refused():
    with pytest.raises(PlaceholderError) as err:
        mask("literal ⟦0⟧ in the source", KINDS)
    assert err.value.reason == "placeholder_collision"
