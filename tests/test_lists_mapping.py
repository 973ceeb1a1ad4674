"""Column mappings (conventional headers, TOML, flags) and reading list files into chunks."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from csm.lists.errors import ListFileError, MappingError
from csm.lists.mapping import (
    AttributeColumn,
    AttributeType,
    DeviceColumn,
    MappingOverrides,
    OtherColumns,
    apply_overrides,
    auto_mapping,
    load_mapping,
    mapping_from_dict,
    parse_attribute_flag,
    parse_device_flag,
    resolve,
)
from csm.lists.reader import csv_records, open_source, plan_chunks, read_chunk
from csm.vocabulary import DeviceKind

DATA = Path(__file__).parent / "data" / "lists"


def test_conventional_headers_map_themselves() -> None:
    header = ["Account", "wireless", "email", "landline2", "wireless2", "email2", "timezone"]
    header += ["postal_code", "consent_voice", "consent_sms", "consent_email", "balance"]
    mapping = auto_mapping(header)
    assert mapping.account == "Account"
    assert mapping.devices == (
        DeviceColumn("wireless", DeviceKind.WIRELESS),
        DeviceColumn("email", DeviceKind.EMAIL),
        DeviceColumn("landline2", DeviceKind.LANDLINE),
        DeviceColumn("wireless2", DeviceKind.WIRELESS),
        DeviceColumn("email2", DeviceKind.EMAIL),
    )
    assert (mapping.timezone, mapping.postal_code) == ("timezone", "postal_code")
    assert mapping.other_columns is OtherColumns.ATTRIBUTES
    plan = resolve(mapping, header)
    assert [(a.key, a.type) for a in plan.attributes] == [("balance", AttributeType.AUTO)]
    assert [d.index for d in plan.devices] == [1, 2, 3, 4, 5]  # file order


def test_mapping_toml_file() -> None:
    mapping = load_mapping(DATA / "typed.toml")
    assert mapping.account == "AcctNo"
    assert [d.column for d in mapping.devices] == ["Home", "Mobile", "EmailAddr"]
    assert mapping.consent_sms == "SmsOK"
    assert AttributeColumn("DueDate", AttributeType.DATE, "due_date", "%m/%d/%Y") in (
        mapping.attributes
    )
    assert mapping.other_columns is OtherColumns.IGNORE


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "account: Field required"),
        ({"account": "a", "acount": "b"}, "acount: Extra inputs are not permitted"),
        ({"account": "a", "devices": [{"column": "m", "kind": "pager"}]}, "devices.0.kind"),
        ({"account": "a", "attributes": {"x": "money"}}, "attributes.x"),
    ],
)
def test_bad_mapping_files_say_where(data: dict[str, object], message: str) -> None:
    with pytest.raises(MappingError, match=message.replace(".", r"\.")):
        mapping_from_dict(data, source="m.toml")


def test_missing_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="does not exist"):
        load_mapping(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("account = ")
    with pytest.raises(MappingError, match="not valid TOML"):
        load_mapping(tmp_path / "bad.toml")


def test_flags_override_the_conventional_mapping() -> None:
    header = ["cust", "account", "Mobile", "Home", "Mail", "wireless", "notes"]
    overrides = MappingOverrides(
        account="cust",
        phones=(parse_device_flag("Home:landline"), parse_device_flag("Mobile")),
        emails=("Mail",),
        attributes=(parse_attribute_flag("notes:text"),),
        ignore=("account",),
    )
    plan = resolve(apply_overrides(auto_mapping(header), overrides), header)
    assert plan.header[plan.account] == "cust"
    # flagged devices in file order; the conventional `wireless` column is now an attribute
    assert [(d.column, d.kind) for d in plan.devices] == [
        ("Mobile", DeviceKind.WIRELESS),
        ("Home", DeviceKind.LANDLINE),
        ("Mail", DeviceKind.EMAIL),
    ]
    assert {a.key: a.type for a in plan.attributes} == {
        "notes": AttributeType.TEXT,
        "wireless": AttributeType.AUTO,
    }


def test_resolve_errors() -> None:
    with pytest.raises(MappingError, match="no account key column"):
        resolve(auto_mapping(["id", "phone"]), ["id", "phone"])
    mapping = mapping_from_dict(
        {"account": "id", "devices": [{"column": "Mobile", "kind": "wireless"}]}
    )
    with pytest.raises(MappingError, match="names column 'Mobile'"):
        resolve(mapping, ["id", "phone"])
    with pytest.raises(MappingError, match="appears twice"):
        resolve(auto_mapping(["account", "a", "a"]), ["account", "a", "a"])
    mapping = mapping_from_dict(
        {"account": "id", "devices": [{"column": "id", "kind": "wireless"}]}
    )
    with pytest.raises(MappingError, match="mapped twice"):
        resolve(mapping, ["id"])


def test_open_source_errors(tmp_path: Path) -> None:
    with pytest.raises(ListFileError, match="no such file"):
        open_source(tmp_path / "missing.csv", None, None)
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ListFileError, match="empty"):
        open_source(tmp_path / "empty.csv", None, None)
    (tmp_path / "latin1.csv").write_bytes("account,café\n".encode("latin-1"))
    with pytest.raises(ListFileError, match="not UTF-8"):
        open_source(tmp_path / "latin1.csv", None, None)
    (tmp_path / "bad.jsonl").write_text("{nope\n")
    with pytest.raises(ListFileError, match="line 1 is not JSON"):
        open_source(tmp_path / "bad.jsonl", None, None)


def test_bom_and_semicolon_are_detected() -> None:
    source = open_source(DATA / "bom_semicolon.csv", None, None)
    assert source.delimiter == ";"
    assert source.header[0] == "account"  # no BOM glued to the first name
    assert source.data_line == 2


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_sniffing(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        delimiter.join(["account", "wireless", "notes"])
        + "\n"
        + delimiter.join(["1", "4155550100", '"a, b; c | d"'])
        + "\n"
    )
    assert open_source(path, None, None).delimiter == delimiter


def test_chunks_end_on_record_boundaries(tmp_path: Path) -> None:
    """Quoted newlines never split; chunks cover the file exactly; line numbers are physical."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["account", "notes"])
    expected = []
    line = 2
    for n in range(300):
        notes = "two\nlines, quoted" if n % 7 == 0 else f"note {n}"
        writer.writerow([f"k{n}", notes])
        expected.append((line, [f"k{n}", notes]))
        line += 1 + notes.count("\n")
    path = tmp_path / "multi.csv"
    path.write_text(buffer.getvalue())
    source = open_source(path, None, None)
    for size in (7, 64, 1000, 1 << 20):
        chunks = list(plan_chunks(source, size))
        assert sum(c.length for c in chunks) == source.size - source.data_offset
        records = []
        for chunk in chunks:
            text = read_chunk(source, chunk).decode()
            records.extend(csv_records(text, chunk.first_line, ","))
        assert records == expected, size
