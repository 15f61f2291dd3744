"""The audit journal: append-only, filterable, thread-safe, secrets scrubbed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from pydantic import SecretStr

from cmk.state.journal import REDACTED, Journal


def test_record_and_filter(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j" / "journal.jsonl")
    first = journal.record(
        actor="a", action="x.create", target="T1", before=None, after={"v": 1}, change_id="c1"
    )
    journal.record(
        actor="a",
        action="x.delete",
        target="t2",
        before={"v": 1},
        after=None,
        change_id="c2",
        correlation_id="r",
    )
    assert first["time"].endswith("+00:00") and first["outcome"] == "succeeded"
    assert [e["action"] for e in journal.entries()] == ["x.create", "x.delete"]
    assert [e["target"] for e in journal.entries(change_id="c2")] == ["t2"]
    assert len(journal.entries(action="x.create")) == 1
    assert len(journal.entries(target="t1")) == 1
    lines = (tmp_path / "j" / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["correlation_id"] for line in lines] == [None, "r"]


def test_secrets_are_scrubbed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.record(
        actor="a",
        action="x",
        target="t",
        before={"client_secret": "hunter2", "nested": [{"Authorization": "Bearer abc.def"}]},
        after={"note": "sent Bearer eyJhbGciOi.payload.sig", "pw": SecretStr("s3cr3t")},
        detail={"identity_header": "hdr-value"},
    )
    text = (tmp_path / "journal.jsonl").read_text()
    for secret in ("hunter2", "abc.def", "eyJhbGciOi", "s3cr3t", "hdr-value"):
        assert secret not in text
    assert REDACTED in text


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")

    def write(n: int) -> None:
        for i in range(50):
            journal.record(
                actor=f"w{n}", action="x", target=f"{n}-{i}", before=None, after={"pad": "x" * 500}
            )

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = journal.entries()
    assert len(entries) == 400
    assert len({e["target"] for e in entries}) == 400


def test_empty_journal(tmp_path: Path) -> None:
    assert Journal(tmp_path / "none.jsonl").entries() == []
