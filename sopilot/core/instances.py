"""One instance per key in a process, made on first use: a database engine per URL, for example.

The audit log, the key store and the service store each open one engine per database URL and share
it across threads; this is that cache, written once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerKey(Generic[T]):
    """A thread-safe map from key to the instance `make(key)` built for it."""

    def __init__(self, make: Callable[[str], T]) -> None:
        self._make = make
        self._items: dict[str, T] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> T:
        """The instance for `key`, made on first use."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = self._make(key)
            return item
