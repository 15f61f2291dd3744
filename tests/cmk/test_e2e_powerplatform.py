"""PowerPlatformService against the simulator's BAP: paging, link/unlink, 429 retries, 409 busy, resuming handles."""

from __future__ import annotations

import json

import pytest

from cmk.clients.powerplatform import PowerPlatformService
from cmk.clients.retry import RetryPolicy
from cmk.domain.models import OperationHandle
from cmk.errors import BusyError, NotFoundError, OperationFailedError, OperationTimeoutError, ThrottledError
from cmk.preflight import run_preflight
from tests.cmk.conftest import FINANCE, HR, LEGACY_BYOK, MARKETING, Services, onboard


def test_list_environments_follows_next_link(svc: Services) -> None:
    svc.sim.control.settings(bap_page_size=5)
    since = svc.sim.control.last_seq()
    envs = svc.bap.list_environments()
    assert len(envs) == 12 and len({e.id for e in envs}) == 12
    pages = svc.sim.control.requests(since=since, operation="bap.list_environments")
    assert len(pages) == 3
    byok = {e.id for e in envs if e.byok}
    assert LEGACY_BYOK in byok and FINANCE not in byok


def test_get_environment_and_not_found(svc: Services) -> None:
    env = svc.bap.get_environment(FINANCE)
    assert (env.display_name, env.location, env.sku, env.managed, env.runtime_state) == (
        "Contoso Finance",
        "europe",
        "Production",
        True,
        "Enabled",
    )
    assert env.key_managed_by == "Microsoft" and env.cmk is None
    with pytest.raises(NotFoundError) as info:
        svc.bap.get_environment("00000000-0000-0000-0000-000000000000")
    assert "Power Platform Administrator" in str(info.value)


def test_link_wait_and_unlink(svc: Services) -> None:
    _, policy = onboard(svc)
    handle = svc.bap.start_link(FINANCE, policy.system_id or "")
    assert handle.url and handle.kind == "link" and handle.retry_after
    during = svc.bap.get_environment(FINANCE)
    assert during.operation_running and during.cmk and during.cmk.status == "Linking"
    status = svc.bap.wait(handle, 30)
    assert status.succeeded and [s for _, s in status.stages] == ["Succeeded"] * 4
    linked = svc.bap.get_environment(FINANCE)
    assert linked.cmk and linked.cmk.status == "Linked" and linked.key_managed_by == "Customer"
    assert linked.cmk.system_id == policy.system_id
    svc.bap.wait(svc.bap.start_unlink(FINANCE, policy.system_id or ""), 30)
    back = svc.bap.get_environment(FINANCE)
    assert back.cmk is None and back.key_managed_by == "Microsoft"
    starts = svc.journal.entries(target=FINANCE)
    assert [e["action"] for e in starts] == ["bap.link.start", "bap.unlink.start"]
    assert starts[0]["actor"] == svc.pp.client_id and starts[0]["correlation_id"]


def test_get_retries_429_honouring_retry_after(svc: Services) -> None:
    svc.sim.control.add_fault(service="bap", status=429, code="TooManyRequests", retry_after=1, count=2)
    since = svc.sim.control.last_seq()
    sleeps: list[float] = []
    bap = PowerPlatformService(svc.pp, http=svc.bap.http, credential=svc.bap.credential, sleep=sleeps.append)
    assert bap.get_environment(FINANCE).id == FINANCE
    assert sleeps == [1.0, 1.0]
    statuses = [r["status"] for r in svc.sim.control.requests(since=since, service="bap")]
    assert statuses == [429, 429, 200]


def test_link_post_retries_429_because_nothing_started(svc: Services) -> None:
    _, policy = onboard(svc)
    svc.sim.control.add_fault(
        service="bap", operation="bap.link", status=429, code="TooManyRequests", retry_after=1, count=2
    )
    since = svc.sim.control.last_seq()
    handle = svc.bap.start_link(FINANCE, policy.system_id or "")
    posts = [r["status"] for r in svc.sim.control.requests(since=since, operation="bap.link")]
    assert posts == [429, 429, 202]
    assert svc.bap.wait(handle, 30).succeeded


def test_link_post_is_not_reposted_after_a_500(svc: Services) -> None:
    _, policy = onboard(svc)
    svc.sim.control.add_fault(
        service="bap", operation="bap.link", status=500, code="InternalServerError", count=1
    )
    since = svc.sim.control.last_seq()
    with pytest.raises(Exception) as info:
        svc.bap.start_link(FINANCE, policy.system_id or "")
    assert info.value.status == 500  # type: ignore[attr-defined]
    assert len(svc.sim.control.requests(since=since, operation="bap.link")) == 1
    assert svc.journal.entries(action="bap.link.start")[-1]["outcome"] == "failed"


def test_persistent_throttling_raises_throttled_with_retry_after(svc: Services) -> None:
    svc.sim.control.add_fault(service="bap", status=429, code="TooManyRequests", retry_after=2, count=10)
    bap = PowerPlatformService(
        svc.pp,
        http=svc.bap.http,
        credential=svc.bap.credential,
        retry=RetryPolicy(max_attempts=3),
        sleep=lambda s: None,
    )
    with pytest.raises(ThrottledError) as info:
        bap.get_environment(FINANCE)
    assert info.value.retry_after == 2 and "retry after 2 seconds" in str(info.value)


def test_injected_409_is_busy_and_can_be_waited_out(svc: Services) -> None:
    _, policy = onboard(svc)
    svc.sim.control.add_fault(
        service="bap",
        operation="bap.link",
        status=409,
        code="OperationNotStartable",
        message="active op",
        count=1,
    )
    with pytest.raises(BusyError) as info:
        svc.bap.start_link(FINANCE, policy.system_id or "")
    assert info.value.code == "OperationNotStartable" and "wait for it to finish" in str(info.value)
    assert svc.journal.entries(action="bap.link.start")[-1]["outcome"] == "busy"
    assert not svc.bap.get_environment(FINANCE).operation_running  # re-read: nothing runs, so retry
    assert svc.bap.wait(svc.bap.start_link(FINANCE, policy.system_id or ""), 30).succeeded


def test_real_running_operation_makes_a_second_start_busy(svc: Services) -> None:
    _, policy = onboard(svc)
    first = svc.bap.start_link(HR, policy.system_id or "")
    with pytest.raises(BusyError):
        svc.bap.start_unlink(HR, policy.system_id or "")
    svc.bap.wait(first, 30)
    assert svc.bap.get_environment(HR).cmk.status == "Linked"  # type: ignore[union-attr]


def test_stored_handle_resumes_in_a_new_client(svc: Services) -> None:
    svc.sim.control.settings(link_seconds=3)
    _, policy = onboard(svc)
    handle = svc.bap.start_link(FINANCE, policy.system_id or "")
    with pytest.raises(OperationTimeoutError) as info:
        svc.bap.wait(handle, 0.5)
    assert info.value.handle == handle
    stored = json.dumps(info.value.handle.to_dict())
    svc.bap.close()
    with PowerPlatformService(svc.pp) as fresh:  # a new process would do exactly this
        since = svc.sim.control.last_seq()
        status = fresh.wait(OperationHandle.from_dict(json.loads(stored)), 30)
        assert status.succeeded
        assert fresh.get_environment(FINANCE).cmk.status == "Linked"  # type: ignore[union-attr]
    assert svc.sim.control.requests(since=since, operation="bap.link") == []  # resumed, never re-posted


def test_failed_link_raises_operation_failed(svc: Services) -> None:
    _, policy = onboard(svc, grant=False)  # the identity cannot use the key: the service fails the link
    handle = svc.bap.start_link(FINANCE, policy.system_id or "")
    with pytest.raises(OperationFailedError) as info:
        svc.bap.wait(handle, 30)
    assert info.value.handle == handle and info.value.code == "CustomerManagedKeyInaccessible"
    assert "cannot use its encryption key" in str(info.value)
    assert svc.bap.get_environment(FINANCE).cmk.status == "Failed"  # type: ignore[union-attr]
    report = run_preflight(
        svc.kv, svc.arm, svc.bap, vault_id=svc.vault_id, policy_id=policy.id, env_ids=[FINANCE]
    )
    assert {"ENV_PREVIOUS_LINK_FAILED", "IDENTITY_KEY_PERMISSIONS_MISSING"} <= set(report.codes())


def test_enable_managed_environment(svc: Services) -> None:
    assert not svc.bap.get_environment(MARKETING).managed
    handle = svc.bap.enable_managed_environment(MARKETING)
    if handle is not None:
        svc.bap.wait(handle, 30)
    assert svc.bap.get_environment(MARKETING).managed
    assert svc.bap.enable_managed_environment(MARKETING) is None  # already managed: no error


def test_lock_then_reenable(svc: Services) -> None:
    vault, policy = onboard(svc)
    svc.bap.wait(svc.bap.start_link(FINANCE, policy.system_id or ""), 30)
    svc.kv.remove_access_policy(vault.id, policy.principal_id or "")
    assert svc.arm.get_policy(policy.id).health == "Unhealthy"
    svc.sim.control.advance(5)
    assert svc.bap.get_environment(FINANCE).runtime_state == "Disabled"
    svc.kv.ensure_access_policy(vault.id, policy.principal_id or "")
    handle = svc.bap.reenable_environment(FINANCE)
    assert handle.kind == "enable"
    assert svc.bap.wait(handle, 30).succeeded
    assert svc.bap.get_environment(FINANCE).runtime_state == "Enabled"
