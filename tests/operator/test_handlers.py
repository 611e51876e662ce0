"""kopf wiring: which triggers exist, no finalizers, no kopf bookkeeping in status."""

from __future__ import annotations

import kopf
import pytest

from mxgate_operator.handlers import configure, needs_reconcile, register
from mxgate_operator.settings import OperatorSettings


def registry() -> kopf.OperatorRegistry:
    reg = kopf.OperatorRegistry()
    register(reg, OperatorSettings())
    return reg


def test_no_handler_puts_a_finalizer_on_policies() -> None:
    """No registered handler needs a finalizer: deleting a TLSPolicy never waits for us."""
    reg = registry()
    changing = [*reg._changing.get_all_handlers(), *reg._spawning.get_all_handlers()]
    assert not [h.id for h in changing if h.requires_finalizer]
    assert reg._watching.get_all_handlers()


def test_policy_and_certificate_watch_events_trigger_reconciles() -> None:
    """Raw watch events (not kopf's change detection) drive reconciles: TLSPolicy adds,
    edits and deletes (issue 18 item 8: a delete without a finalizer is seen at once),
    and our Certificates. No change-detecting handler is left to need a finalizer."""
    reg = registry()
    assert reg._changing.get_all_handlers() == []
    watching = sorted(h.selector.any_name for h in reg._watching.get_all_handlers() if h.selector)
    assert watching == ["certificates", "tlspolicies"]


@pytest.mark.parametrize(
    ("event", "generation", "observed", "expected"),
    [
        (None, 1, None, True),  # the initial listing
        ("ADDED", 1, None, True),
        ("DELETED", 3, 3, True),
        ("MODIFIED", 2, 1, True),  # a spec edit
        ("MODIFIED", 2, 2, False),  # our own status write coming back
    ],
)
def test_which_policy_events_reconcile(
    event: str | None, generation: int, observed: int | None, expected: bool
) -> None:
    """Only status-only MODIFIED events (generation already observed) are skipped."""
    body = {"metadata": {"generation": generation}, "status": {"observedGeneration": observed}}
    assert needs_reconcile(event, body) is expected


def test_kopf_settings_keep_status_ours_and_scanning_off() -> None:
    """kopf keeps progress in mxgate.io annotations, never in status; cluster scanning is off."""
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.scanning.disabled
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "mxgate.io"
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
