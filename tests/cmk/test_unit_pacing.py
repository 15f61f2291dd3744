"""Client-side pacing (cmk.clients.retry.TokenBucket) with a fake clock, and its use by the BAP client."""

from __future__ import annotations

import time

import httpx
from azure.core.credentials import AccessToken

from cmk.clients.powerplatform import PowerPlatformService
from cmk.clients.retry import RetryPolicy, TokenBucket, pacing_for
from cmk.clients.settings import PowerPlatformSettings

BAP = "https://bap.example"


class Clock:
    """Time that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class StaticCredential:
    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("token", int(time.time()) + 3600)


def test_no_known_limit_sends_at_once() -> None:
    bucket = TokenBucket(None, 5, clock=Clock())
    assert not bucket.limited
    assert [bucket.reserve() for _ in range(50)] == [0.0] * 50


def test_a_configured_rate_lets_the_burst_go_then_spaces_requests() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, 3, clock=clock)
    waits = [round(bucket.reserve(), 3) for _ in range(6)]
    assert waits == [0.0, 0.0, 0.0, 0.1, 0.2, 0.3]
    clock.now += 10  # idle: the bucket is full again, never fuller than the burst
    assert [round(bucket.reserve(), 3) for _ in range(4)] == [0.0, 0.0, 0.0, 0.1]


def test_a_429_makes_every_request_wait_retry_after_but_not_the_one_that_slept_it() -> None:
    clock = Clock()
    bucket = TokenBucket(None, 5, clock=clock)
    bucket.throttled(4.0)
    assert bucket.reserve() == 4.0
    assert bucket.reserve(after_429=True) == 0.0
    assert not bucket.limited  # too few requests seen to know what the service lets through


def test_a_429_under_load_sets_the_rate_below_what_got_through_and_it_recovers() -> None:
    clock = Clock()
    bucket = TokenBucket(None, 5, clock=clock, calm=10.0)
    for _ in range(41):  # 20 requests a second for two seconds
        bucket.record()
        clock.now += 0.05
    bucket.throttled(1.0)
    assert bucket.limited and abs(bucket.rate - 18.0) < 0.5  # type: ignore[operator]
    assert bucket.reserve() >= 1.0  # waits out Retry-After first
    clock.now += 12  # calm again
    bucket.reserve()
    clock.now += 40
    bucket.reserve()
    assert not bucket.limited  # doubled without a 429: back to no limit


def test_clients_of_one_caller_share_one_bucket() -> None:
    a = pacing_for("bap", "https://bap.shared.example/", "admin", 0, 20)
    assert pacing_for("bap", "https://BAP.shared.example", "admin", 0, 20) is a
    assert pacing_for("bap", "https://bap.shared.example", "other", 0, 20) is not a


def test_the_bap_client_paces_by_the_settings_and_a_post_after_429_is_sent_once_more_only() -> None:
    clock = Clock()
    answers = iter([(429, {"Retry-After": "2"}), (202, {"operation-location": f"{BAP}/ops/1"})])
    methods: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        methods.append(request.method)
        status, headers = next(answers)
        return httpx.Response(status, json={}, headers=headers)

    settings = PowerPlatformSettings(tenant_id="t", bap_endpoint=BAP, rate_per_second=5, rate_burst=1)
    pp = PowerPlatformService(
        settings,
        http=httpx.Client(base_url=BAP, transport=httpx.MockTransport(handler)),
        credential=StaticCredential(),
        retry=RetryPolicy(max_attempts=3, random=lambda: 0.5),
        sleep=clock.sleep,
    )
    assert pp.pacing.limited and pp.pacing.rate == 5
    handle = pp.start_link("e1", "sid")
    assert methods == ["POST", "POST"]  # the 429 started nothing: sent once more, then accepted
    assert handle.url == f"{BAP}/ops/1"
    assert 2.0 in clock.sleeps  # Retry-After honoured
    assert pp.pacing.throttles == 1
