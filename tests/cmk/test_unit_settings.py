"""Settings: actionable validation; secrets never in repr, str, JSON, errors or logs."""

from __future__ import annotations

import logging
import os

import pytest
from pydantic import SecretStr, ValidationError

from cmk.clients.credentials import build_credential, scope_for
from cmk.clients.settings import AzureSettings, PowerPlatformSettings, settings_from_simulator
from cmk.errors import ConfigurationError

SECRET = "s3cr3t-Value-that-must-not-leak"
ENDPOINTS = {
    "arm": "https://127.0.0.1:1",
    "bap": "https://127.0.0.1:2",
    "token": "https://127.0.0.1:1/msi/token",
    "ca_bundle": "/tmp/ca.pem",
    "tenant_id": "t",
    "subscription_id": "s",
    "identity_header": SECRET,
    "identities": {
        "keyvault-admin": {"client_id": "kv-client", "object_id": "kv-oid"},
        "powerplatform-admin": {"client_id": "pp-client", "object_id": "pp-oid"},
    },
}


def test_secret_never_in_repr_str_json_or_dump() -> None:
    settings = AzureSettings(
        tenant_id="t", subscription_id="s", auth="client_secret", client_id="c", client_secret=SECRET
    )
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert SECRET not in text
    assert settings.client_secret is not None and settings.client_secret.get_secret_value() == SECRET


def test_validation_errors_do_not_echo_the_secret() -> None:
    with pytest.raises(ValidationError) as info:
        AzureSettings(tenant_id="t", subscription_id="s", auth="client_secret", client_secret=SECRET)
    assert "needs client_id" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    with pytest.raises(ValidationError) as info:
        PowerPlatformSettings(
            tenant_id="t", auth="client_secret", client_id="c", client_secret=SECRET, bap_endpoint="http://x"
        )
    assert "https" in str(info.value) and SECRET not in str(info.value)
    with pytest.raises(ValidationError) as info:
        PowerPlatformSettings(tenant_id="t", auth="managed_identity", identity_header=SECRET)
    assert "go together" in str(info.value) and SECRET not in str(info.value)


def test_client_secret_auth_without_secret_says_what_to_do() -> None:
    with pytest.raises(ValidationError) as info:
        AzureSettings(tenant_id="t", subscription_id="s", auth="client_secret", client_id="c")
    assert "needs client_secret" in str(info.value) and "managed_identity" in str(info.value)


def test_secret_never_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    azure, pp = settings_from_simulator(ENDPOINTS)
    logging.getLogger("cmk.test").info("settings: %s %r", azure, pp)
    build_credential(pp)
    try:
        PowerPlatformSettings(
            tenant_id="t", auth="client_secret", client_id="c", client_secret=SECRET, retry_total=-1
        )
    except ValidationError as exc:
        logging.getLogger("cmk.test").exception("refused: %s", exc)
    assert caplog.records and SECRET not in caplog.text


def test_settings_from_simulator() -> None:
    azure, pp = settings_from_simulator(ENDPOINTS)
    assert (azure.auth, azure.client_id, azure.verify_challenge_resource, azure.ca_bundle) == (
        "managed_identity",
        "kv-client",
        False,
        "/tmp/ca.pem",
    )
    assert (pp.client_id, pp.admin_object_id, pp.bap_endpoint) == (
        "pp-client",
        "pp-oid",
        "https://127.0.0.1:2",
    )
    assert isinstance(pp.identity_header, SecretStr)
    assert scope_for(azure, "arm") == "https://management.azure.com/.default"
    assert scope_for(azure, "keyvault") == "https://vault.azure.net/.default"
    assert scope_for(pp, "bap") == "https://service.powerapps.com/.default"
    with pytest.raises(ConfigurationError):
        scope_for(azure, "bap")


def test_managed_identity_credential_exports_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    monkeypatch.delenv("IDENTITY_HEADER", raising=False)
    azure, _ = settings_from_simulator(ENDPOINTS)
    credential = build_credential(azure)
    assert type(credential).__name__ == "ManagedIdentityCredential"
    assert os.environ["IDENTITY_ENDPOINT"] == ENDPOINTS["token"] and os.environ["IDENTITY_HEADER"] == SECRET


def test_other_auth_modes_build_the_right_credential() -> None:
    secret = AzureSettings(
        tenant_id="t", subscription_id="s", auth="client_secret", client_id="c", client_secret=SECRET
    )
    assert type(build_credential(secret)).__name__ == "ClientSecretCredential"
    default = AzureSettings(tenant_id="t", subscription_id="s")
    assert type(build_credential(default)).__name__ == "DefaultAzureCredential"
    assert default.actor == "default-credential" and secret.actor == "c"


def test_frozen_and_extra_fields_refused() -> None:
    settings = AzureSettings(tenant_id="t", subscription_id="s")
    with pytest.raises(ValidationError):
        settings.tenant_id = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        AzureSettings(tenant_id="t", subscription_id="s", clientsecret=SECRET)  # type: ignore[call-arg]
