"""What a filter may name: the fields and functions of the language, with their types."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldType(StrEnum):
    COUNT = "count"  # a whole number, never missing
    RESULT = "result"  # a result code, missing before the first attempt
    GROUP = "group"  # a response group name (compiled to the group's result codes)
    TEXT = "text"
    BOOL = "bool"
    ATTRIBUTE = "attribute"  # free-form contact attribute: number, text, date or bool


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    doc: str


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec("attempts", FieldType.COUNT, "attempts of the contact in this sub-campaign"),
        FieldSpec("attempts_today", FieldType.COUNT, "attempts of the contact today"),
        FieldSpec("last_result", FieldType.RESULT, "result code of the contact's latest attempt"),
        FieldSpec("last_group", FieldType.GROUP, "response group of that latest result"),
        FieldSpec("timezone", FieldType.TEXT, "the contact's IANA time zone"),
        FieldSpec("postal_code", FieldType.TEXT, "the contact's postal code"),
        FieldSpec("account", FieldType.TEXT, "the contact's account key"),
        FieldSpec("has_wireless", FieldType.BOOL, "the contact has a wireless number"),
        FieldSpec("has_landline", FieldType.BOOL, "the contact has a landline number"),
        FieldSpec("has_email", FieldType.BOOL, "the contact has an e-mail address"),
        FieldSpec("consent.voice", FieldType.BOOL, "consent to automated voice calls"),
        FieldSpec("consent.sms", FieldType.BOOL, "consent to text messages"),
        FieldSpec("consent.email", FieldType.BOOL, "consent to e-mail"),
    )
}

ATTRIBUTE_PREFIX = "attributes"

#: Functions: name → documentation. All take one response group name and are boolean.
FUNCTIONS: dict[str, str] = {
    "ever": "the contact ever had a result in the named response group in this sub-campaign",
}
