"""One ingest at a time per index, with a lock that a killed process does not hold forever.

For the embedded index the lock is an advisory `flock` on `data_dir/ingest.lock` (through
`filelock`): the kernel releases it when the holding process dies, however it dies. For a Chroma
server, whose writers may run on other machines, the lock is a lease written into the pointer
collection's metadata: its holder renews it while it works, and a lease not renewed within
`LEASE_SECONDS` (the holder was killed) may be taken over. A second ingest waits up to
`ingest_wait` seconds, then gives up with `IngestBusyError` (exit 2) naming the holder.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator

from sopilot.core.errors import IngestBusyError
from sopilot.core.settings import Settings

LEASE_SECONDS = 120.0
"""How long a server lease lasts without renewal."""


class Lease:
    """A held ingest lock; `renew()` keeps a server lease alive during long work."""

    def __init__(self, store=None, owner: str = "") -> None:
        self._store = store
        self.owner = owner

    def renew(self) -> None:
        """Extend a server lease (nothing to do for the file lock, which lives as long as the process)."""
        if self._store is not None:
            self._store.set_pointer(lock_owner=self.owner, lock_until=time.time() + LEASE_SECONDS)


def _holder_text(path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def _file_lock(settings: Settings, wait: float) -> Iterator[Lease]:
    from filelock import FileLock, Timeout

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "ingest.lock"
    holder = settings.data_dir / "ingest.lock.holder"
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=max(wait, 0.0), poll_interval=0.2)
    except Timeout:
        raise IngestBusyError(
            f"another ingest of {settings.data_dir} is running ({_holder_text(holder)}) and did not finish within "
            f"{wait:g} s: wait for it, or raise SOPILOT_INGEST_WAIT.") from None
    try:
        holder.write_text(f"pid {os.getpid()} on {socket.gethostname()}, since "
                          f"{time.strftime('%H:%M:%S')}", encoding="utf-8")
        yield Lease()
    finally:
        with contextlib.suppress(OSError):
            holder.write_text("", encoding="utf-8")
        lock.release()


@contextlib.contextmanager
def _server_lease(settings: Settings, store, wait: float) -> Iterator[Lease]:
    owner = f"pid {os.getpid()} on {socket.gethostname()} ({uuid.uuid4().hex[:8]})"
    deadline = time.monotonic() + max(wait, 0.0)
    while True:
        pointer = store.pointer()
        held_by, until = pointer.get("lock_owner") or "", float(pointer.get("lock_until") or 0)
        if not held_by or held_by == owner or until < time.time():
            store.set_pointer(lock_owner=owner, lock_until=time.time() + LEASE_SECONDS)
            time.sleep(0.2)  # a rival that wrote at the same moment is seen on the re-read
            if store.pointer().get("lock_owner") == owner:
                break
            continue
        if time.monotonic() >= deadline:
            raise IngestBusyError(
                f"another ingest of the index at {settings.chroma_url} is running ({held_by}) and did not finish "
                f"within {wait:g} s: wait for it, or raise SOPILOT_INGEST_WAIT.")
        time.sleep(0.5)
    try:
        yield Lease(store, owner)
    finally:
        with contextlib.suppress(Exception):  # a lease left behind expires by itself
            if store.pointer().get("lock_owner") == owner:
                store.set_pointer(lock_owner="", lock_until=0.0)


@contextlib.contextmanager
def ingest_lock(settings: Settings, store=None, *, wait: float | None = None) -> Iterator[Lease]:
    """Hold the index's ingest lock for the duration of the block; raise `IngestBusyError` after `wait` s."""
    wait = settings.ingest_wait if wait is None else wait
    if settings.chroma_url:
        with _server_lease(settings, store, wait) as lease:
            yield lease
    else:
        with _file_lock(settings, wait) as lease:
            yield lease
