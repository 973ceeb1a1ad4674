"""Contact lists: importing list files (CSV, JSON Lines) and showing what a list holds.

See docs/lists.md for the file formats, the mapping TOML and every rule.
"""

from csm.lists.importer import ProgressCallback, import_list
from csm.lists.mapping import (
    AttributeColumn,
    AttributeType,
    DeviceColumn,
    FileFormat,
    Mapping,
    MappingOverrides,
    auto_mapping,
    load_mapping,
)
from csm.lists.report import ImportReport
from csm.lists.show import ListSummary, show_list

__all__ = [
    "AttributeColumn",
    "AttributeType",
    "DeviceColumn",
    "FileFormat",
    "ImportReport",
    "ListSummary",
    "Mapping",
    "MappingOverrides",
    "ProgressCallback",
    "auto_mapping",
    "import_list",
    "load_mapping",
    "show_list",
]
