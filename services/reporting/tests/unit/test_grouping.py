from dataclasses import replace
from datetime import timedelta

from services.reporting.domain.grouping import (
    GroupingFacts,
    GroupingReason,
    GroupMatch,
    description_similarity,
    find_group,
)
from services.reporting.domain.model import Place
from services.reporting.tests.unit.builders import LIANGXIANG, NOW, child, report, submission

BOY = "约8岁男孩,穿红色上衣,在火车站乞讨"
SAME_BOY_IN_OTHER_WORDS = "八九岁男孩穿红色衣服在火车站乞讨"
OTHER_CHILD = "一名女孩约十五岁,在网吧过夜,不回家"


def facts(
    report_id: str = "new",
    group_id: str | None = None,
    child_id: str | None = None,
    code: str = LIANGXIANG,
    hours: float = 0.0,
    description: str = BOY,
) -> GroupingFacts:
    return GroupingFacts(report_id, group_id, child_id, code, NOW + timedelta(hours=hours), description)


def group_of(new: GroupingFacts, existing: list[GroupingFacts]) -> str | None:
    match = find_group(new, existing)
    return None if match is None else match.group_id


def test_same_linked_child_within_the_window_joins_its_group():
    earlier = facts("r1", "g1", child_id="c1", code="110111009", hours=-24 * 30, description="")
    match = find_group(facts(child_id="c1", description=""), [earlier])
    assert match == GroupMatch("g1", "r1", GroupingReason.SAME_CHILD, None)


def test_same_child_after_the_window_starts_a_new_group():
    earlier = facts("r1", "g1", child_id="c1", code="110111009", hours=-24 * 30 - 1)
    assert find_group(facts(child_id="c1"), [earlier]) is None


def test_same_place_close_in_time_and_similar_description_joins():
    earlier = facts("r1", "g1", code=LIANGXIANG + "000", hours=-47.9, description=SAME_BOY_IN_OTHER_WORDS)
    match = find_group(facts(), [earlier])
    assert match is not None
    assert match.reason is GroupingReason.SAME_PLACE_AND_TIME
    assert match.similarity is not None and match.similarity > 0.6


def test_place_time_and_description_must_all_agree():
    assert find_group(facts(), [facts("r1", "g1", code="110111008001")]) is None  # another village
    assert find_group(facts(), [facts("r1", "g1", hours=48.1)]) is None  # too far apart
    assert find_group(facts(), [facts("r1", "g1", description=OTHER_CHILD)]) is None  # another child
    assert find_group(facts(description=""), [facts("r1", "g1", description="")]) is None  # nothing to compare


def test_different_linked_children_are_never_grouped_by_place():
    other = facts("r1", "g1", child_id="c2")
    assert find_group(facts(child_id="c1"), [other]) is None


def test_same_child_wins_then_similarity_then_closeness():
    by_place = facts("r1", "g-place")
    by_child = facts("r2", "g-child", child_id="c1", code="110111009", hours=-200)
    assert group_of(facts(child_id="c1"), [by_place, by_child]) == "g-child"

    close_but_less_similar = facts("r3", "g-close", hours=-1, description=SAME_BOY_IN_OTHER_WORDS)
    far_but_identical = facts("r4", "g-far", hours=-40)
    assert group_of(facts(), [close_but_less_similar, far_but_identical]) == "g-far"

    near = facts("r5", "g-near", hours=-1)
    assert group_of(facts(), [far_but_identical, near]) == "g-near"


def test_ungrouped_reports_and_the_report_itself_are_skipped():
    assert find_group(facts(), [facts("r1", None), facts("new", "g1")]) is None


def test_similarity_ignores_case_spacing_punctuation_and_full_width_forms():
    assert description_similarity("Ｚhang ＸＭ, 8岁", "zhang xm 8岁") == 1.0
    assert description_similarity("", "anything") == 0.0


def test_grouping_facts_of_a_report():
    sub = submission(child=child(name="张小明", description="穿红衣服"), place=Place("110111008001", "西路村"))
    rep = replace(report(sub), child_id="c1", group_id="g1")
    assert GroupingFacts.of(rep) == GroupingFacts(
        "rep-1", "g1", "c1", "110111008001", sub.occurred_at, "张小明 穿红衣服"
    )
