"""The shared code lists to and from the contract's enums: one map each, used by every service and the gateway."""

from __future__ import annotations

from minorprot.common.v1 import common_pb2

from platform_runtime.vocabulary import Sex

_SEX_TO_PROTO: dict[Sex, common_pb2.Sex.ValueType] = {
    Sex.MALE: common_pb2.SEX_MALE,
    Sex.FEMALE: common_pb2.SEX_FEMALE,
    Sex.UNKNOWN: common_pb2.SEX_UNKNOWN,
    Sex.UNSPECIFIED: common_pb2.SEX_UNSPECIFIED,
}
_SEX_FROM_PROTO: dict[common_pb2.Sex.ValueType, Sex] = {
    common_pb2.SEX_MALE: Sex.MALE,
    common_pb2.SEX_FEMALE: Sex.FEMALE,
    common_pb2.SEX_UNKNOWN: Sex.UNKNOWN,
    common_pb2.SEX_UNSPECIFIED: Sex.UNKNOWN,
}


def sex_to_proto(sex: Sex | None) -> common_pb2.Sex.ValueType:
    """No sex (a report that does not say) is SEX_UNKNOWN."""
    return _SEX_TO_PROTO[sex] if sex is not None else common_pb2.SEX_UNKNOWN


def sex_from_proto(value: int) -> Sex:
    """Unset, or a value newer than this code, is `Sex.UNKNOWN`."""
    return _SEX_FROM_PROTO.get(common_pb2.Sex.ValueType(value), Sex.UNKNOWN)


def known_sex_from_proto(value: int) -> Sex | None:
    """Male or female, else None (what a report or a match candidate keeps)."""
    sex = sex_from_proto(value)
    return sex if sex.is_known else None
