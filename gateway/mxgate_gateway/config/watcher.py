"""Watch files the kubelet way: poll resolved path + stat + content hash, reload on change.

Mounted ConfigMaps/Secrets are symlinks through ``..data`` that the kubelet swaps
atomically, so inotify on the file breaks after the first swap; polling the realpath
does not. A load that fails keeps the last good value. This module must not decide
what a loaded value means (callers pass ``load`` and ``apply``) and must not log.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
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


def stamp(path: Path, previous: FileStamp | None = None) -> FileStamp:
    """Stamp ``path`` (following symlinks); reuse ``previous``'s digest if stat is unchanged."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
        if (
            previous is not None
            and previous.realpath == real
            and (previous.inode, previous.mtime_ns, previous.size)
            == (st.st_ino, st.st_mtime_ns, st.st_size)
        ):
            return previous
        with open(real, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return MISSING
    return FileStamp(real, st.st_ino, st.st_mtime_ns, st.st_size, digest)


def changed(old: Sequence[FileStamp], new: Sequence[FileStamp]) -> bool:
    """Content changed (or a file appeared/disappeared); a mere re-link does not count."""
    return [s.digest for s in old] != [s.digest for s in new]


def describe_error(exc: BaseException) -> str:
    """A one-line, secret-free description of a failed load (field paths, not contents)."""
    if isinstance(exc, ConfigError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:500]


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

    def __post_init__(self) -> None:
        self._stamps = [stamp(p) for p in self.paths]

    def _stamp_all(self) -> list[FileStamp]:
        return [stamp(p, old) for p, old in zip(self.paths, self._stamps, strict=True)]

    def _check_and_load(self) -> tuple[list[FileStamp], T | BaseException] | None:
        stamps = self._stamp_all()
        if not changed(self._stamps, stamps):
            self._stamps = stamps  # cheap stat pre-check for next time
            return None
        try:
            return stamps, self.load()
        except Exception as exc:  # noqa: BLE001 - any failure keeps the last good value
            return stamps, exc

    async def poll_once(self) -> ReloadResult | None:
        """Check once; reload if the content changed. None means nothing changed."""
        found = await asyncio.to_thread(self._check_and_load)
        if found is None:
            return None
        # Stamps taken before loading: a write racing the load is seen next poll.
        self._stamps, value = found
        now = self.clock()
        if isinstance(value, BaseException):
            result, error = ReloadResult.FAILURE, describe_error(value)
            self.status = WatchStatus(self.status.generation, result, error, now)
        else:
            try:
                outcome = self.apply(value)
                if outcome is not None:
                    await outcome
            except Exception as exc:  # noqa: BLE001 - a refused swap keeps the last good value
                result, error = ReloadResult.FAILURE, describe_error(exc)
                self.status = WatchStatus(self.status.generation, result, error, now)
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
