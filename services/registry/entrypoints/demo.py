"""Synthetic demo children for a town (`python -m services.registry seed-demo`): made up, never real."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date

from platform_runtime.consumer import system_principal
from platform_runtime.tenancy import acting_as
from services.registry.domain.synthetic import generate_children
from services.registry.service_layer.commands import RegisterChild
from services.registry.service_layer.registry import RegistryService
from services.registry.service_layer.views import Village

# Invented names for the demo's villages and communities (made up like the children).
DEMO_VILLAGE_NAMES = (
    "东关村",
    "西庄村",
    "南河村",
    "北坡村",
    "前街社区",
    "后街社区",
    "柳林村",
    "石桥村",
    "新华社区",
    "杨家庄村",
)


def demo_villages(tenant: str, residence_codes: Iterable[str]) -> list[Village]:
    """The town's villages the synthetic children live in (a synthetic code's last three digits in the town),
    named, so the register's filter and the dashboard show names rather than codes."""
    codes = sorted({tenant + code[-3:] for code in residence_codes})
    return [
        Village(code, DEMO_VILLAGE_NAMES[i % len(DEMO_VILLAGE_NAMES)] + ("" if i < len(DEMO_VILLAGE_NAMES) else str(i)))
        for i, code in enumerate(codes)
    ]


def seed_demo_children(service: RegistryService, tenant: str, count: int, *, seed: int = 2014) -> int:
    """Register `count` synthetic children in `tenant` unless it already has children; returns how many."""
    with acting_as(system_principal(tenant, "demo-seed")):
        existing, _ = service.list_children(page_size=1, page_token="")
        if existing:
            return 0
        rng = random.Random(seed)  # noqa: S311 - demo data, not security
        children = generate_children(count, rng=rng, as_of=date.today())
        service.set_villages(demo_villages(tenant, [child.residence_code for child in children]))
        for child in children:
            village = tenant + child.residence_code[-3:]
            service.register_child(
                RegisterChild(
                    legal_name=child.name,
                    sex=child.sex,
                    birth_date=child.birth_date,
                    identity_number=child.identity_number or "",
                    ethnicity_code=child.ethnicity.value,
                    # Registration elsewhere (a 6-digit code) is kept as text: the field holds town codes.
                    household_division_code=tenant if len(child.household_registration_code) == 9 else "",
                    household_address="" if len(child.household_registration_code) == 9 else "外地户籍",
                    residence_division_code=village,
                    school=child.school or "",
                )
            )
    return count
