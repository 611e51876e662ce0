"""kopf wiring: which triggers exist, no finalizers, no kopf bookkeeping in status."""

from __future__ import annotations

import kopf

from mxgate_operator.handlers import configure, register
from mxgate_operator.settings import OperatorSettings


def registry() -> kopf.OperatorRegistry:
    reg = kopf.OperatorRegistry()
    register(reg, OperatorSettings())
    return reg


def test_no_handler_puts_a_finalizer_on_policies() -> None:
    """No registered handler needs a finalizer: deleting a TLSPolicy never waits for us."""
    reg = registry()
    handlers = [*reg._changing.get_all_handlers(), *reg._spawning.get_all_handlers()]
    assert handlers
    assert not [h.id for h in handlers if h.requires_finalizer]


def test_policies_and_certificates_trigger_reconciles() -> None:
    """TLSPolicy create/update/delete/resume and our Certificates trigger reconciles."""
    reg = registry()
    changing = reg._changing.get_all_handlers()
    on_policies = {
        h.reason.value if h.reason else None
        for h in changing
        if h.selector and h.selector.any_name == "tlspolicies"
    }
    assert on_policies == {"create", "update", "delete", None}
    assert any(h.initial for h in changing)  # the resume handler
    watching = [h.selector.any_name for h in reg._watching.get_all_handlers() if h.selector]
    assert watching == ["certificates"]


def test_kopf_settings_keep_status_ours_and_scanning_off() -> None:
    """kopf keeps progress in mxgate.io annotations, never in status; cluster scanning is off."""
    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.scanning.disabled
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "mxgate.io"
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
