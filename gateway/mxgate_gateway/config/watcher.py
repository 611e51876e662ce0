"""Watch files the kubelet way: poll resolved path + stat + content hash, reload on change.

Mounted ConfigMaps/Secrets are symlinks through ``..data`` that the kubelet swaps
atomically, so inotify on the file breaks after the first swap; polling the realpath
does not. A load that fails keeps the last good value. A file rewritten in place may be
seen half-written, so such a change is loaded only once it stayed the same for two
consecutive polls; one that arrived by rename (new realpath or inode) is loaded at once.
Non-regular files (a FIFO) are never opened for reading, and the blocking work runs in
daemon threads so a stuck reader cannot hold up shutdown. This module must not decide
what a loaded value means (callers pass ``load`` and ``apply``) and must not log.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import re
import stat as stat_mode
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Generic, TypeVar

from mxgate_gateway.config.model import Config
from mxgate_gateway.errors import ConfigError

T = TypeVar("T")


class ReloadResult(StrEnum):
    """Outcome of one reload attempt; bounded, it labels ``mxgate_config_reload_total``."""

    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What identifies one version of a file. ``digest`` decides; the rest is a cheap
    pre-check so unchanged files are not re-hashed every poll."""

    realpath: str
    inode: int
    mtime_ns: int
    size: int
    digest: str


MISSING = FileStamp("", 0, 0, -1, "")


NOT_REGULAR = "(not a regular file)"


def stamp(path: Path, previous: FileStamp | None = None) -> FileStamp:
    """Stamp ``path`` (following symlinks); reuse ``previous``'s digest if stat is unchanged.

    A FIFO, socket, device or directory is never read (opening a FIFO blocks until a
    writer comes): it gets the digest ``NOT_REGULAR`` and the loader refuses it.
    """
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
        if not stat_mode.S_ISREG(st.st_mode):
            return FileStamp(real, st.st_ino, st.st_mtime_ns, -1, NOT_REGULAR)
        if (
            previous is not None
            and previous.realpath == real
            and (previous.inode, previous.mtime_ns, previous.size)
            == (st.st_ino, st.st_mtime_ns, st.st_size)
        ):
            return previous
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            if not stat_mode.S_ISREG(os.fstat(fh.fileno()).st_mode):  # swapped since stat
                return FileStamp(real, st.st_ino, st.st_mtime_ns, -1, NOT_REGULAR)
            digest = hashlib.sha256(fh.read()).hexdigest()
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOMEM):
            raise  # out of descriptors for a moment: not a vanished file (poll again later)
        return MISSING
    return FileStamp(real, st.st_ino, st.st_mtime_ns, st.st_size, digest)


class NotRegularFileError(OSError):
    """A watched path is a FIFO, socket, device or directory: refused, never read."""

    def __str__(self) -> str:
        return "not a regular file (a FIFO, socket, device or directory?)"


def arrived_whole(old: FileStamp, new: FileStamp) -> bool:
    """The change came by rename or symlink swap (kubelet ``..data``, ``mv``), not by an
    in-place write that may still be under way."""
    return new.digest == old.digest or (new.realpath, new.inode) != (old.realpath, old.inode)


async def in_daemon_thread(fn: Callable[[], T]) -> T:
    """Run blocking ``fn`` in a daemon thread: a read stuck on a hung mount can neither
    block the event loop nor keep the process from exiting (unlike the default executor,
    which interpreter shutdown joins)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: object) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            assert isinstance(value, BaseException)
            future.set_exception(value)

    def work() -> None:
        try:
            value: object = fn()
            ok = True
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            value, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(deliver, ok, value)

    threading.Thread(target=work, name="mxgate-file-io", daemon=True).start()
    return await future


def changed(old: Sequence[FileStamp], new: Sequence[FileStamp]) -> bool:
    """Content changed (or a file appeared/disappeared); a mere re-link does not count."""
    return [s.digest for s in old] != [s.digest for s in new]


def describe_error(exc: BaseException) -> str:
    """A one-line, secret-free description of a failed load (field paths, not contents)."""
    if isinstance(exc, ConfigError | NotRegularFileError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:500]


_PATH = re.compile(r"(?<![\w.:])/[^\s'\",;]*")


def probe_detail(exc: BaseException) -> str:
    """What ``/readyz`` may say about a failed load: field paths and messages with file
    paths blanked, never OpenSSL or exception text (the log has the full story)."""
    if isinstance(exc, ConfigError):
        return "; ".join(f"{field}: {_PATH.sub('<path>', msg)}" for field, msg in exc.errors)[:500]
    if isinstance(exc, NotRegularFileError):
        return str(exc)
    return "not usable (see the config_reload_failed log event)"


def restart_required(old: Config, new: Config) -> tuple[str, ...]:
    """Fields that changed but are process settings, read once at start (pure).

    They keep their old values until a restart; the rest of the new snapshot applies.
    """
    fields: list[str] = []
    if old.listen != new.listen:
        fields.append("listen")
    if (old.tls is None) != (new.tls is None) or (
        old.tls is not None
        and new.tls is not None
        and (old.tls.cert, old.tls.key, old.tls.min_version)
        != (new.tls.cert, new.tls.key, new.tls.min_version)
    ):
        fields.append("tls")
    if old.log != new.log:
        fields.append("log")
    return tuple(fields)


@dataclass(frozen=True, slots=True)
class WatchStatus:
    """What ``/readyz`` shows: how many reloads succeeded and the last problem, if any."""

    generation: int = 0
    last_result: ReloadResult | None = None
    last_error: str | None = None
    last_change_at: float | None = None
    probe_error: str | None = None  # ``last_error`` as /readyz may show it (``probe_detail``)

    def as_dict(self) -> dict[str, object]:
        return {
            "generation": self.generation,
            "last_result": None if self.last_result is None else str(self.last_result),
            "last_error": self.last_error,
            "last_change_at": self.last_change_at,
        }


@dataclass(slots=True)
class FileWatcher(Generic[T]):
    """Polls ``paths``; when their content changes calls ``load`` (in a worker thread)
    and, if it succeeds, ``apply`` on the event loop; ``on_result`` hears every attempt.

    The starting stamps are taken at construction: the caller has already loaded the
    files once at start-up and only changes after that are reloads.
    """

    paths: Sequence[Path]
    load: Callable[[], T]
    apply: Callable[[T], Awaitable[None] | None]
    interval: float = 1.0
    on_result: Callable[[ReloadResult, str | None], None] | None = None
    clock: Callable[[], float] = time.time
    status: WatchStatus = field(default_factory=WatchStatus)
    _stamps: list[FileStamp] = field(default_factory=list)
    _settling: list[FileStamp] | None = None  # an in-place change seen once, not yet loaded

    def __post_init__(self) -> None:
        self._stamps = [stamp(p) for p in self.paths]

    def _stamp_all(self) -> list[FileStamp]:
        return [stamp(p, old) for p, old in zip(self.paths, self._stamps, strict=True)]

    def _ready_to_load(self, stamps: list[FileStamp]) -> bool:
        """Whole arrivals load at once; in-place changes once unchanged since the last poll."""
        settling, self._settling = self._settling, None
        if all(arrived_whole(o, n) for o, n in zip(self._stamps, stamps, strict=True)):
            return True
        if settling is not None and not changed(settling, stamps):
            return True
        self._settling = stamps
        return False

    def _check_and_load(self) -> tuple[list[FileStamp], T | BaseException] | None:
        try:
            stamps = self._stamp_all()
        except OSError:  # EMFILE/ENFILE (a connection flood): skip this poll, change nothing
            return None
        if not changed(self._stamps, stamps):
            self._settling = None
            self._stamps = stamps  # cheap stat pre-check for next time
            return None
        if not self._ready_to_load(stamps):
            return None
        if any(s.digest == NOT_REGULAR for s in stamps):  # never hand a FIFO to ``load``
            return stamps, NotRegularFileError()
        try:
            return stamps, self.load()
        except Exception as exc:  # noqa: BLE001 - any failure keeps the last good value
            return stamps, exc

    async def poll_once(self) -> ReloadResult | None:
        """Check once; reload if the content changed and settled. None: nothing to apply."""
        found = await in_daemon_thread(self._check_and_load)
        if found is None:
            return None
        # Stamps taken before loading: a write racing the load is seen next poll.
        self._stamps, value = found
        now = self.clock()
        if isinstance(value, BaseException):
            result, error = ReloadResult.FAILURE, describe_error(value)
            self.status = WatchStatus(
                self.status.generation, result, error, now, probe_detail(value)
            )
        else:
            try:
                outcome = self.apply(value)
                if outcome is not None:
                    await outcome
            except Exception as exc:  # noqa: BLE001 - a refused swap keeps the last good value
                result, error = ReloadResult.FAILURE, describe_error(exc)
                self.status = WatchStatus(
                    self.status.generation, result, error, now, probe_detail(exc)
                )
            else:
                result, error = ReloadResult.SUCCESS, None
                self.status = WatchStatus(self.status.generation + 1, result, None, now)
        if self.on_result is not None:
            self.on_result(result, error)
        return result

    async def run(self) -> None:
        """Poll forever (cancel to stop)."""
        while True:
            await asyncio.sleep(self.interval)
            await self.poll_once()
