"""The filter language of passes: parsed, checked, compiled to parameterised SQL.

Filters are data, not code: no eval, no SQL built from strings. The reference
is docs/filters.md.
"""

from csm.filters.check import check_filter
from csm.filters.errors import FilterError
from csm.filters.parser import parse_filter

__all__ = ["FilterError", "check_filter", "parse_filter"]
