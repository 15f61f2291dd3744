"""ArmService against the simulator: providers, features, the policy deployment, identities and role assignments."""

from __future__ import annotations

import uuid

import pytest
from azure.core.rest import HttpRequest
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

from cmk.domain.resource_ids import policy_id
from cmk.domain.roles import READER, role_definition_id
from cmk.errors import NotFoundError, OperationTimeoutError
from tests.cmk.conftest import Services, onboard


def test_provider_registration_waits_until_registered_and_is_idempotent(svc: Services) -> None:
    assert svc.arm.ensure_provider_registered(poll=0.2, timeout=30) == "Registered"
    assert svc.arm.ensure_provider_registered(poll=0.2, timeout=30) == "Registered"
    entries = svc.journal.entries(action="arm.provider.register")
    assert len(entries) == 1 and entries[0]["before"] == {"registrationState": "NotRegistered"}


def test_provider_registration_times_out_with_advice(svc: Services) -> None:
    svc.sim.control.settings(provider_registration_seconds=3600)
    with pytest.raises(OperationTimeoutError) as info:
        svc.arm.ensure_provider_registered(poll=0.1, timeout=0.3)
    assert "run the step again" in str(info.value)


def test_feature_registration(svc: Services) -> None:
    assert svc.arm.ensure_feature_registered(poll=0.2, timeout=30) == "Registered"
    assert len(svc.journal.entries(action="arm.feature.register")) == 1


def test_policy_deployment_is_idempotent_and_reads_back_identity(svc: Services) -> None:
    svc.arm.ensure_provider_registered(poll=0.2)
    since = svc.sim.control.last_seq()
    first = svc.arm.deploy_enterprise_policy("rg-cmk", "ep-eu", "europe", svc.vault_id, "cmk")
    assert first.kind == "Encryption" and first.location == "europe" and first.key_name == "cmk"
    assert first.system_id and first.system_id.startswith("/regions/europe/")
    again = svc.arm.deploy_enterprise_policy("rg-cmk", "ep-eu", "europe", svc.vault_id.upper(), "cmk")
    assert again.id == first.id
    puts = [
        r for r in svc.sim.control.requests(since=since, method="PUT") if "deployments" in r["path"].lower()
    ]
    assert len(puts) == 1, "an identical policy must not be deployed twice"
    assert [e["action"] for e in svc.journal.entries() if e["action"].startswith("arm.enterprise")] == [
        "arm.enterprise_policy.deploy"
    ]
    assert [p.id for p in svc.arm.list_policies()] == [first.id]


def test_identity_that_appears_late_is_waited_for(svc: Services) -> None:
    svc.sim.control.settings(policy_identity_delay_seconds=1.0)
    svc.arm.ensure_provider_registered(poll=0.2)
    created = svc.arm.deploy_enterprise_policy("rg-cmk", "ep-late", "europe", svc.vault_id, "cmk")
    assert created.principal_id is None
    with pytest.raises(OperationTimeoutError):
        svc.arm.wait_for_policy_identity(created.id, timeout=0.1, poll=0.05)
    ready = svc.arm.wait_for_policy_identity(created.id, timeout=10, poll=0.2)
    assert ready.principal_id and ready.tenant_id == svc.azure.tenant_id


def test_missing_policy_is_not_found(svc: Services) -> None:
    with pytest.raises(NotFoundError):
        svc.arm.get_policy(policy_id(svc.azure.subscription_id, "rg-cmk", "ep-nope"))
    assert svc.arm.find_policy(policy_id(svc.azure.subscription_id, "rg-cmk", "ep-nope")) is None


def test_role_assignment_ensure_list_delete(svc: Services) -> None:
    _, policy = onboard(svc, reader=False)
    admin = svc.pp.admin_object_id or ""
    assignment_id, created = svc.arm.ensure_role_assignment(policy.id, admin, "Reader")
    assert created
    assert svc.arm.ensure_role_assignment(policy.id, admin, READER) == (assignment_id, False)
    listed = svc.arm.list_role_assignments(policy.id, admin)
    assert [a.id for a in listed if a.role_guid == READER] == [assignment_id]
    assert svc.arm.delete_role_assignment(assignment_id) is True
    assert svc.arm.delete_role_assignment(assignment_id) is False
    assert svc.arm.list_role_assignments(policy.id, admin) == []
    actions = [e["action"] for e in svc.journal.entries() if "role_assignment" in e["action"]]
    assert actions == ["arm.role_assignment.create", "arm.role_assignment.delete"]


def test_an_assignment_made_elsewhere_counts_as_existing(svc: Services) -> None:
    _, policy = onboard(svc, reader=False)
    admin = svc.pp.admin_object_id or ""
    params = RoleAssignmentCreateParameters(
        role_definition_id=role_definition_id(svc.azure.subscription_id, READER),
        principal_id=admin,
        principal_type="ServicePrincipal",
    )
    made = svc.arm.authorization.role_assignments.create(policy.id, str(uuid.uuid4()), params)
    assert svc.arm.ensure_role_assignment(policy.id, admin, "reader") == (made.id, False)


def test_policy_of_another_kind_reads_back(svc: Services) -> None:
    svc.arm.ensure_provider_registered(poll=0.2)
    pid = policy_id(svc.azure.subscription_id, "rg-cmk", "ep-net")
    body = {
        "location": "europe",
        "kind": "NetworkInjection",
        "properties": {"networkInjection": {"virtualNetworks": []}},
    }
    response = svc.arm.resources.send_request(
        HttpRequest("PUT", f"{pid}?api-version=2020-10-30-preview", json=body)
    )
    assert response.status_code in (200, 201), response.text()
    assert svc.arm.get_policy(pid).kind == "NetworkInjection"
    assert svc.arm.list_policies() == []  # Encryption only by default
    assert [p.kind for p in svc.arm.list_policies(kind=None)] == ["NetworkInjection"]
