"""Wires file watching into a running gateway: config/policy → ConfigStore, cert → TLS.

``watch_files`` adds background loops to a ``Gateway``: a changed, valid config is
swapped in for new sessions; a TLS pair change gives new sessions a new context. Each
result lands in ``mxgate_config_reload_total``, the log and ``/readyz`` detail; a
refused file never makes the pod unready. It must not parse, validate or serve.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from mxgate_gateway.config.loader import load_config
from mxgate_gateway.config.model import Config
from mxgate_gateway.config.watcher import (
    FileWatcher,
    ReloadResult,
    describe_error,
    restart_required,
)
from mxgate_gateway.errors import ConfigError
from mxgate_gateway.logs import get_logger
from mxgate_gateway.tls.reloader import TLSMaterial, TLSReloader

if TYPE_CHECKING:
    from mxgate_gateway.app import Background, Gateway

log = get_logger("mxgate.reload")

DEFAULT_INTERVAL = 1.0


def load_with_optional_policy(config_path: Path, policy_path: Path | None) -> Config:
    """Load the config; a policy file that does not exist (yet) counts as empty.

    The chart mounts the operator's policy ConfigMap as optional: until the operator
    writes it the gateway serves the main config's policy, and picks the file up
    when it appears. A policy file that exists but is broken is still an error.
    """
    if policy_path is not None and not policy_path.exists():
        log.warning("policy_file_missing", path=str(policy_path))
        policy_path = None
    return load_config(config_path, policy_path)


def load_for_start(config_path: Path, policy_path: Path | None) -> tuple[Config, str | None]:
    """Load the config for start-up: a refused policy file never stops the gateway.

    The main config must be valid (it is ours); the operator's policy file may not be
    (another writer, another version). Then the gateway starts on its own config's
    default policy and returns why the policy file was refused, for ``/readyz`` and
    ``mxgate_policy_file_refused``; the watcher picks up the next good file.
    """
    config = load_config(config_path, None)
    try:
        return load_with_optional_policy(config_path, policy_path), None
    except ConfigError as exc:
        if exc.source == str(config_path):
            raise  # the main config changed under us between the two reads
        return config, describe_error(exc)


def policy_file_state(gateway: Gateway, refused: str | None) -> None:
    """Show the policy file's state in ``/readyz`` detail and the metric (never unready)."""
    if refused is not None:
        log.error("policy_file_refused", error=refused)
    gateway.metrics.policy_file_refused.set(0 if refused is None else 1)
    detail = "loaded" if refused is None else f"refused, serving without it: {refused}"
    gateway.health.set("policy_file", True, detail)


def watch_files(
    gateway: Gateway,
    config_path: Path,
    policy_path: Path | None = None,
    *,
    interval: float = DEFAULT_INTERVAL,
) -> None:
    """Reload ``config_path`` (+ ``policy_path``) and the configured TLS pair on change."""
    paths = (config_path,) if policy_path is None else (config_path, policy_path)
    started_with = gateway.config

    def apply(new: Config) -> None:
        for field in restart_required(started_with, new):
            log.warning("config_restart_required", field=field)
        old = gateway.store.swap(new)
        gateway.metrics.config_generation.set(gateway.store.generation)
        gateway.handler.signals.configured(frozenset(u.address for u in new.upstreams))
        log.info(
            "config_reloaded",
            generation=gateway.store.generation,
            rules=len(new.policy.rules),
            floors=len(new.policy.floors),
            domains=len(new.domains),
            mode_changed=old.policy.mode != new.policy.mode,
        )

    def config_result(result: ReloadResult, error: str | None) -> None:
        _count(gateway, "config", result, error)
        if policy_path is not None and (error is None or str(config_path) not in error):
            policy_file_state(gateway, error)
        detail = f"generation {gateway.store.generation}"
        if error is not None:  # /readyz gets the path-free version (issue 12.10)
            detail += "; last reload refused, still serving the last good config: "
            detail += watcher.status.probe_error or "see the config_reload_failed log event"
        gateway.health.set("config", True, detail)

    watcher: FileWatcher[Config] = FileWatcher(
        paths=paths,
        load=lambda: load_with_optional_policy(config_path, policy_path),
        apply=apply,
        interval=interval,
        on_result=config_result,
    )

    async def run_config(_: Gateway) -> None:
        await watcher.run()

    gateway.background.append(run_config)
    if started_with.tls is not None:
        gateway.background.append(_tls_loop(started_with, interval))


def _tls_loop(config: Config, interval: float) -> Background:
    tls = config.tls
    assert tls is not None

    async def run_tls(gateway: Gateway) -> None:
        def material(m: TLSMaterial) -> None:
            gateway.tls_context = m.context  # new sessions take it; running ones keep theirs
            gateway.metrics.tls_not_after.set(m.not_after)
            gateway.health.set("tls", True, f"serving {m.subject}")

        def result(r: ReloadResult, error: str | None) -> None:
            _count(gateway, "tls", r, error)
            detail = f"serving {reloader.material.subject}"
            if error is not None:
                detail += "; last reload refused, still serving the last good pair: "
                detail += reloader.status.probe_error or "see the config_reload_failed log event"
            gateway.health.set("tls", True, detail)

        # Until a usable pair exists (cert-manager has not written it yet, or it broke
        # since start-up) retry every interval; count and log that once, not per try.
        failing = False
        while True:
            try:
                reloader = TLSReloader(
                    tls, interval=interval, on_result=result, on_material=material
                )
                break
            except Exception as exc:  # noqa: BLE001 - keep serving (or waiting) without it
                if not failing:
                    _count(gateway, "tls", ReloadResult.FAILURE, describe_error(exc))
                failing = True
                await asyncio.sleep(interval)
        if failing:
            _count(gateway, "tls", ReloadResult.SUCCESS, None)
        await reloader.run()

    return run_tls


def _count(gateway: Gateway, what: str, result: ReloadResult, error: str | None) -> None:
    gateway.metrics.config_reloads.labels(result.value).inc()
    if error is None:
        log.info("reload_succeeded", what=what)
    else:
        log.warning("config_reload_failed", what=what, error=error)
