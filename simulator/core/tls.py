"""A CA and server certificate minted by the simulator itself (trustme)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the CA bundle clients trust and the server's cert and key."""

    ca_bundle: Path
    cert: Path
    key: Path


def mint_tls(directory: Path, host: str) -> TlsFiles:
    """Write ca.pem, server.pem and server.key for host (plus localhost) into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="cmk-orchestrator simulator")
    names = sorted({host, "127.0.0.1", "localhost"})
    cert = ca.issue_cert(*names)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca_bundle))
    cert.private_key_pem.write_to_path(str(files.key))
    files.key.chmod(0o600)
    with open(files.cert, "wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    return files
