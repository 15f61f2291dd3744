"""Retry and wait decisions with a fake clock: backoff, Retry-After, never re-posting a started operation."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from azure.core.credentials import AccessToken

from cmk.clients.powerplatform import PowerPlatformService
from cmk.clients.retry import RetryPolicy
from cmk.clients.settings import PowerPlatformSettings
from cmk.domain.models import OperationHandle
from cmk.errors import (
    BusyError,
    ConnectionFailedError,
    OperationFailedError,
    OperationTimeoutError,
    ServiceError,
)

BAP = "https://bap.example"


class StaticCredential:
    """A credential that hands out a fixed token (the BAP side under test never reaches a real IdP)."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)


class FakeClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def service(handler: Callable[[httpx.Request], httpx.Response], clock: FakeClock) -> PowerPlatformService:
    settings = PowerPlatformSettings(tenant_id="t", bap_endpoint=BAP)
    http = httpx.Client(base_url=BAP, transport=httpx.MockTransport(handler))
    retry = RetryPolicy(max_attempts=4, backoff_base=1.0, random=lambda: 0.5)
    return PowerPlatformService(
        settings, http=http, credential=StaticCredential(), retry=retry, sleep=clock.sleep
    )


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_base=1.0, backoff_max=8.0, random=lambda: 1.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    low = RetryPolicy(backoff_base=1.0, random=lambda: 0.0)
    assert [low.backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("status", "retry_after", "idempotent", "sent", "retried"),
    [
        (429, None, True, True, True),
        (500, None, True, True, True),
        (503, None, True, True, True),
        (404, None, True, True, False),
        (409, None, True, True, False),
        (429, 2.0, False, True, True),  # throttled before anything started
        (503, 2.0, False, True, True),  # gateway refused, with Retry-After
        (503, None, False, True, False),  # may have started: never re-post
        (500, None, False, True, False),
        (502, None, False, True, False),
        (None, None, False, False, True),  # connection refused before sending
        (None, None, False, True, False),  # read timeout after sending
        (None, None, True, True, True),
    ],
)
def test_retry_decisions(
    status: int | None, retry_after: float | None, idempotent: bool, sent: bool, retried: bool
) -> None:
    policy = RetryPolicy(random=lambda: 0.0)
    delay = policy.delay(1, status=status, retry_after=retry_after, idempotent=idempotent, sent=sent)
    assert (delay is not None) is retried
    if retried and retry_after is not None:
        assert delay == retry_after


def test_retry_after_is_honoured_but_bounded_and_attempts_are_limited() -> None:
    policy = RetryPolicy(max_attempts=3, retry_after_max=60)
    assert policy.delay(1, status=429, retry_after=3600, idempotent=True) == 60
    assert policy.delay(3, status=429, retry_after=1, idempotent=True) is None


def test_get_retries_429_then_succeeds_sleeping_retry_after() -> None:
    clock = FakeClock()
    answers = iter([(429, {"Retry-After": "3"}), (500, {}), (200, {})])

    def handler(request: httpx.Request) -> httpx.Response:
        status, headers = next(answers)
        body = (
            {"name": "e1", "location": "europe", "properties": {}}
            if status == 200
            else {"error": {"code": "X"}}
        )
        return httpx.Response(status, json=body, headers=headers)

    env = service(handler, clock).get_environment("e1")
    assert env.id == "e1"
    assert clock.sleeps == [3.0, 1.5]  # Retry-After, then backoff 2**1 * (0.5 + 0.5*0.5)


def test_link_post_is_not_reposted_after_a_500() -> None:
    clock = FakeClock()
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(500, json={"error": {"code": "InternalServerError", "message": "boom"}})

    with pytest.raises(ServiceError):
        service(handler, clock).start_link("e1", "/regions/europe/x")
    assert calls == ["POST"] and clock.sleeps == []


def test_link_post_retries_429_and_connect_errors_but_not_read_timeouts() -> None:
    clock = FakeClock()
    answers: list[object] = [httpx.ConnectError("refused"), 429, 202]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if answer == 429:
            return httpx.Response(
                429, json={"error": {"code": "TooManyRequests"}}, headers={"Retry-After": "2"}
            )
        return httpx.Response(
            202, headers={"operation-location": f"{BAP}/op/1?api-version=x", "Retry-After": "5"}
        )

    handle = service(handler, clock).start_link("e1", "/regions/europe/x")
    assert (
        handle.url == f"{BAP}/op/1?api-version=x" and handle.retry_after == 5 and handle.operation_id == "1"
    )
    assert len(clock.sleeps) == 2 and clock.sleeps[1] == 2.0

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    with pytest.raises(ConnectionFailedError) as info:
        service(timeout, FakeClock()).start_link("e1", "/regions/europe/x")
    assert "re-read the environment" in str(info.value)


def test_link_409_is_busy() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"error": {"code": "OperationNotStartable", "message": "active op"}})

    with pytest.raises(BusyError):
        service(handler, FakeClock()).start_link("e1", "/regions/europe/x")


def test_wait_sleeps_retry_after_and_times_out_with_the_handle() -> None:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "1", "state": {"id": "Running"}}, headers={"Retry-After": "4"})

    handle = OperationHandle("e1", "link", f"{BAP}/op/1", 2.0, "1")
    with pytest.raises(OperationTimeoutError) as info:
        service(handler, clock).wait(handle, 10, sleep=clock.sleep, clock=clock)
    assert info.value.handle == handle
    assert clock.sleeps == [4.0, 4.0, 2.0] and clock.now == 10.0


def test_wait_raises_operation_failed_with_the_service_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {
            "id": "1",
            "state": {"id": "Failed"},
            "error": {"code": "KeyVaultAccessDenied", "message": "no key"},
        }
        return httpx.Response(200, json=body)

    with pytest.raises(OperationFailedError) as info:
        service(handler, FakeClock()).wait(OperationHandle("e1", "link", f"{BAP}/op/1"), 10)
    assert info.value.code == "KeyVaultAccessDenied" and "no key" in str(info.value)


def test_stored_handle_is_never_sent_to_another_host() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"state": {"id": "Succeeded"}})

    svc = service(handler, FakeClock())
    with pytest.raises(Exception, match="Refusing to send"):
        svc.poll(OperationHandle("e1", "link", "https://evil.example/op/1"))
    assert svc.poll(OperationHandle("e1", "link", "https://europe.bap.example/op/1")).succeeded
    assert seen == ["https://europe.bap.example/op/1"]
