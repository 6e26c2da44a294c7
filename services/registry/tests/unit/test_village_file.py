from pathlib import Path

from services.registry.__main__ import read_villages
from services.registry.service_layer.views import Village


def test_a_village_file_from_a_spreadsheet_is_read_with_or_without_its_header(tmp_path: Path) -> None:
    exported = tmp_path / "villages.csv"
    # Spreadsheets save UTF-8 with a byte-order mark, and often a blank last line.
    exported.write_text("\ufeffcode,name\n110111008201, 南关村 \n\n110111008001,苏庄社区\n", encoding="utf-8")
    plain = tmp_path / "plain.csv"
    plain.write_text("110111008202,北关村\n110111008203\n", encoding="utf-8")
    assert read_villages(exported) == [Village("110111008201", "南关村"), Village("110111008001", "苏庄社区")]
    # A row without a name is passed on as it is: the service refuses it with the reason.
    assert read_villages(plain) == [Village("110111008202", "北关村"), Village("110111008203", "")]
