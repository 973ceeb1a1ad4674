"""Which column of a list file means what: account key, devices, zone, consent, attributes.

Three ways to say it, in order of precedence:

1. flags on the command line (`MappingOverrides`), applied on top of
2. a small TOML file (`load_mapping`), or, without one,
3. the conventional headers (`auto_mapping`): `account`, `wireless`, `landline2`,
   `email`, `timezone`, `postal_code`, `consent_voice`, ... with every other
   column an attribute.

`resolve` checks a mapping against the file's header and turns names into
column positions (`ColumnPlan`), which is what the row validators use. The
TOML format is documented in docs/lists.md.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from csm.files import read_small_text
from csm.lists.errors import MappingError
from csm.vocabulary import DeviceKind


class AttributeType(StrEnum):
    NUMBER = "number"
    TEXT = "text"
    DATE = "date"
    BOOL = "bool"
    AUTO = "auto"  # number when every non-empty value in the file is one, else text


class OtherColumns(StrEnum):
    """What happens to columns a mapping does not name."""

    IGNORE = "ignore"
    ATTRIBUTES = "attributes"


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True)
class DeviceColumn:
    column: str
    kind: DeviceKind


@dataclass(frozen=True)
class AttributeColumn:
    column: str
    type: AttributeType = AttributeType.AUTO
    name: str = ""  # the key in `contacts.attributes`; the column name when empty
    date_format: str | None = None

    @property
    def key(self) -> str:
        return self.name or self.column


@dataclass(frozen=True)
class Mapping:
    """A column mapping by column names, before it meets a file."""

    account: str | None = None
    devices: tuple[DeviceColumn, ...] = ()
    timezone: str | None = None
    postal_code: str | None = None
    consent_voice: str | None = None
    consent_sms: str | None = None
    consent_email: str | None = None
    attributes: tuple[AttributeColumn, ...] = ()
    other_columns: OtherColumns = OtherColumns.IGNORE
    ignore: frozenset[str] = frozenset()
    #: Order devices as their columns appear in the file instead of as listed here.
    devices_in_file_order: bool = False
    format: FileFormat | None = None
    delimiter: str | None = None


@dataclass(frozen=True)
class MappingOverrides:
    """Mapping flags from the command line; each one replaces what the base mapping says."""

    account: str | None = None
    phones: tuple[DeviceColumn, ...] = ()
    emails: tuple[str, ...] = ()
    timezone: str | None = None
    postal_code: str | None = None
    consent_voice: str | None = None
    consent_sms: str | None = None
    consent_email: str | None = None
    attributes: tuple[AttributeColumn, ...] = ()
    ignore: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return self == MappingOverrides()


# --- the conventional headers -------------------------------------------------------

_DEVICE_HEADER = re.compile(r"(wireless|landline|email)(\d*)")
_ROLE_HEADERS = {
    "account": "account",
    "account_key": "account",
    "timezone": "timezone",
    "postal_code": "postal_code",
    "consent_voice": "consent_voice",
    "consent_sms": "consent_sms",
    "consent_email": "consent_email",
}


def auto_mapping(header: list[str]) -> Mapping:
    """The mapping conventional headers imply; every other column is an auto-typed attribute."""
    roles: dict[str, str] = {}
    devices: list[DeviceColumn] = []
    for column in header:
        name = column.strip().lower()
        if name in _ROLE_HEADERS and _ROLE_HEADERS[name] not in roles:
            roles[_ROLE_HEADERS[name]] = column
        elif match := _DEVICE_HEADER.fullmatch(name):
            devices.append(DeviceColumn(column, DeviceKind(match.group(1))))
    return Mapping(
        account=roles.get("account"),
        devices=tuple(devices),
        timezone=roles.get("timezone"),
        postal_code=roles.get("postal_code"),
        consent_voice=roles.get("consent_voice"),
        consent_sms=roles.get("consent_sms"),
        consent_email=roles.get("consent_email"),
        other_columns=OtherColumns.ATTRIBUTES,
    )


# --- flags ---------------------------------------------------------------------------


def apply_overrides(base: Mapping, overrides: MappingOverrides) -> Mapping:
    """`base` with each role the flags name given to the flagged column instead."""
    if overrides.is_empty():
        return base
    taken = {
        column
        for column in (
            overrides.account,
            overrides.timezone,
            overrides.postal_code,
            overrides.consent_voice,
            overrides.consent_sms,
            overrides.consent_email,
            *(d.column for d in overrides.phones),
            *overrides.emails,
            *(a.column for a in overrides.attributes),
            *overrides.ignore,
        )
        if column
    }

    def keep(column: str | None) -> str | None:
        return None if column in taken else column

    mapping = replace(
        base,
        account=overrides.account or keep(base.account),
        timezone=overrides.timezone or keep(base.timezone),
        postal_code=overrides.postal_code or keep(base.postal_code),
        consent_voice=overrides.consent_voice or keep(base.consent_voice),
        consent_sms=overrides.consent_sms or keep(base.consent_sms),
        consent_email=overrides.consent_email or keep(base.consent_email),
        attributes=tuple(a for a in base.attributes if a.column not in taken)
        + overrides.attributes,
        ignore=base.ignore | frozenset(overrides.ignore),
    )
    if overrides.phones or overrides.emails:
        flagged = overrides.phones + tuple(
            DeviceColumn(column, DeviceKind.EMAIL) for column in overrides.emails
        )
        mapping = replace(mapping, devices=flagged, devices_in_file_order=True)
    else:
        mapping = replace(
            mapping, devices=tuple(d for d in mapping.devices if d.column not in taken)
        )
    return mapping


def parse_device_flag(text: str, default_kind: DeviceKind = DeviceKind.WIRELESS) -> DeviceColumn:
    """`--phone COLUMN[:wireless|landline]`."""
    column, sep, kind = text.rpartition(":")
    if not sep or kind.lower() not in (DeviceKind.WIRELESS, DeviceKind.LANDLINE):
        return DeviceColumn(text, default_kind)
    return DeviceColumn(column, DeviceKind(kind.lower()))


def parse_attribute_flag(text: str) -> AttributeColumn:
    """`--attribute COLUMN[:number|text|date|bool]`."""
    column, sep, kind = text.rpartition(":")
    if not sep or kind.lower() not in set(AttributeType):
        return AttributeColumn(text, AttributeType.AUTO)
    return AttributeColumn(column, AttributeType(kind.lower()))


# --- the TOML file -----------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _DeviceSpec(_Strict):
    column: str = Field(min_length=1)
    kind: Literal["wireless", "landline", "email"]


class _AttributeSpec(_Strict):
    type: Literal["number", "text", "date", "bool", "auto"] = "auto"
    name: str | None = Field(None, min_length=1)
    format: str | None = Field(None, min_length=1, description="strptime format of a date")
    column: str | None = Field(None, min_length=1, description="the column; default: the key")


class _ConsentSpec(_Strict):
    voice: str | None = None
    sms: str | None = None
    email: str | None = None


class _MappingFile(_Strict):
    account: str = Field(min_length=1)
    devices: list[_DeviceSpec] = []
    timezone: str | None = None
    postal_code: str | None = None
    consent: _ConsentSpec = _ConsentSpec()
    attributes: dict[
        str, Annotated[Literal["number", "text", "date", "bool", "auto"], Field()] | _AttributeSpec
    ] = {}
    other_columns: Literal["ignore", "attributes"] = "ignore"
    ignore: list[str] = []
    format: Literal["csv", "jsonl"] | None = None
    delimiter: Literal[",", ";", "|", "\t", "tab"] | None = None


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping TOML file (format: docs/lists.md)."""
    if not path.exists():
        raise MappingError(f"mapping file {path} does not exist")
    text = read_small_text(path, f"mapping file {path}", encoding="utf-8-sig", error=MappingError)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise MappingError(f"{path}: not valid TOML: {err}") from err
    return mapping_from_dict(data, source=str(path))


def mapping_from_dict(data: dict[str, Any], *, source: str = "mapping") -> Mapping:
    try:
        spec = _MappingFile.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()
        )
        raise MappingError(f"{source}: {problems}") from err
    attributes = []
    for key, value in spec.attributes.items():
        if isinstance(value, str):
            attributes.append(AttributeColumn(key, AttributeType(value)))
        else:
            attributes.append(
                AttributeColumn(
                    value.column or key,
                    AttributeType(value.type),
                    name=value.name or (key if value.column else ""),
                    date_format=value.format,
                )
            )
    delimiter = "\t" if spec.delimiter == "tab" else spec.delimiter
    return Mapping(
        account=spec.account,
        devices=tuple(DeviceColumn(d.column, DeviceKind(d.kind)) for d in spec.devices),
        timezone=spec.timezone,
        postal_code=spec.postal_code,
        consent_voice=spec.consent.voice,
        consent_sms=spec.consent.sms,
        consent_email=spec.consent.email,
        attributes=tuple(attributes),
        other_columns=OtherColumns(spec.other_columns),
        ignore=frozenset(spec.ignore),
        format=FileFormat(spec.format) if spec.format else None,
        delimiter=delimiter,
    )


# --- meeting the file ------------------------------------------------------------------------


@dataclass(frozen=True)
class DevicePlan:
    index: int
    column: str
    kind: DeviceKind


@dataclass(frozen=True)
class AttributePlan:
    index: int
    column: str
    key: str
    type: AttributeType
    date_format: str | None = None


@dataclass(frozen=True)
class ColumnPlan:
    """A mapping bound to one file's header: positions, ready for the row validators."""

    header: tuple[str, ...]
    account: int
    devices: tuple[DevicePlan, ...]
    timezone: int | None
    postal_code: int | None
    consent_voice: int | None
    consent_sms: int | None
    consent_email: int | None
    attributes: tuple[AttributePlan, ...]
    default_region: str = "US"

    @property
    def auto_attributes(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.attributes if a.type is AttributeType.AUTO)


def resolve(mapping: Mapping, header: list[str], *, default_region: str = "US") -> ColumnPlan:
    """Bind `mapping` to `header`: every named column must exist and have one role only."""
    positions: dict[str, int] = {}
    for index, column in enumerate(header):
        if not column:
            continue  # a nameless column (a trailing delimiter, say) is never imported
        if column in positions:
            raise MappingError(f"column {column!r} appears twice in the header")
        positions[column] = index
    shown = ", ".join(repr(c) for c in header)
    roles: dict[str, str] = {}

    def bind(column: str | None, role: str) -> int | None:
        if column is None:
            return None
        if column not in positions:
            raise MappingError(
                f"the mapping names column {column!r} ({role}), but the file has {shown}"
            )
        if column in roles:
            raise MappingError(f"column {column!r} is mapped twice: as {roles[column]} and {role}")
        roles[column] = role
        return positions[column]

    if mapping.account is None:
        raise MappingError(
            f"no account key column: name it `account`, or pass --account COLUMN or a mapping "
            f"file (the file has {shown})"
        )
    account = bind(mapping.account, "account key")
    assert account is not None
    devices = [
        DevicePlan(index, d.column, d.kind)
        for d in mapping.devices
        if (index := bind(d.column, f"{d.kind} device")) is not None
    ]
    if mapping.devices_in_file_order:
        devices.sort(key=lambda d: d.index)
    timezone = bind(mapping.timezone, "time zone")
    postal_code = bind(mapping.postal_code, "postal code")
    consent_voice = bind(mapping.consent_voice, "voice consent")
    consent_sms = bind(mapping.consent_sms, "SMS consent")
    consent_email = bind(mapping.consent_email, "e-mail consent")
    attributes = [
        AttributePlan(index, a.column, a.key, a.type, a.date_format)
        for a in mapping.attributes
        if (index := bind(a.column, f"attribute {a.key!r}")) is not None
    ]
    for column in mapping.ignore:
        if column not in positions:
            raise MappingError(f"the mapping ignores column {column!r}, but the file has {shown}")
    if mapping.other_columns is OtherColumns.ATTRIBUTES:
        for index, column in enumerate(header):
            if column and column not in roles and column not in mapping.ignore:
                roles[column] = "attribute"
                attributes.append(AttributePlan(index, column, column.strip(), AttributeType.AUTO))
    keys = [a.key for a in attributes]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise MappingError(f"attribute name(s) {', '.join(map(repr, twice))} used twice")
    return ColumnPlan(
        header=tuple(header),
        account=account,
        devices=tuple(devices),
        timezone=timezone,
        postal_code=postal_code,
        consent_voice=consent_voice,
        consent_sms=consent_sms,
        consent_email=consent_email,
        attributes=tuple(attributes),
        default_region=default_region.upper(),
    )
