"""Children as the API shows them, with each child's current categories."""

from __future__ import annotations

from collections.abc import Sequence

from services.registry.adapters.orm import ChildRecord
from services.registry.domain.child import ChildView, ContactPerson
from services.registry.domain.codes import Sex
from services.registry.service_layer.categories import current_categories
from services.registry.service_layer.scope import Scope


def child_view(record: ChildRecord, categories: tuple[str, ...]) -> ChildView:
    return ChildView(
        child_id=record.id,
        tenant=record.tenant_id,
        legal_name=record.legal_name,
        other_names=tuple(record.other_names or ()),
        sex=Sex(record.sex),
        birth_date=record.birth_date,
        identity_number_masked=record.identity_number_masked,
        ethnicity_code=record.ethnicity_code,
        household_division_code=record.household_division_code,
        household_address=record.household_address,
        residence_division_code=record.residence_division_code,
        residence_address=record.residence_address,
        school=record.school,
        grade=record.grade,
        categories=categories,
        provisional=record.provisional,
        created_at=record.created_at,
        disability_type=record.disability_type,
        disability_grade=record.disability_grade,
        serious_illness=record.serious_illness,
        contact_person=ContactPerson(record.contact_name, record.contact_relationship, record.contact_phone),
        version=record.version,
    )


def child_views(scope: Scope, records: Sequence[ChildRecord]) -> list[ChildView]:
    """Views with each child's current categories, read in one query for all of them."""
    categories = current_categories(scope, [record.id for record in records])
    return [child_view(record, categories.get(record.id, ())) for record in records]
