"""Where notify's e-mail and SMS go on a developer's machine (`make up`): a local SMTP server and a stand-in
for the SMS carrier's HTTP API (the shape in services/notify/adapters/channels.py), each message kept as a
file to read: data/outbox/mail/*.eml and data/outbox/sms/*.json.

`python -m services.notify.local_outbox serve` (started by the local stack), `... list` prints what arrived.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def _keep(folder: Path, suffix: str, content: bytes) -> None:
    """Written whole, then named: a reader never sees half a message."""
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}{suffix}"
    partial = folder / (name + ".partial")
    partial.write_bytes(content)
    os.replace(partial, folder / name)


class MailFolder:
    """An aiosmtpd handler that keeps each message as an .eml file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        _keep(self.folder, ".eml", envelope.original_content or b"")
        return "250 OK"


def carrier(folder: Path, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            message_id = uuid.uuid4().hex
            try:
                sms = json.loads(body)
                _keep(
                    folder, ".json", json.dumps(sms | {"message_id": message_id}, ensure_ascii=False, indent=2).encode()
                )
                status, answer = 200, {"message_id": message_id}
            except ValueError:
                status, answer = 400, {"error": "not JSON"}
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def serve(root: Path, smtp_port: int, carrier_port: int) -> int:
    mail, sms = root / "mail", root / "sms"
    mail.mkdir(parents=True, exist_ok=True)
    sms.mkdir(parents=True, exist_ok=True)
    smtp = Controller(MailFolder(mail), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    http = carrier(sms, carrier_port)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(
        f"local mail on 127.0.0.1:{smtp_port} -> {mail}; SMS carrier on 127.0.0.1:{carrier_port} -> {sms}", flush=True
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    http.shutdown()
    smtp.stop()
    return 0


def show(root: Path) -> int:
    for path in sorted((root / "mail").glob("*.eml")):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        print(f"== {path.name}  To: {mail['To']}  Subject: {mail['Subject']}")
        body = mail.get_body(preferencelist=("plain",))
        print(body.get_content() if body is not None else "")
    for path in sorted((root / "sms").glob("*.json")):
        sms = json.loads(path.read_text(encoding="utf-8"))
        print(f"== {path.name}  SMS to {sms.get('to')}\n{sms.get('text')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.notify.local_outbox")
    parser.add_argument("command", choices=["serve", "list"])
    parser.add_argument("--dir", default=os.environ.get("LOCAL_OUTBOX_DIR", "data/outbox"))
    parser.add_argument("--smtp-port", type=int, default=int(os.environ.get("LOCAL_SMTP_PORT", "2525")))
    parser.add_argument("--carrier-port", type=int, default=int(os.environ.get("LOCAL_CARRIER_PORT", "8025")))
    args = parser.parse_args(argv)
    root = Path(args.dir)
    return serve(root, args.smtp_port, args.carrier_port) if args.command == "serve" else show(root)


if __name__ == "__main__":
    sys.exit(main())
