"""The compiled-form cache (`guard.compiled.cached_compile`) returns what a fresh build returns, and never less.

A cached lexicon or policy set must equal the one validated and compiled from the YAML; a corrupt, stale or
foreign cache file is rebuilt; an invalid data file raises on every run (its error is never cached).
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
from pathlib import Path

import pytest

from sopilot.core.errors import ConfigError
from sopilot.core.settings import ROOT

lexicon_module = importlib.import_module("sopilot.guard.lexicon")
compiled = importlib.import_module("sopilot.guard.compiled")
policy_module = importlib.import_module("sopilot.guard.policy")


def _fields(lexicon) -> dict:
    return {f.name: getattr(lexicon, f.name) for f in dataclasses.fields(lexicon)}


def test_a_cached_lexicon_equals_the_built_one(cache_dir: Path) -> None:
    source = lexicon_module.LEXICON_FILE.resolve()
    built = lexicon_module._build(source)
    first = compiled.cached_compile("lexicon", (source,), lambda: lexicon_module._build(source))
    assert list(cache_dir.glob("sopilot-lexicon-*.pickle"))
    again = compiled.cached_compile("lexicon", (source,), lambda: pytest.fail("the cache was not read"))
    for overrides, lexicon in (first, again):
        assert overrides == built[0]
        assert _fields(lexicon) == _fields(built[1])


def test_a_cached_policy_set_equals_the_built_one(cache_dir: Path) -> None:
    source = (ROOT / "knowledge" / "policies.yaml").resolve()
    built = policy_module._build(source)
    sources = (source, lexicon_module.LEXICON_FILE.resolve())
    policy_module._load.cache_clear()
    assert policy_module._load(str(source), 0, 0) == built
    assert compiled.cached_compile("policies", sources, lambda: pytest.fail("the cache was not read")) == built
    policy_module._load.cache_clear()


def test_corrupt_and_stale_cache_files_are_rebuilt(cache_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("a: 1\n", encoding="utf-8")
    assert compiled.cached_compile("test", (data,), lambda: "first") == "first"
    (file,) = cache_dir.glob("sopilot-test-*.pickle")
    file.write_bytes(b"not a pickle")
    assert compiled.cached_compile("test", (data,), lambda: "rebuilt") == "rebuilt"
    file.write_bytes(pickle.dumps(("another key", "stale")))
    assert compiled.cached_compile("test", (data,), lambda: "fresh") == "fresh"
    data.write_text("a: 2\n", encoding="utf-8")  # the data changed: the old form is not reused
    assert compiled.cached_compile("test", (data,), lambda: "changed") == "changed"


def test_an_unwritable_cache_only_costs_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setattr(compiled, "CACHE_DIR", blocker / "cache")  # a folder under a file cannot be made
    data = tmp_path / "data.yaml"
    data.write_text("a: 1\n", encoding="utf-8")
    assert compiled.cached_compile("test", (data,), lambda: "built") == "built"


def test_an_invalid_file_raises_on_every_run(cache_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "policies.yaml"
    broken.write_text("version: 1\ndocument: x\nthresholds: {}\npolicies: {A.1: {title: t}}\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(ConfigError, match="cite"):
            policy_module.load_policies(broken)
        policy_module._load.cache_clear()
    assert not list(cache_dir.glob("sopilot-policies-*.pickle"))


def test_old_cache_files_are_pruned(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "_CACHE_FILES", 3)
    for n in range(6):
        data = tmp_path / f"data{n}.yaml"
        data.write_text(f"a: {n}\n", encoding="utf-8")
        compiled.cached_compile("test", (data,), lambda n=n: n)
    assert len(list(cache_dir.glob("sopilot-*.pickle"))) == 3


def test_the_lexicon_schema_still_names_what_is_wrong(cache_dir: Path, tmp_path: Path) -> None:
    """The schema is built only when a file is validated; it still refuses unknown keys and empty frames."""
    text = lexicon_module.LEXICON_FILE.read_text(encoding="utf-8")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(text.replace("cues:", "surprise: 1\ncues:", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="surprise: unknown key"):
        lexicon_module.load_lexicon(unknown)
    empty = tmp_path / "empty.yaml"
    empty.write_text(text.replace("commitments:", "commitments: []\nunused_commitments:", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="commitments: List should have at least 1 item"):
        lexicon_module.load_lexicon(empty)
    assert not list(cache_dir.glob("sopilot-lexicon-*.pickle"))
