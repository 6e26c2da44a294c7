"""Children as the API shows them, with each child's current categories; a child's family and category
entries as its case file shows them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from services.registry.adapters.child_repository import category_entry
from services.registry.adapters.orm import CategoryRecord, ChildRecord
from services.registry.domain.child import ChildView, ContactPerson
from services.registry.domain.codes import Sex
from services.registry.service_layer.categories import current_categories
from services.registry.service_layer.category_entries import category_view
from services.registry.service_layer.family_facts import member_facts
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.views import CategoryView, FamilyMemberView


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


def family_views(scope: Scope, child_id: str) -> list[FamilyMemberView]:
    return [FamilyMemberView(record.id, record.child_id, member_facts(record)) for record in scope.family(child_id)]


def category_views(scope: Scope, child_id: str) -> list[CategoryView]:
    rows = scope.session.scalars(
        select(CategoryRecord)
        .where(CategoryRecord.tenant_id == scope.tenant, CategoryRecord.child_id == child_id)
        .order_by(CategoryRecord.valid_from, CategoryRecord.recorded_at, CategoryRecord.id)
    )
    return [category_view(category_entry(row), scope.today) for row in rows]
