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

import pytest

from sopilot.core.settings import ROOT

lexicon_module = importlib.import_module("sopilot.guard.lexicon")
deny = importlib.import_module("sopilot.guard.deny")
internal = importlib.import_module("sopilot.guard.internal")


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setattr(lexicon_module, "CACHE_DIR", folder)
    return folder


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
