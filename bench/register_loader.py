"""A big register for the benchmarks, fast: synthetic children written straight into the registry's database
by the registry's own bulk path, without the survey import's per-row matching (which made 100,000 children
take most of an hour).

Each child is what a survey row gives (a category, both parents, a village of the town): its cells are read
by the survey's own reader (survey_rows.read_row) and checked by RegisterChild's and AddCategory's rules,
then `RegistryService.record_children` records it as the survey import does, a batch per transaction: the
record with its identity number encrypted with the town's key and blind-indexed, its case file, categories
(typed in and derived), family members, match keys, change history, timeline and events (in the outbox, for
the relay to publish once the registry runs). The town's villages are recorded first, with names.

Run it while the registry is stopped (on SQLite the registry's process would wait for the writes).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database, utcnow
from platform_runtime.settings import EnvReader
from platform_runtime.tenancy import acting_as
from platform_runtime.vocabulary import china_today
from services.registry import bootstrap
from services.registry.adapters.orm import metadata
from services.registry.domain import synthetic
from services.registry.entrypoints.demo import demo_villages
from services.registry.service_layer import survey_rows
from services.registry.service_layer.category_entries import check_category
from services.registry.service_layer.children import NewChild
from services.registry.service_layer.commands import NewCategory
from services.registry.service_layer.registry import RegistryService
from services.registry.service_layer.scope import BulkScope
from services.registry.service_layer.survey_import import BATCH_ROWS, SURVEY
from services.registry.settings import load_settings
from services.registry.tests.integration.test_survey_import import cells


def load_register(registry_env: Mapping[str, str], town: str, district: str, count: int, *, seed: int = 2014) -> int:
    """Record `count` synthetic children in `town` (onboarded, with no villages yet) of the registry whose
    environment is `registry_env` (its database and keys); returns how many."""
    settings = load_settings(EnvReader(dict(registry_env)))
    database = Database.connect(settings.common.database_url, metadata)
    registry = bootstrap.build_service(settings, database)
    caller = Principal("bench-loader", "bench", Role.TOWN_ADMIN, town, district)
    rng = random.Random(seed)
    children = synthetic.generate_children(count, rng=rng, as_of=china_today())  # minors today
    started = time.perf_counter()
    try:
        with acting_as(caller):
            registry.set_villages(demo_villages(town, [child.residence_code for child in children]))
            for first in range(0, count, BATCH_ROWS):
                batch = [_new_child(registry, child, rng, town) for child in children[first : first + BATCH_ROWS]]
                with database.unit_of_work(town) as uow:
                    registry.record_children(BulkScope(uow, caller, today=china_today(), now=utcnow()), batch)
                    uow.commit()
                done = first + len(batch)
                if done % 10_000 < BATCH_ROWS or done == count:
                    print(f"register: {done} children recorded in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        database.dispose()
    return count


def _new_child(registry: RegistryService, child: synthetic.SyntheticChild, rng: random.Random, town: str) -> NewChild:
    """A survey row of the child, as the survey import reads and checks it (its row would be ACCEPTED)."""
    row = {field: str(value) for field, value in cells(child, rng).items()}
    row |= {"household_division_code": town, "residence_division_code": town + child.residence_code[9:]}
    checked = survey_rows.read_row(row, town)
    if checked.problems:
        raise ValueError(f"synthetic child {child.record_id} refused: {checked.problems}")
    evidence = f"bench register, synthetic child {child.record_id}"
    categories = [
        check_category(NewCategory("", category.value, SURVEY, evidence=evidence), china_today())
        for category in checked.categories
    ]
    return NewChild(checked.command, registry.validate(checked.command), checked.family, categories)
