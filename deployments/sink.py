"""`make serve`'s local notification sink: a loopback HTTP endpoint that appends every POST to a JSON-lines file.

The stack points the approval and alert webhook blocks at it when no --webhook-url is given, so notifications
are on by default and readable in .state/notifications.jsonl (and the stack's log). Replace it with a real
Slack/Teams/webhook block for production (docs/operations.md, "Alerts").
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("deployments.sink")


class NotificationSink:
    """A loopback HTTP server; each POSTed JSON body becomes one line of the file, with the time received."""

    def __init__(self, path: Path, host: str = "127.0.0.1") -> None:
        self.path = path
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    data: Any = json.loads(body or b"{}")
                except ValueError:
                    data = {"text": body.decode(errors="replace")}
                sink.record(data)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}/notifications"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> NotificationSink:
        """Start serving in a background thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def record(self, data: Any) -> None:
        """Append one notification to the file and log its subject."""
        line = {
            "received": datetime.now(UTC).isoformat(timespec="seconds"),
            **(data if isinstance(data, dict) else {"text": data}),
        }
        with self._lock, self.path.open("a") as out:
            out.write(json.dumps(line) + "\n")
        log.info("Notification: %s", line.get("subject") or str(line.get("text", ""))[:80])

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
