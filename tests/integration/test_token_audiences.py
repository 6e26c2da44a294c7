"""Tokens over real gRPC on loopback: each service accepts only tokens meant for it, signed by a key of its keyring.

The registry and reporting run as their `serve` commands build them (tests/support/services.py), with the
session's keyring (the gateway's key and reporting's own).
"""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest
from minorprot.registry.v1 import registry_pb2, registry_pb2_grpc
from minorprot.reporting.v1 import reporting_pb2, reporting_pb2_grpc

from platform_runtime.auth import Principal, Role, TokenIssuer, generate_keypair, public_pem_of, workload_principal
from platform_runtime.settings import KafkaSettings
from tests.support.infra import PILOT_TENANT, Secrets
from tests.support.services import Running, bearer, running_registry

pytestmark = pytest.mark.integration

CASEWORKER = Principal("caseworker@pilot", "王社工", Role.CASEWORKER, PILOT_TENANT, PILOT_TENANT[:6])


def list_children(registry: Running, token: str) -> grpc.StatusCode:
    with registry.channel() as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        try:
            stub.ListChildren(registry_pb2.ListChildrenRequest(page_size=1), metadata=bearer(token))
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def list_reports(reporting: Running, token: str) -> grpc.StatusCode:
    with reporting.channel() as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        try:
            stub.ListReports(reporting_pb2.ListReportsRequest(page_size=1), metadata=bearer(token))
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_a_token_for_the_registry_is_refused_by_reporting_and_the_other_way_round(
    registry: Running, reporting: Running, secrets: Secrets
) -> None:
    for_registry = secrets.issuer().issue(CASEWORKER, "registry")
    for_reporting = secrets.issuer().issue(CASEWORKER, "reporting")
    assert list_children(registry, for_registry) is grpc.StatusCode.OK
    assert list_reports(reporting, for_reporting) is grpc.StatusCode.OK
    assert list_reports(reporting, for_registry) is grpc.StatusCode.UNAUTHENTICATED
    assert list_children(registry, for_reporting) is grpc.StatusCode.UNAUTHENTICATED
    for_the_gateway = secrets.issuer().issue(CASEWORKER, "gateway")  # an API client's token
    assert list_children(registry, for_the_gateway) is grpc.StatusCode.UNAUTHENTICATED


def test_a_token_with_an_unknown_key_id_is_refused(registry: Running, secrets: Secrets) -> None:
    ((_, gateway_key),) = secrets.signing_key.items()
    unknown_kid = TokenIssuer({"gateway-retired": gateway_key}).issue(CASEWORKER, "registry")  # right key, no such id
    stranger = TokenIssuer({"gateway-test1": generate_keypair()[0]}).issue(CASEWORKER, "registry")  # id, wrong key
    assert list_children(registry, unknown_kid) is grpc.StatusCode.UNAUTHENTICATED
    assert list_children(registry, stranger) is grpc.StatusCode.UNAUTHENTICATED


def test_reporting_signs_for_itself_only(registry: Running, secrets: Secrets) -> None:
    reporting = TokenIssuer(secrets.workload_keys["reporting"])
    assert list_children(registry, reporting.issue(workload_principal("reporting", PILOT_TENANT), "registry")) is (
        grpc.StatusCode.OK
    )
    assert list_children(registry, reporting.issue(CASEWORKER, "registry")) is grpc.StatusCode.UNAUTHENTICATED


def test_rotating_the_signing_key_keeps_tokens_working_and_retires_the_old_key(
    postgres_url: str, kafka: KafkaSettings, secrets: Secrets
) -> None:
    old_issuer = secrets.issuer()
    new_private = generate_keypair()[0]
    new_issuer = TokenIssuer({"gateway-test2": new_private})
    both = replace(secrets, public_keys=secrets.public_keys | {"gateway-test2": public_pem_of(new_private)})
    # 1. The new public key joins the keyring (a restart of the service): the old key's tokens still pass.
    with running_registry(postgres_url, kafka, both) as registry:
        assert list_children(registry, old_issuer.issue(CASEWORKER, "registry")) is grpc.StatusCode.OK
        # 2. The gateway signs with the new key: its tokens pass too, beside the old ones still in use.
        assert list_children(registry, new_issuer.issue(CASEWORKER, "registry")) is grpc.StatusCode.OK
    # 3. Once the old tokens have expired, the old key leaves the keyring: what it signs is refused.
    retired = replace(both, public_keys={k: v for k, v in both.public_keys.items() if k != "gateway-test1"})
    with running_registry(postgres_url, kafka, retired) as registry:
        assert list_children(registry, new_issuer.issue(CASEWORKER, "registry")) is grpc.StatusCode.OK
        assert list_children(registry, old_issuer.issue(CASEWORKER, "registry")) is grpc.StatusCode.UNAUTHENTICATED
