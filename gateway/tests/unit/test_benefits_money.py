"""Yuan typed by the district administrator become whole fen, and fen are shown as yuan, without floats."""

from gateway.views.benefits import _fen, yuan


def test_yuan_typed_become_fen() -> None:
    assert [_fen(typed) for typed in ("1440", "1,440.5", "1440.05", "0.01")] == [144_000, 144_050, 144_005, 1]
    assert [_fen(typed) for typed in ("", "-3", "1.234", "abc", "1e3")] == [-1, -1, -1, -1, -1]  # refused


def test_fen_are_shown_as_yuan() -> None:
    assert [yuan(fen) for fen in (0, 5, 144_000, -144_050, 123_456_789)] == [
        "0.00",
        "0.05",
        "1,440.00",
        "-1,440.50",
        "1,234,567.89",
    ]
