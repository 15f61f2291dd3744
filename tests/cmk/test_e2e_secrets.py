"""The secret-bearing setting (the managed-identity header) never shows in repr, logs, errors or the journal."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from cmk.clients.keyvault import KeyVaultService
from cmk.clients.powerplatform import PowerPlatformService
from cmk.errors import AuthenticationError, NotFoundError
from tests.cmk.conftest import Services, onboard


def test_identity_header_never_leaks(svc: Services, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = svc.sim.endpoints["identity_header"]
    assert isinstance(svc.azure.identity_header, SecretStr)
    onboard(svc)
    with pytest.raises(NotFoundError) as info:
        svc.bap.get_environment("00000000-0000-0000-0000-000000000000")
    logging.getLogger("cmk.test").error("failed with %s; settings %r %s", info.value, svc.pp, svc.azure)
    texts = [repr(svc.azure), str(svc.pp), svc.pp.model_dump_json(), str(info.value), caplog.text]
    texts.append(svc.journal.path.read_text())
    assert caplog.text and all(secret not in text for text in texts)


def test_a_wrong_identity_header_fails_without_echoing_it(
    svc: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-header-value-0123456789"
    bad = svc.pp.model_copy(update={"identity_header": SecretStr(wrong)})
    try:
        with PowerPlatformService(bad) as bap, pytest.raises(AuthenticationError) as info:
            bap.list_environments()
        assert "credential could not get a token" in str(info.value)
        assert wrong not in str(info.value) and wrong not in caplog.text
    finally:
        # Put the process-wide managed-identity endpoint back for the other tests.
        with KeyVaultService(svc.azure):
            pass
