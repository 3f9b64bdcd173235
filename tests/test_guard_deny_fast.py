"""The default-deny reading's fast forms equal the slow computations they replace.

The vocabulary and the knowledge files' internal lines are kept compiled between runs (`cached_compile`): a
cached form must equal a fresh build, and reading it must not load pydantic.
"""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

from sopilot.core.settings import ROOT

lexicon_module = importlib.import_module("sopilot.guard.lexicon")
compiled = importlib.import_module("sopilot.guard.compiled")
deny = importlib.import_module("sopilot.guard.deny")
internal = importlib.import_module("sopilot.guard.internal")


def _fields(data: object) -> dict:
    return {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}  # type: ignore[arg-type]


def test_a_cached_vocabulary_equals_the_built_one(cache_dir: Path) -> None:
    built = deny._build(deny.DENY_FILE)
    deny.load_deny.cache_clear()
    try:
        first = deny.load_deny(deny.DENY_FILE)
        assert list(cache_dir.glob("sopilot-deny-*.pickle"))
        deny.load_deny.cache_clear()
        again = deny.load_deny(deny.DENY_FILE)
    finally:
        deny.load_deny.cache_clear()
    assert again is not first
    assert _fields(first) == _fields(built) == _fields(again)


def test_cached_internal_lines_equal_the_built_ones(cache_dir: Path) -> None:
    root = ROOT / "knowledge"
    built = internal._build(sorted(root.glob("*.md")), root / "policies.yaml")
    internal.internal_data.cache_clear()
    try:
        first = internal.internal_data(str(root))
        internal.internal_data.cache_clear()
        again = internal.internal_data(str(root))
    finally:
        internal.internal_data.cache_clear()
    assert list(cache_dir.glob("sopilot-internal-*.pickle"))
    assert first == built == again and built[0]


def test_a_changed_knowledge_file_is_read_again(cache_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "kb"
    root.mkdir()
    (root / "a.md").write_text("- **ACTION:** hand it over\n", encoding="utf-8")
    internal.internal_data.cache_clear()
    assert internal.internal_data(str(root))[1] == frozenset({"ACTION"})
    (root / "a.md").write_text("- **APPROVAL:** required\n", encoding="utf-8")
    internal.internal_data.cache_clear()
    assert internal.internal_data(str(root))[1] == frozenset({"APPROVAL"})
    internal.internal_data.cache_clear()


def test_a_cached_run_loads_no_pydantic() -> None:
    code = ("import sys\nfrom sopilot.guard.deny import load_deny\nfrom sopilot.guard.internal import internal_data\n"
            "from sopilot.core.settings import ROOT\nload_deny(); internal_data(str(ROOT / 'knowledge'))\n"
            "print('pydantic' in sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)  # fills the cache
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"


# ---- the per-reply fast paths, held to the slow computations they replace --------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORDS = st.sampled_from(["we", "'ll", "the", "$", "charg", "back", "onc", "you", "team", "approv", "who", "will",
                          "have", "it", "today", "within", "2", "hour", "account", "is", "readi", "not", "may",
                          "refund", "your", "fee", "been", "has", "if", "whether", "our", "bill", "payment", "plan"])


def _slow_spans(phrases, stems: list[str], start: int, stop: int) -> list[tuple[int, int]]:
    """Every occurrence in `stems[start:stop]`, the longest phrase at each position, by a plain scan."""
    found = []
    for i in range(start, stop):
        for candidate in phrases.index.get(stems[i], ()):
            if i + len(candidate) <= stop and tuple(stems[i:i + len(candidate)]) == candidate:
                found.append((i, i + len(candidate)))
                break
    return found


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, max_size=30), st.integers(0, 30), st.integers(0, 35))
def test_phrase_spans_equal_a_plain_scan(stems: list[str], start: int, end: int) -> None:
    data = deny.load_deny()
    for name in ("money", "money_compounds", "future", "perfect", "cues", "team", "review", "account_objects"):
        phrases = getattr(data, name)
        full = _slow_spans(phrases, stems, 0, len(stems))
        assert phrases.spans(stems) == full
        assert phrases.spans(list(stems), start, end) == [(i, j) for i, j in full if i >= start and j <= end]


def _slow_main_verb(stems: list[str], data) -> int | None:
    starts = [i + 1 for i, word in enumerate(stems) if word in data.writer][:1]
    for phrases in (data.future, data.perfect):
        starts += [end for _, end in _slow_spans(phrases, stems, 0, len(stems))][:1]
    if not starts:
        return None
    at = min(starts)
    while at < len(stems) and stems[at] in deny._SKIP:
        at += 1
    return at if at < len(stems) else None


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, max_size=30))
def test_the_main_verb_equals_the_plain_scan(stems: list[str]) -> None:
    data = deny.load_deny()
    assert deny._main_verb(stems, set(stems), data) == _slow_main_verb(stems, data)


def _slow_rule_run(stems: list[str], shingles: frozenset[tuple[str, ...]]) -> int | None:
    """Where the first run of RUN shared shingles ends, word by word."""
    run = 0
    for i in range(len(stems) - internal.SHINGLE + 1):
        run = run + 1 if tuple(stems[i:i + internal.SHINGLE]) in shingles else 0
        if run >= internal.RUN:
            return i
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=40))
def test_the_rule_text_scan_equals_the_word_by_word_scan(stems: list[str]) -> None:
    shingles = frozenset({("a",) * 6, ("a", "a", "a", "a", "a", "b"), ("a", "a", "a", "a", "b", "c"),
                          ("a", "a", "a", "b", "c", "d"), ("a", "a", "b", "c", "d", "a"), ("b",) * 6})
    assert internal._rule_run(stems, shingles) == _slow_rule_run(stems, shingles)
