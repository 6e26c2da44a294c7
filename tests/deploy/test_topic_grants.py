"""The chart grants each component exactly the topics its code consumes: a topic it never reads is a grant an
attacker in that pod could use (issue #15), and a topic it reads without a grant stops its consumer in
production while every local test passes (benefits read referral.referral without one)."""

from __future__ import annotations

import importlib
import inspect

import pytest

from platform_runtime.service import ConsumerSpec
from tests.deploy.conftest import Doc

SERVICES = ["registry", "reporting", "referral", "benefits", "notify"]


def consumed_by_code(service: str) -> set[str]:
    """The topics of the service's consumers. Building them only defines the handlers (closures over the
    service objects), so placeholders stand in for the services they are given."""
    module = importlib.import_module(f"services.{service}.entrypoints.consumers")
    build = module.consumers
    placeholders = [object()] * len(inspect.signature(build).parameters)
    specs: list[ConsumerSpec] = build(*placeholders)
    return {topic for spec in specs for topic in spec.topics}


@pytest.mark.parametrize("service", SERVICES)
def test_the_chart_grants_the_topics_the_code_consumes_and_no_others(service: str, chart_values: Doc) -> None:
    granted = set(chart_values["components"][service]["kafka"]["consumes"])
    consumed = consumed_by_code(service)
    assert granted == consumed, (
        f"{service}: granted but never read {granted - consumed}, read without a grant {consumed - granted}"
    )
