"""The Power Platform admin API (BAP) over httpx: environments, link/unlink, lifecycle operations."""

from __future__ import annotations

import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError

from cmk.clients.credentials import build_credential
from cmk.clients.retry import RetryPolicy, TokenBucket, pacing_for
from cmk.clients.settings import PowerPlatformSettings
from cmk.domain.models import CmkLink, EnvironmentInfo, OperationHandle, OperationKind, OperationStatus
from cmk.errors import (
    BusyError,
    CmkError,
    ConfigurationError,
    ConnectionFailedError,
    OperationFailedError,
    OperationTimeoutError,
    PreconditionFailedError,
    ServiceError,
    ThrottledError,
    correlation_id_from,
    from_azure_error,
    from_httpx_response,
    parse_retry_after,
)
from cmk.state.journal import Journal, JournalContext

log = logging.getLogger(__name__)

BAP = "/providers/Microsoft.BusinessAppPlatform"
# Legacy BYOK environments carry protectionStatus.keySource "Byok" (the simulator's choice).
_BYOK_MARKERS = ("byok", "bringyourownkey", "customerbyok")


def _ci(data: dict[str, Any] | None, name: str) -> Any:
    """A dict value by case-insensitive key."""
    if not isinstance(data, dict):
        return None
    if name in data:
        return data[name]
    lowered = name.lower()
    return next((v for k, v in data.items() if k.lower() == lowered), None)


def environment_info(data: dict[str, Any]) -> EnvironmentInfo:
    """An EnvironmentInfo from a BAP environment payload."""
    props = data.get("properties") or {}
    states = props.get("states") or {}
    runtime = states.get("runtime") or {}
    management = states.get("management") or {}
    governance = props.get("governanceConfiguration") or {}
    protection = props.get("protectionStatus") or {}
    policies = _ci(props, "enterprisePolicies") or {}
    cmk_raw = _ci(policies, "customerManagedKeys")
    cmk = None
    if isinstance(cmk_raw, dict) and (cmk_raw.get("systemId") or cmk_raw.get("id")):
        cmk = CmkLink(
            policy_arm_id=cmk_raw.get("id"),
            system_id=cmk_raw.get("systemId"),
            status=cmk_raw.get("linkStatus") or cmk_raw.get("status"),
            location=cmk_raw.get("location"),
        )
    key_by = protection.get("keyManagedBy")
    key_source = str(protection.get("keySource") or "").replace(" ", "").lower()
    byok = key_source in _BYOK_MARKERS or (key_by or "").replace(" ", "").lower() in _BYOK_MARKERS
    return EnvironmentInfo(
        id=data.get("name") or str(data.get("id", "")).rsplit("/", 1)[-1],
        display_name=props.get("displayName") or data.get("name") or "",
        location=data.get("location") or "",
        azure_region=props.get("azureRegion"),
        sku=props.get("environmentSku"),
        managed=str(governance.get("protectionLevel") or "").lower() == "standard",
        runtime_state=runtime.get("id"),
        management_state=management.get("id"),
        key_managed_by=key_by,
        byok=byok,
        cmk=cmk,
        runtime_reason=runtime.get("runtimeReasonCode"),
    )


def operation_status(data: dict[str, Any], retry_after: float | None = None) -> OperationStatus:
    """An OperationStatus from a BAP lifecycle-operation payload."""
    state = data.get("state")
    state_id = state.get("id") if isinstance(state, dict) else state or data.get("status")
    error = data.get("error") or {}
    stages = tuple(
        (
            str(s.get("id") or s.get("name")),
            str((s.get("state") or {}).get("id") if isinstance(s.get("state"), dict) else s.get("state")),
        )
        for s in data.get("stages") or []
        if isinstance(s, dict)
    )
    return OperationStatus(
        state=str(state_id or "Unknown"),
        error_code=error.get("code") if isinstance(error, dict) else None,
        error_message=error.get("message") if isinstance(error, dict) else None,
        stages=stages,
        retry_after=retry_after,
    )


class PowerPlatformService:
    """BAP calls of the Power Platform-side identity; the start of every operation is journaled."""

    def __init__(
        self,
        settings: PowerPlatformSettings,
        journal: Journal | None = None,
        *,
        http: httpx.Client | None = None,
        credential: TokenCredential | None = None,
        change_id: str | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pacing: TokenBucket | None = None,
    ) -> None:
        self.settings = settings
        self.credential = credential or build_credential(settings)
        self.audit = JournalContext(journal, settings.actor, change_id)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._owns_http = http is None
        self.http = http or httpx.Client(
            base_url=settings.bap_endpoint.rstrip("/"),
            verify=ssl.create_default_context(cafile=settings.ca_bundle) if settings.ca_bundle else True,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            headers={"User-Agent": "cmk-orchestrator", "Accept": "application/json"},
        )
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()
        self._bap_host = (urlsplit(settings.bap_endpoint).hostname or "").lower()
        # One bucket per caller and endpoint in the process: every client of this identity shares the limit.
        # A client with its own sleep (a fake clock) keeps a bucket of its own: waits live in its time.
        self.pacing = pacing or (
            pacing_for(
                "bap", settings.bap_endpoint, settings.actor, settings.rate_per_second, settings.rate_burst
            )
            if sleep is time.sleep
            else TokenBucket(settings.rate_per_second or None, settings.rate_burst)
        )
        self.list_pages = 0  # pages of the last full environment list: what the next one costs

    def close(self) -> None:
        """Close the HTTP client when this service created it."""
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> PowerPlatformService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------------------
    def _bearer(self) -> str:
        with self._token_lock:
            if self._token is None or self._token[1] - 300 <= time.time():
                try:
                    token = self.credential.get_token(self.settings.scope)
                except AzureError as exc:
                    raise from_azure_error(exc, action="Getting a Power Platform token") from exc
                self._token = (token.token, float(token.expires_on))
            return self._token[0]

    def _check_url(self, url: str) -> None:
        # A stored handle's URL gets our bearer token: only ever send it to the BAP host or its subdomains.
        parts = urlsplit(url)
        if not parts.scheme:
            return
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not (host == self._bap_host or host.endswith("." + self._bap_host)):
            raise ConfigurationError(
                f"Refusing to send the Power Platform token to {parts.scheme}://{host}: it is not the "
                "configured "
                f"bap_endpoint host ({self._bap_host}). Check the stored operation handle and the settings.",
                target=url,
            )

    def _send(
        self,
        method: str,
        url: str,
        *,
        action: str,
        target: str,
        json: Any = None,
        idempotent: bool,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> httpx.Response:
        """One logical request with retries: a response whose status is in ok, else a CmkError."""
        self._check_url(url)
        attempt = 0
        throttled = False  # this request got a 429 and sleeps its Retry-After itself
        while True:
            attempt += 1
            headers = {
                "Authorization": f"Bearer {self._bearer()}",
                "x-ms-client-request-id": str(uuid.uuid4()),
            }
            wait = self.pacing.reserve(after_429=throttled)
            if wait > 0:
                self.sleep(wait)
            try:
                response = self.http.request(method, url, json=json, headers=headers)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    raise ConnectionFailedError(
                        f"{action} failed: the TLS certificate of {self.settings.bap_endpoint} is not "
                        "trusted. "
                        "Set ca_bundle to the CA that signed it (the simulator's endpoints.json "
                        "gives ca_bundle).",
                        target=target,
                    ) from exc
                delay = self.retry.delay(
                    attempt, status=None, retry_after=None, idempotent=idempotent, sent=sent
                )
                if delay is None:
                    raise ConnectionFailedError(
                        f"{action} failed: {type(exc).__name__} talking to {self.settings.bap_endpoint}. "
                        + (
                            "The request may have reached the service: re-read the environment "
                            "before retrying."
                            if sent and not idempotent
                            else "Check the endpoint and the network, then retry."
                        ),
                        target=target,
                    ) from exc
                log.info(
                    "%s: %s, retrying in %.1f s (attempt %d)", action, type(exc).__name__, delay, attempt
                )
                self.sleep(delay)
                continue
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.status_code == 429:
                throttled = True
                self.pacing.throttled(retry_after)  # the other requests of this caller wait too
            else:
                self.pacing.record()
            if response.status_code in ok:
                return response
            delay = self.retry.delay(
                attempt, status=response.status_code, retry_after=retry_after, idempotent=idempotent
            )
            if delay is None:
                raise from_httpx_response(response, action=action, target=target)
            log.info(
                "%s: HTTP %d, retrying in %.1f s (attempt %d)", action, response.status_code, delay, attempt
            )
            self.sleep(delay)

    def _get_json(self, url: str, *, action: str, target: str) -> tuple[dict[str, Any], httpx.Response]:
        response = self._send("GET", url, action=action, target=target, idempotent=True, ok=(200,))
        try:
            return response.json(), response
        except ValueError as exc:
            raise ServiceError(
                f"{action}: the service answered non-JSON. Retry later.", target=target
            ) from exc

    # -- environments ----------------------------------------------------------------------------------
    def _env_url(self, env_id: str = "") -> str:
        path = f"{BAP}/scopes/admin/environments" + (f"/{env_id}" if env_id else "")
        return f"{path}?api-version={self.settings.environments_api_version}"

    def list_environments(self) -> list[EnvironmentInfo]:
        """Every environment the admin can see, following nextLink."""
        url: str | None = self._env_url()
        out: list[EnvironmentInfo] = []
        pages = 0
        while url:
            page, _ = self._get_json(url, action="Listing environments", target="environments")
            pages += 1
            out.extend(environment_info(item) for item in page.get("value") or [])
            url = page.get("nextLink") or page.get("@odata.nextLink")
        self.list_pages = pages
        return out

    def get_environment(self, env_id: str) -> EnvironmentInfo:
        """One environment; NotFoundError when it does not exist or the caller is no Power Platform admin."""
        data, _ = self._get_json(self._env_url(env_id), action="Reading the environment", target=env_id)
        return environment_info(data)

    # -- lifecycle operations --------------------------------------------------------------------------
    def _start(
        self,
        env_id: str,
        kind: OperationKind,
        url: str,
        body: Any,
        *,
        action: str,
        system_id: str | None = None,
        before: Any = None,
    ) -> httpx.Response:
        try:
            return self._send("POST", url, action=action, target=env_id, json=body, idempotent=False)
        except CmkError as exc:
            self.audit.record(
                action=f"bap.{kind}.start",
                target=env_id,
                before=before,
                after=None,
                outcome="busy" if isinstance(exc, BusyError) else "failed",
                correlation_id=exc.correlation_id,
                detail={"error": exc.to_dict(), "system_id": system_id},
            )
            raise

    def _handle(
        self, env_id: str, kind: OperationKind, response: httpx.Response, system_id: str | None
    ) -> OperationHandle:
        url = response.headers.get("operation-location") or response.headers.get("Location")
        if response.status_code == 202 and not url:
            raise ServiceError(
                f"The {kind} of environment {env_id} was accepted but the service gave no operation "
                "URL to follow. "
                "Re-read the environment to see its state before doing anything else.",
                target=env_id,
                correlation_id=correlation_id_from(response.headers, response.request.headers),
            )
        operation_id = None
        if url:
            operation_id = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or None
        return OperationHandle(
            env_id=env_id,
            kind=kind,
            url=url if response.status_code == 202 else None,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            operation_id=operation_id,
            started_at=datetime.now(UTC),
            system_id=system_id,
            correlation_id=correlation_id_from(response.headers, response.request.headers),
        )

    def _link_or_unlink(
        self, kind: OperationKind, env_id: str, system_id: str, current: EnvironmentInfo | None
    ) -> OperationHandle:
        version = self.settings.link_api_version
        url = f"{BAP}/environments/{env_id}/enterprisePolicies/Encryption/{kind}?api-version={version}"
        before = current.cmk.__dict__ if current and current.cmk else None
        response = self._start(
            env_id,
            kind,
            url,
            {"SystemId": system_id},
            action=f"Starting the {kind}",
            system_id=system_id,
            before=before,
        )
        handle = self._handle(env_id, kind, response, system_id)
        self.audit.record(
            action=f"bap.{kind}.start",
            target=env_id,
            before=before,
            after={"system_id": system_id, "operation": handle.to_dict()},
            correlation_id=handle.correlation_id,
        )
        return handle

    def start_link(
        self, env_id: str, system_id: str, *, current: EnvironmentInfo | None = None
    ) -> OperationHandle:
        """POST link (apply the policy's key): the handle to poll; BusyError on 409 OperationNotStartable."""
        return self._link_or_unlink("link", env_id, system_id, current)

    def start_unlink(
        self, env_id: str, system_id: str, *, current: EnvironmentInfo | None = None
    ) -> OperationHandle:
        """POST unlink (back to a Microsoft-managed key); 202 gives the handle to poll."""
        return self._link_or_unlink("unlink", env_id, system_id, current)

    def enable_managed_environment(self, env_id: str) -> OperationHandle | None:
        """Make the environment a Managed Environment; None when it already is or finished at once."""
        version = self.settings.governance_api_version
        url = f"{BAP}/environments/{env_id}/governanceConfiguration?api-version={version}"
        body = {"protectionLevel": "Standard", "settings": {"extendedSettings": {}}}
        try:
            response = self._start(env_id, "governance", url, body, action="Enabling the Managed Environment")
        except (BusyError, CmkError) as exc:
            # 409 means "already managed" as well as "busy": the environment tells which.
            if exc.status != 409:
                raise
            if self.get_environment(env_id).managed:
                return None
            raise BusyError(
                f"Environment {env_id} is busy with another lifecycle operation, so it cannot become "
                "a Managed "
                "Environment now. Wait for the operation to finish (re-read the environment) and retry.",
                code=exc.code,
                status=409,
                target=env_id,
                correlation_id=exc.correlation_id,
            ) from exc
        handle = self._handle(env_id, "governance", response, None)
        self.audit.record(
            action="bap.governance.start",
            target=env_id,
            before={"managed": False},
            after={"managed": True, "operation": handle.to_dict()},
            correlation_id=handle.correlation_id,
        )
        return handle if handle.url else None

    def reenable_environment(self, env_id: str) -> OperationHandle:
        """The simulator's stand-in for the admin center's "Re-enable environment" (no documented API exists)."""
        if not self.settings.undocumented_reenable:
            raise PreconditionFailedError(
                f"Environment {env_id}: re-enabling a locked environment has no documented API; use the Power "
                "Platform admin center (Environments > the environment > Re-enable environment).",
                target=env_id,
            )
        url = (
            f"{BAP}/scopes/admin/environments/{env_id}/enable?api-version={self.settings.enable_api_version}"
        )
        response = self._start(env_id, "enable", url, {}, action="Re-enabling the environment")
        handle = self._handle(env_id, "enable", response, None)
        self.audit.record(
            action="bap.enable.start",
            target=env_id,
            before={"runtime": "Disabled"},
            after={"operation": handle.to_dict()},
            correlation_id=handle.correlation_id,
        )
        return handle

    def poll(self, handle: OperationHandle) -> OperationStatus:
        """The operation's current state (one GET, with retries on 429/5xx)."""
        if handle.url is None:
            return OperationStatus(state="Succeeded")
        data, response = self._get_json(
            handle.url, action=f"Polling the {handle.kind} operation", target=handle.env_id
        )
        return operation_status(data, parse_retry_after(response.headers.get("Retry-After")))

    def wait(
        self,
        handle: OperationHandle,
        timeout_seconds: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> OperationStatus:
        """Poll until the operation ends, sleeping Retry-After; on timeout the error keeps the handle."""
        deadline = clock() + timeout_seconds
        while True:
            status = self.poll(handle)
            if status.state == "Succeeded":
                return status
            if status.done:
                raise OperationFailedError(
                    f"The {handle.kind} operation on environment {handle.env_id} ended {status.state}: "
                    f"{status.error_message or 'no reason given'}. Fix the cause, re-read the environment "
                    "(data stays on the previous key), then start the operation again.",
                    code=status.error_code,
                    target=handle.env_id,
                    correlation_id=handle.correlation_id,
                    handle=handle,
                )
            remaining = deadline - clock()
            if remaining <= 0:
                raise OperationTimeoutError(
                    f"The {handle.kind} operation on environment {handle.env_id} is still "
                    f"{status.state} after "
                    f"{timeout_seconds:g} s. It keeps running: resume later by waiting on the stored handle "
                    "(never start it again).",
                    target=handle.env_id,
                    correlation_id=handle.correlation_id,
                    handle=handle,
                )
            delay = status.retry_after or handle.retry_after or self.settings.default_poll_seconds
            sleep(max(0.0, min(delay, remaining)))


__all__ = ["PowerPlatformService", "ThrottledError", "environment_info", "operation_status"]
