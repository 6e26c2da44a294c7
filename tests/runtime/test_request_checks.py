"""The checks every gRPC request passes before a service sees it (platform_runtime/request_checks.py)."""

from __future__ import annotations

import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from minorprot.reporting.v1 import reporting_pb2

from platform_runtime.errors import InvalidInput
from platform_runtime.request_checks import refuse_malformed_fields


def violations(request: Message) -> dict[str, str]:
    with pytest.raises(InvalidInput) as refused:
        refuse_malformed_fields(request)
    return {v.field: v.message for v in refused.value.violations}


def test_ordinary_text_with_tabs_and_line_breaks_passes() -> None:
    refuse_malformed_fields(
        reporting_pb2.SubmitReportRequest(
            narrative="第一行\n第二行\t缩进\r\n",
            child=reporting_pb2.ChildDescription(name="王小明\u200b", guardian_names=["张三", "Ana María"]),
            situation_types=["wandering"],
        )
    )


def test_control_characters_are_refused_with_the_path_of_each_field() -> None:
    request = reporting_pb2.SubmitReportRequest(
        narrative="before\x00after",
        child=reporting_pb2.ChildDescription(name="\x1b[2J", guardian_names=["张三", "李\x07四"]),
        situation_types=["ok", "bad\x7f"],
    )
    assert violations(request) == {
        "narrative": "must not contain control characters",
        "child.name": "must not contain control characters",
        "child.guardian_names": "must not contain control characters",
        "situation_types": "must not contain control characters",
    }


@pytest.mark.parametrize(
    "moment",
    [
        timestamp_pb2.Timestamp(seconds=253_402_300_800),  # 10000-01-01
        timestamp_pb2.Timestamp(seconds=-62_135_596_801),  # before year 1
        timestamp_pb2.Timestamp(seconds=0, nanos=-1),
        timestamp_pb2.Timestamp(seconds=0, nanos=1_000_000_000),
    ],
)
def test_a_timestamp_that_is_no_moment_is_refused(moment: timestamp_pb2.Timestamp) -> None:
    assert violations(reporting_pb2.SubmitReportRequest(occurred_at=moment)) == {"occurred_at": "is not a valid moment"}


def test_the_edges_of_the_timestamp_range_pass() -> None:
    for seconds in (-62_135_596_800, 253_402_300_799):
        refuse_malformed_fields(reporting_pb2.SubmitReportRequest(occurred_at=timestamp_pb2.Timestamp(seconds=seconds)))
