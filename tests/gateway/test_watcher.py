"""Config watching: kubelet-style ``..data`` swaps reload; broken files keep the last good."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mxgate_gateway.config.loader import load_config
from mxgate_gateway.config.model import Config, Mode
from mxgate_gateway.config.watcher import (
    MISSING,
    FileWatcher,
    ReloadResult,
    changed,
    restart_required,
    stamp,
)
from mxgate_gateway.errors import ConfigError

BASE = """
hostname: mx.example.test
domains: [accepted.test]
upstreams: [{address: "127.0.0.1:10025"}]
policy: {mode: MODE}
"""
POLICY = (
    '{"version": 1, "rules": [{"id": "RID", "mode": "audit",'
    ' "scope": {"sender_domains": ["x.test"]}}]}'
)


def config(mode: str = "opportunistic") -> str:
    return BASE.replace("MODE", mode)


def policy(rule_id: str = "r1") -> str:
    return POLICY.replace("RID", rule_id)


class Recorder:
    """Collects what the watcher applies and reports."""

    def __init__(self) -> None:
        self.applied: list[Config] = []
        self.results: list[tuple[ReloadResult, str | None]] = []

    def apply(self, cfg: Config) -> None:
        self.applied.append(cfg)

    def on_result(self, result: ReloadResult, error: str | None) -> None:
        self.results.append((result, error))


def watch(mount: Any, rec: Recorder) -> FileWatcher[Config]:
    cfg, pol = mount.path("config.yaml"), mount.path("policy.json")
    return FileWatcher(
        paths=(cfg, pol),
        load=lambda: load_config(cfg, pol),
        apply=rec.apply,
        on_result=rec.on_result,
    )


async def test_kubelet_swaps_reload_every_time_not_just_the_first(kubelet_mount: Any) -> None:
    """Three successive ``..data`` swaps give three reloads (inotify on the file gives one)."""
    kubelet_mount.update({"config.yaml": config(), "policy.json": policy()})
    rec = Recorder()
    watcher = watch(kubelet_mount, rec)
    assert await watcher.poll_once() is None
    for mode in ("audit", "require", "opportunistic"):
        kubelet_mount.update({"config.yaml": config(mode), "policy.json": policy()})
        assert await watcher.poll_once() is ReloadResult.SUCCESS
    assert [c.policy.mode for c in rec.applied] == [Mode.AUDIT, Mode.REQUIRE, Mode.OPPORTUNISTIC]
    assert watcher.status.generation == 3


async def test_policy_file_change_alone_reloads_the_merged_config(kubelet_mount: Any) -> None:
    """The operator's policy file is watched too; its rules land in the new snapshot."""
    kubelet_mount.update({"config.yaml": config(), "policy.json": policy("r1")})
    rec = Recorder()
    watcher = watch(kubelet_mount, rec)
    kubelet_mount.update({"config.yaml": config(), "policy.json": policy("r2")})
    assert await watcher.poll_once() is ReloadResult.SUCCESS
    assert [r.id for r in rec.applied[-1].policy.rules] == ["r2"]


async def test_broken_file_is_refused_once_and_last_good_keeps_serving(kubelet_mount: Any) -> None:
    """A broken file is one failure (not one per poll); fixing it reloads again."""
    kubelet_mount.update({"config.yaml": config(), "policy.json": policy()})
    rec = Recorder()
    watcher = watch(kubelet_mount, rec)
    kubelet_mount.update({"config.yaml": config("enforce"), "policy.json": policy()})
    assert await watcher.poll_once() is ReloadResult.FAILURE
    assert await watcher.poll_once() is None
    assert rec.applied == []
    assert watcher.status.last_result is ReloadResult.FAILURE
    assert watcher.status.last_error is not None
    assert "policy.mode" in watcher.status.last_error
    kubelet_mount.update({"config.yaml": config("audit"), "policy.json": policy()})
    assert await watcher.poll_once() is ReloadResult.SUCCESS
    assert watcher.status.last_error is None
    assert [r for r, _ in rec.results] == [ReloadResult.FAILURE, ReloadResult.SUCCESS]


async def test_in_place_edit_without_symlinks_is_seen_too(tmp_path: Path) -> None:
    """A plain file rewritten in place (same inode) reloads: the content hash decides."""
    path = tmp_path / "c.yaml"
    path.write_text(config())
    rec = Recorder()
    watcher: FileWatcher[Config] = FileWatcher((path,), lambda: load_config(path), rec.apply)
    with path.open("w") as fh:
        fh.write(config("audit"))
    assert await watcher.poll_once() is None  # changed in place: wait one poll to see it settle
    assert await watcher.poll_once() is ReloadResult.SUCCESS
    assert rec.applied[0].policy.mode is Mode.AUDIT


async def test_half_written_file_is_not_applied_until_it_settles(tmp_path: Path) -> None:
    """Issue 12.6: a non-atomic write seen mid-way (domains list cut short, or cut mid-word)
    is not applied; the completed file is, once it stayed the same for two polls."""
    path = tmp_path / "c.yaml"
    full = config().replace("[accepted.test]", "[accepted.test, other.test, third.test]")
    path.write_text(config())
    rec = Recorder()
    watcher: FileWatcher[Config] = FileWatcher((path,), lambda: load_config(path), rec.apply)
    with path.open("w") as fh:  # truncate + write, as `cat > file` or an editor without rename
        fh.write(full[: full.index("other.test") + 3])  # "... [accepted.test, oth"
        fh.flush()
        assert await watcher.poll_once() is None
        fh.write(full[full.index("other.test") + 3 :])
    assert await watcher.poll_once() is None  # differs from the last poll: still settling
    assert rec.applied == []
    assert await watcher.poll_once() is ReloadResult.SUCCESS
    assert rec.applied[0].domains == ("accepted.test", "other.test", "third.test")


async def test_atomic_rename_is_applied_at_once(tmp_path: Path) -> None:
    """Issue 12.6: a file that arrived by rename (write elsewhere, then mv) is complete."""
    path = tmp_path / "c.yaml"
    path.write_text(config())
    rec = Recorder()
    watcher: FileWatcher[Config] = FileWatcher((path,), lambda: load_config(path), rec.apply)
    (tmp_path / "c.yaml.tmp").write_text(config("audit"))
    (tmp_path / "c.yaml.tmp").replace(path)
    assert await watcher.poll_once() is ReloadResult.SUCCESS
    assert rec.applied[0].policy.mode is Mode.AUDIT


async def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """Issue 12.9: a config path that is a FIFO is a failure naming it, never a hung read."""
    import os  # noqa: PLC0415

    path = tmp_path / "c.yaml"
    path.write_text(config())
    rec = Recorder()
    watcher: FileWatcher[Config] = FileWatcher((path,), lambda: load_config(path), rec.apply)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "fifo").replace(path)
    assert await asyncio.wait_for(watcher.poll_once(), 5) is ReloadResult.FAILURE
    assert "not a regular file" in (watcher.status.last_error or "")
    with pytest.raises(ConfigError, match="not a regular file"):
        await asyncio.wait_for(asyncio.to_thread(load_config, path), 5)


async def test_identical_content_relinked_is_not_a_reload(kubelet_mount: Any) -> None:
    """A swap to byte-identical files changes the realpath but triggers nothing."""
    kubelet_mount.update({"config.yaml": config()})
    rec = Recorder()
    path = kubelet_mount.path("config.yaml")
    watcher: FileWatcher[Config] = FileWatcher((path,), lambda: load_config(path), rec.apply)
    kubelet_mount.update({"config.yaml": config()})
    assert await watcher.poll_once() is None


async def test_vanished_file_is_a_failure_that_keeps_the_last_good(kubelet_mount: Any) -> None:
    """Deleting the mounted file is refused like a broken one."""
    kubelet_mount.update({"config.yaml": config()})
    path = kubelet_mount.path("config.yaml")
    rec = Recorder()
    watcher: FileWatcher[Config] = FileWatcher((path,), lambda: load_config(path), rec.apply)
    path.unlink()
    assert stamp(path) == MISSING
    assert await watcher.poll_once() is ReloadResult.FAILURE
    assert rec.applied == []


async def test_a_refused_apply_counts_as_failure(kubelet_mount: Any) -> None:
    """If the consumer refuses the new value, the reload is a failure with its reason."""
    kubelet_mount.update({"config.yaml": config()})
    path = kubelet_mount.path("config.yaml")

    def refuse(_: Config) -> None:
        raise ConfigError("store", [("limits", "refused")])

    watcher: FileWatcher[Config] = FileWatcher((path,), lambda: load_config(path), refuse)
    kubelet_mount.update({"config.yaml": config("audit")})
    assert await watcher.poll_once() is ReloadResult.FAILURE
    assert watcher.status.generation == 0


def test_stamp_reuses_digest_when_stat_is_unchanged(tmp_path: Path) -> None:
    """An unchanged file is not re-hashed: the previous stamp object comes back."""
    path = tmp_path / "f"
    path.write_text("x")
    first = stamp(path)
    assert stamp(path, first) is first
    assert not changed([first], [stamp(path)])


@pytest.mark.parametrize(
    ("edit", "fields"),
    [
        ("policy: {mode: audit}", ()),
        ("listen: {smtp: '127.0.0.1:2600'}", ("listen",)),
        ("log: {format: console}", ("log",)),
        ("tls: {cert: /a.crt, key: /a.key}", ("tls",)),
        ("limits: {max_connections: 5}", ()),
    ],
)
def test_process_settings_changes_are_named_for_restart(
    tmp_path: Path, edit: str, fields: tuple[str, ...]
) -> None:
    """Listen addresses, log and TLS paths are read once; a change to them needs a restart."""
    old_path, new_path = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old_path.write_text(BASE.replace("policy: {mode: MODE}", ""))
    new_path.write_text(BASE.replace("policy: {mode: MODE}", edit))
    assert restart_required(load_config(old_path), load_config(new_path)) == fields
