"""Data files read once and kept compiled between runs, so a one-ticket `sopilot guard` run stays light.

Validating and compiling the guard's YAML (lexicon, policies, default-deny vocabulary, the knowledge files'
internal lines) costs more than the rest of a one-ticket run. Its result depends only on the files' bytes and
the code, so `cached_compile` keeps it beside the bytecode, keyed by the SHA-256 of both (safe to delete).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import snowballstemmer
import yaml

from sopilot.core.errors import ConfigError

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: the same data, read faster


def read_yaml(path: Path) -> Any:
    """The YAML document at `path`, read with libyaml where it is installed (the same data, several times faster)."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)


T = TypeVar("T")
CACHE_DIR = Path(__file__).with_name("__pycache__")
"""Where compiled vocabularies and policy sets are kept between runs (beside the bytecode; safe to delete)."""
_CACHE_FILES = 32
"""At most this many cache files are kept (one per data file and code version): the oldest beyond it are removed."""


def _proxy(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    """A read-only mapping, rebuilt from a cache file (the compiled forms hold them; pickle cannot)."""
    return MappingProxyType(items)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is MappingProxyType:
            return _proxy, (dict(obj),)
        return NotImplemented


@functools.lru_cache(maxsize=1)
def _code_version() -> bytes:
    """A digest of the code that compiles the data and defines its classes, and of the interpreter and stemmer.

    The guard and core modules are read whole: a compiled form is reused only by the code that made it.
    """
    digest = hashlib.sha256(f"{sys.version}|{pickle.HIGHEST_PROTOCOL}|{snowballstemmer.__file__}".encode())
    for folder in (Path(__file__).parent, Path(sys.modules[ConfigError.__module__].__file__ or "").parent):
        for source in sorted(folder.glob("*.py")):
            digest.update(source.name.encode())
            digest.update(source.read_bytes())
    return digest.digest()


def cached_compile(kind: str, sources: tuple[Path, ...], build: Callable[[], T]) -> T:
    """`build()`, or the form an earlier run built from the same bytes of `sources` with the same code.

    Validating and compiling the YAML data costs more than the rest of a one-ticket run; its result depends
    only on the files' bytes and the code, so it is kept in `CACHE_DIR`, keyed by the SHA-256 of both. A
    missing, stale, corrupt or unreadable cache file is rebuilt silently (and an unwritable folder only
    costs the rebuild). Errors in the data are never cached: `build` raises them on every run.
    """
    digest = hashlib.sha256(_code_version())
    for source in sources:
        digest.update(str(source).encode())
        digest.update(source.read_bytes())
    key = digest.hexdigest()
    name = hashlib.sha256(f"{kind}|{'|'.join(map(str, sources))}|{_code_version().hex()}".encode()).hexdigest()[:20]
    file = CACHE_DIR / f"sopilot-{kind}-{name}.pickle"
    try:
        stored_key, value = pickle.loads(file.read_bytes())
        if stored_key == key:
            return value
    except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt, never trusted
        pass
    value = build()
    try:
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump((key, value))
        CACHE_DIR.mkdir(exist_ok=True)
        partial = file.with_name(f"{file.name}.{os.getpid()}.tmp")
        partial.write_bytes(buffer.getvalue())
        os.replace(partial, file)  # readers see the old file or the whole new one
        kept = sorted(CACHE_DIR.glob("sopilot-*.pickle"), key=lambda f: f.stat().st_mtime_ns, reverse=True)
        for old in kept[_CACHE_FILES:]:
            old.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - a cache that cannot be written is only a slower start
        pass
    return value
