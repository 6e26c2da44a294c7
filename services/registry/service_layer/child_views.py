"""Children as the API shows them, with each child's current categories; a child's family and category
entries as its case file shows them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from services.registry.adapters.child_repository import category_entry
from services.registry.adapters.orm import CategoryRecord, ChildRecord
from services.registry.domain.child import ChildDetails, ChildView, ContactPerson
from services.registry.domain.child_record import Child
from services.registry.domain.codes import Sex
from services.registry.service_layer.categories import current_categories
from services.registry.service_layer.category_entries import category_view
from services.registry.service_layer.family_facts import member_facts
from services.registry.service_layer.scope import Scope
from services.registry.service_layer.views import CategoryView, FamilyMemberView


def child_view(record: ChildRecord, categories: tuple[str, ...]) -> ChildView:
    return details_view(record.id, record.tenant_id, record, record.created_at, record.version, categories)


def aggregate_view(child: Child, tenant: str, categories: tuple[str, ...]) -> ChildView:
    return details_view(child.child_id, tenant, child.details, child.created_at, child.version, categories)


def details_view(
    child_id: str,
    tenant: str,
    details: ChildDetails | ChildRecord,
    created_at: datetime,
    version: int,
    categories: tuple[str, ...],
) -> ChildView:
    """The view from the aggregate's details, or straight from the row (the register's lists and the survey's
    bulk path make many: no object in between)."""
    return ChildView(
        child_id=child_id,
        tenant=tenant,
        legal_name=details.legal_name,
        other_names=tuple(details.other_names or ()),
        sex=Sex(details.sex),
        birth_date=details.birth_date,
        identity_number_masked=details.identity_number_masked,
        ethnicity_code=details.ethnicity_code,
        household_division_code=details.household_division_code,
        household_address=details.household_address,
        residence_division_code=details.residence_division_code,
        residence_address=details.residence_address,
        school=details.school,
        grade=details.grade,
        categories=categories,
        provisional=details.provisional,
        created_at=created_at,
        disability_type=details.disability_type,
        disability_grade=details.disability_grade,
        serious_illness=details.serious_illness,
        contact_person=ContactPerson(details.contact_name, details.contact_relationship, details.contact_phone),
        version=version,
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
