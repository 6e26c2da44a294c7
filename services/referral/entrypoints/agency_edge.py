"""The agency edge: a second gRPC server of the referral process with the agency API alone, for the agencies' own
systems and their credentials (ADR 0014), over TLS. It runs as a supervised worker of the process, so it starts
and stops with it and a failure to serve is seen like any worker's."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from platform_runtime.grpc_server import GuardInterceptor
from platform_runtime.supervisor import Worker, WorkerContext
from services.referral.entrypoints import grpc_api
from services.referral.service_layer.credentials import AgencyCredentials, AgencyTokenVerifier
from services.referral.service_layer.services import ReferralService

log = logging.getLogger(__name__)

NAME = "referral-agency-edge"


class AgencyEdge:
    def __init__(
        self,
        service: ReferralService,
        credentials: AgencyCredentials,
        *,
        port: int,
        tls: tuple[bytes, bytes] | None,
        bind_host: str = "[::]",
        poll_seconds: float = grpc_api.STREAM_POLL_SECONDS,
        max_workers: int = 64,  # every open stream holds a thread
    ) -> None:
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=[GuardInterceptor(AgencyTokenVerifier(credentials), frozenset())],
        )
        grpc_api.register_agency_edge(service, credentials, poll_seconds)(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), self.server)
        address = f"{bind_host}:{port}"
        if tls is None:
            log.warning("the agency edge serves WITHOUT TLS on %s: for development only", address)
            self.port = self.server.add_insecure_port(address)
        else:
            certificate, key = tls
            self.port = self.server.add_secure_port(address, grpc.ssl_server_credentials([(key, certificate)]))
        if self.port == 0:
            raise RuntimeError(f"cannot bind the agency edge on {address}")

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float = 5.0) -> None:
        self.server.stop(grace).wait(grace + 1)

    def worker(self) -> Worker:
        def run(context: WorkerContext) -> None:
            self.start()
            log.info("agency edge serving on port %d", self.port)
            context.healthy()
            try:
                context.stop.wait()
            finally:
                self.stop()

        return Worker(NAME, run)
