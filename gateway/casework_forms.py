"""The register's forms turned into registry requests (one function per form), and the staff picked from
the town's users. Parsing problems raise InvalidInput naming the form's field (its message a catalogue key, shown in the
request's language by `errors.shown`); the registry checks the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from google.protobuf.message import Message
from minorprot.common.v1 import common_pb2
from minorprot.registry.v1 import casework_pb2, registry_pb2

from gateway import register_codes
from gateway.accounts import User
from platform_runtime.errors import FieldViolation, InvalidInput

Form = Mapping[str, str]
SEXES = {"male": common_pb2.SEX_MALE, "female": common_pb2.SEX_FEMALE, "": common_pb2.SEX_UNSPECIFIED}


def text(form: Form, name: str) -> str:
    return (form.get(name) or "").strip()


def day(form: Form, name: str) -> common_pb2.Date | None:
    """`YYYY-MM-DD` (what <input type=date> sends) as a Date; None when left empty."""
    raw = text(form, name)
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput.single(name, "日期格式应为 YYYY-MM-DD") from None
    return common_pb2.Date(year=value.year, month=value.month, day=value.day)


M = TypeVar("M", bound=Message)


def _dated(message: M, **dates: common_pb2.Date | None) -> M:
    """`message` with only the dates given set: an unset Date means 'today' or 'unknown' to the registry."""
    for name, value in dates.items():
        if value is not None:
            getattr(message, name).CopyFrom(value)
    return message


def child_request(form: Form) -> registry_pb2.RegisterChildRequest:
    sex = text(form, "sex")
    if sex not in SEXES:
        raise InvalidInput.single("sex", "请选择性别")
    return _dated(
        registry_pb2.RegisterChildRequest(
            legal_name=text(form, "legal_name"),
            sex=SEXES[sex],
            identity_number=text(form, "identity_number"),
            residence_division_code=text(form, "residence_division_code"),
            residence_address=text(form, "residence_address"),
            household_division_code=text(form, "household_division_code"),
            household_address=text(form, "household_address"),
            school=text(form, "school"),
            grade=text(form, "grade"),
            contact_person=registry_pb2.ContactPerson(
                name=text(form, "contact_name"),
                relationship=text(form, "contact_relationship"),
                phone=text(form, "contact_phone"),
            ),
        ),
        birth_date=day(form, "birth_date"),
    )


# The profile fields the case file's edit form offers (names of UpdateChildRequest's fields).
PROFILE_FIELDS = (
    "legal_name",
    "birth_date",
    "school",
    "grade",
    "residence_division_code",
    "residence_address",
    "household_division_code",
    "household_address",
    "serious_illness",
    "contact_person",
)


CONTACT_FIELDS = ("contact_name", "contact_relationship", "contact_phone")


def update_child(child_id: str, form: Form) -> registry_pb2.UpdateChildRequest:
    """The profile fields changed on the form (each input carries the value read as `was.<name>`), checked
    against the version read: an unchanged field is never sent again, so a value the registry would no
    longer accept for a new record (a retired village) stays as it is."""
    changed = {name for name in form if not name.startswith("was.") and f"was.{name}" in form}
    changed = {name for name in changed if text(form, name) != text(form, f"was.{name}")}
    values = child_request({"sex": "", **form})
    request = registry_pb2.UpdateChildRequest(child_id=child_id, serious_illness=text(form, "serious_illness"))
    mask = [name for name in PROFILE_FIELDS if name in changed]
    if changed & set(CONTACT_FIELDS):
        mask.append("contact_person")
        request.contact_person.CopyFrom(values.contact_person)
    if not mask:
        raise InvalidInput.single("", "没有修改")
    for name in mask:
        if name == "birth_date":
            if values.HasField("birth_date"):  # emptied: the birth date becomes unknown
                request.birth_date.CopyFrom(values.birth_date)
        elif name not in ("serious_illness", "contact_person"):
            setattr(request, name, getattr(values, name))
    request.update_mask.paths.extend(mask)
    version = text(form, "version")
    if not version.isdigit():
        raise InvalidInput.single("version", "reload the case file and edit again")
    request.expected_version = int(version)
    return request


def in_filters(child: registry_pb2.Child, village: str, category: str) -> bool:
    """A name search's match passes the register's village and category filters (ListChildren's own)."""
    in_village = not village or any(
        code.startswith(village) for code in (child.residence_division_code, child.household_division_code)
    )
    return in_village and (not category or category in child.categories)


def duplicate_probe(request: registry_pb2.RegisterChildRequest) -> registry_pb2.MatchChildRequest:
    """What the registry's matcher is asked before a child is registered: anyone like this already?"""
    probe = registry_pb2.MatchChildRequest(
        # The registry takes names of at most 100 characters: matching a longer one only costs its time
        # (long enough to pass the call's deadline) before registering refuses it.
        name=request.legal_name[:100],
        identity_number=request.identity_number,
        sex=request.sex,
        division_code=request.residence_division_code or request.household_division_code,
        school=request.school,
        limit=5,
    )
    if request.HasField("birth_date"):
        probe.birth_date.CopyFrom(request.birth_date)
    return probe


# -- casework: each returns the CaseworkService method and its request ---------------------------------------


def add_family_member(child_id: str, form: Form) -> tuple[str, Any]:
    member = _dated(
        registry_pb2.FamilyMember(
            name=text(form, "name"),
            relationship=text(form, "relationship"),
            guardian=form.get("guardian") == "on",
            status=text(form, "status") or "normal",
            evidence=text(form, "evidence"),
        ),
        status_since=day(form, "status_since"),
        status_until=day(form, "status_until"),
    )
    return "AddFamilyMember", casework_pb2.AddFamilyMemberRequest(child_id=child_id, member=member)


def remove_family_member(child_id: str, form: Form) -> tuple[str, Any]:
    return "RemoveFamilyMember", casework_pb2.RemoveFamilyMemberRequest(
        member_id=text(form, "member_id"), reason=text(form, "reason")
    )


def add_category(child_id: str, form: Form) -> tuple[str, Any]:
    return "AddCategory", _dated(
        casework_pb2.AddCategoryRequest(
            child_id=child_id,
            category=text(form, "category"),
            source=text(form, "source"),
            evidence=text(form, "evidence"),
        ),
        valid_from=day(form, "valid_from"),
    )


def end_category(child_id: str, form: Form) -> tuple[str, Any]:
    return "EndCategory", _dated(
        casework_pb2.EndCategoryRequest(entry_id=text(form, "entry_id"), reason=text(form, "reason")),
        valid_to=day(form, "valid_to"),
    )


def change_status(child_id: str, form: Form) -> tuple[str, Any]:
    return "ChangeCaseStatus", casework_pb2.ChangeCaseStatusRequest(
        child_id=child_id, status=text(form, "status"), reason=text(form, "reason")
    )


def record_assessment(child_id: str, form: Form) -> tuple[str, Any]:
    domains = []
    for code, _ in register_codes.DOMAINS:
        raw = text(form, f"score.{code}")
        if raw not in {score for score, _ in register_codes.SCORES}:
            raise InvalidInput.single(f"score.{code}", "请为每个领域评分 0-4")
        domains.append(registry_pb2.DomainFinding(domain=code, score=int(raw), finding=text(form, f"finding.{code}")))
    return "RecordAssessment", _dated(
        casework_pb2.RecordAssessmentRequest(
            child_id=child_id,
            kind=text(form, "kind") or "initial",
            assessor=text(form, "assessor"),
            domains=domains,
            summary=text(form, "summary"),
        ),
        assessed_on=day(form, "assessed_on"),
    )


def add_goal(child_id: str, form: Form) -> tuple[str, Any]:
    return "AddPlanGoal", casework_pb2.AddPlanGoalRequest(child_id=child_id, description=text(form, "description"))


def update_goal(child_id: str, form: Form) -> tuple[str, Any]:
    return "UpdatePlanGoal", casework_pb2.UpdatePlanGoalRequest(
        goal_id=text(form, "goal_id"), status=text(form, "status")
    )


def add_action(child_id: str, form: Form) -> tuple[str, Any]:
    return "AddPlanAction", _dated(
        casework_pb2.AddPlanActionRequest(
            goal_id=text(form, "goal_id"),
            description=text(form, "description"),
            owner_kind=text(form, "owner_kind") or "person",
            owner=text(form, "owner"),
            referral_id=text(form, "referral_id"),
        ),
        due_on=day(form, "due_on"),
    )


def update_action(child_id: str, form: Form) -> tuple[str, Any]:
    return "UpdatePlanAction", casework_pb2.UpdatePlanActionRequest(
        action_id=text(form, "action_id"), status=text(form, "status"), note=text(form, "note")
    )


def record_visit(child_id: str, form: Form) -> tuple[str, Any]:
    return "RecordVisit", _dated(
        casework_pb2.RecordVisitRequest(
            child_id=child_id, visitor=text(form, "visitor"), findings=text(form, "findings")
        ),
        visited_on=day(form, "visited_on"),
    )


STAFF_ROLES = ("responsible", "social_worker", "child_director")


def assign_staff(child_id: str, form: Form, town_users: Sequence[User]) -> tuple[str, Any]:
    """Each of the three is a user of the town (by id; the name is the user's) or, without one, a name typed in
    (a village committee member who has no account)."""
    users = {user.user_id: user for user in town_users}
    fields: dict[str, str] = {}
    problems = []
    for role in STAFF_ROLES:
        name_field = "responsible_person" if role == "responsible" else role
        user_id = text(form, f"{role}_user_id")
        if user_id and user_id not in users:
            problems.append(FieldViolation(f"{role}_user_id", "不是本镇的用户"))
            continue
        fields[f"{role}_user_id"] = user_id
        fields[name_field] = users[user_id].display_name if user_id else text(form, name_field)
    if problems:
        raise InvalidInput(problems)
    request = casework_pb2.AssignCaseRequest(child_id=child_id)
    for name, value in fields.items():
        setattr(request, name, value)
    return "AssignCase", request


FORMS: dict[str, Callable[[str, Form], tuple[str, Any]]] = {
    "family": add_family_member,
    "family-remove": remove_family_member,
    "category": add_category,
    "category-end": end_category,
    "status": change_status,
    "assessment": record_assessment,
    "goal": add_goal,
    "goal-update": update_goal,
    "action": add_action,
    "action-update": update_action,
    "visit": record_visit,
}
# The tab each form comes back to.
TAB_OF_FORM = {
    "family": "family",
    "family-remove": "family",
    "category": "categories",
    "category-end": "categories",
    "status": "case",
    "staff": "case",
    "assessment": "assessments",
    "goal": "plan",
    "goal-update": "plan",
    "action": "plan",
    "action-update": "plan",
    "visit": "visits",
}
