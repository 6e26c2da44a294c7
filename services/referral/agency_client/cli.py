"""A small agency command-line client that uses only the agency API (the edge, ADR 0014): the example of how an
agency's own system integrates. It needs only the generated `minorprot` stubs and grpcio.

    export AGENCY_TOKEN=...            # issued by the district administrator, shown once
    python -m services.referral.agency_client --target agency.example:50063 --ca-file ca.pem list --due overdue
    python -m services.referral.agency_client ... accept REFERRAL_ID --note "on our way"
    python -m services.referral.agency_client ... follow --cursor-file seen.cursor   # resumes where it stopped

Changes are retried safely: every change sends an idempotency key (given with --key, or made up and printed), so
sending the same command again with the same key changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import grpc
from google.protobuf import json_format
from minorprot.referral.v1 import referral_pb2, referral_pb2_grpc

# A change command: (RPC name, request type, the request's text field, whether the text is required).
CHANGES: dict[str, tuple[str, type[Any], str, bool]] = {
    "accept": ("AcceptReferral", referral_pb2.AcceptReferralRequest, "note", False),
    "reject": ("RejectReferral", referral_pb2.RejectReferralRequest, "reason", True),
    "return": ("ReturnReferral", referral_pb2.ReturnReferralRequest, "question", True),
    "progress": ("AddProgress", referral_pb2.AddProgressRequest, "note", True),
    "complete": ("CompleteReferral", referral_pb2.CompleteReferralRequest, "outcome", True),
}


def channel(target: str, ca_file: str, plaintext: bool) -> grpc.Channel:
    if plaintext:
        return grpc.insecure_channel(target)
    root = Path(ca_file).read_bytes() if ca_file else None  # None: the system's trusted roots
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root))


def _show(message: Any, out: TextIO) -> None:
    out.write(json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True), ensure_ascii=False))
    out.write("\n")


def run(args: argparse.Namespace, stub: referral_pb2_grpc.AgencyServiceStub, out: TextIO) -> int:
    metadata = (("authorization", f"Bearer {args.token}"),)
    if args.command == "list":
        token = ""
        while True:
            page = stub.ListAgencyReferrals(
                referral_pb2.ListAgencyReferralsRequest(status=args.status, due=args.due, page_token=token),
                metadata=metadata,
                timeout=args.timeout,
            )
            for referral in page.referrals:
                _show(referral, out)
            token = page.next_page_token
            if not token:
                return 0
    if args.command == "follow":
        return follow(args, stub, metadata, out)
    method, request_type, field, required = CHANGES[args.command]
    text = getattr(args, field, "") or ""
    if required and not text.strip():
        print(f"--{field} is required", file=sys.stderr)
        return 2
    key = args.key or uuid.uuid4().hex
    request = request_type(referral_id=args.referral_id, idempotency_key=key)
    setattr(request, field, text)
    if args.expected_version is not None:
        request.expected_version = args.expected_version
    print(f"idempotency key {key} (send the same command with --key {key} to retry safely)", file=sys.stderr)
    reply = getattr(stub, method)(request, metadata=metadata, timeout=args.timeout)
    _show(reply.referral, out)
    return 0


def follow(
    args: argparse.Namespace,
    stub: referral_pb2_grpc.AgencyServiceStub,
    metadata: Sequence[tuple[str, str]],
    out: TextIO,
) -> int:
    """Print changes as they come; the cursor of the last one printed is kept in --cursor-file, so the next run
    resumes right after it (nothing lost, nothing repeated)."""
    cursor_file = Path(args.cursor_file) if args.cursor_file else None
    cursor = cursor_file.read_text().strip() if cursor_file and cursor_file.exists() else ""
    limit = args.count
    seen = 0
    stream = stub.StreamReferralChanges(
        referral_pb2.StreamReferralChangesRequest(after_cursor=cursor), metadata=metadata
    )
    try:
        for change in stream:
            _show(change, out)
            out.flush()
            if cursor_file:
                cursor_file.write_text(change.cursor)  # after printing: a crash in between repeats, never loses
            seen += 1
            if limit and seen >= limit:
                break
    finally:
        stream.cancel()
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m services.referral.agency_client", description=__doc__.split("\n")[0])
    root.add_argument("--target", default=os.environ.get("AGENCY_API_TARGET", "localhost:50063"))
    root.add_argument("--token", default=os.environ.get("AGENCY_TOKEN", ""), help="or AGENCY_TOKEN")
    root.add_argument("--ca-file", default=os.environ.get("AGENCY_API_CA_FILE", ""), help="the edge's CA (PEM)")
    root.add_argument("--plaintext", action="store_true", help="no TLS (a developer's machine only)")
    root.add_argument("--timeout", type=float, default=15.0)
    commands = root.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the referrals addressed to your agency")
    listing.add_argument("--status", default="")
    listing.add_argument("--due", default="", choices=["", "soon", "overdue"])
    following = commands.add_parser("follow", help="new and changed referrals as they happen")
    following.add_argument("--cursor-file", default="", help="where the last cursor is kept, to resume")
    following.add_argument("--count", type=int, default=0, help="stop after this many (0: run until stopped)")
    for name, (_method, _type, field, _required) in CHANGES.items():
        change = commands.add_parser(name, help=f"{name} a referral")
        change.add_argument("referral_id")
        change.add_argument(f"--{field}", default="")
        change.add_argument("--key", default="", help="idempotency key (repeat it to retry safely)")
        change.add_argument("--expected-version", type=int, default=None)
    return root


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, connect: Callable[..., grpc.Channel] = channel
) -> int:
    args = parser().parse_args(argv)
    if not args.token:
        print("no credential: pass --token or set AGENCY_TOKEN", file=sys.stderr)
        return 2
    with connect(args.target, args.ca_file, args.plaintext) as opened:
        try:
            return run(args, referral_pb2_grpc.AgencyServiceStub(opened), out)
        except grpc.RpcError as error:
            print(f"{error.code().name}: {error.details()}", file=sys.stderr)
            return 1
