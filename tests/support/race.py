"""Start calls at the same moment, each on its own thread: for tests of what two people doing one thing at once
may and may not both achieve."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc


def race(*calls: Callable[[], Any]) -> list[grpc.StatusCode]:
    """The status code each call ended with (OK, or the gRPC error's), in the order given."""
    start = threading.Barrier(len(calls))
    codes: list[grpc.StatusCode] = [grpc.StatusCode.UNKNOWN] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        start.wait()
        try:
            call()
            codes[index] = grpc.StatusCode.OK
        except grpc.RpcError as error:
            codes[index] = error.code()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return codes
