"""Random and hostile filter text: only the language's own FilterError ever escapes,
and string literals only ever reach SQL as bound parameters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from csm.filters import FilterError, check_filter
from csm.selection import selection_query

GROUPS = {"reached": ["success"], "machine": ["delivered_machine"]}
PIECES = st.sampled_from(
    [
        "attempts",
        "attempts_today",
        "last_result",
        "last_group",
        "attributes.x",
        "consent.sms",
        "has_wireless",
        "ever(",
        "(",
        ")",
        ",",
        "'",
        '"',
        "and",
        "or",
        "not",
        "in",
        "like",
        "is",
        "null",
        "true",
        "=",
        "!=",
        "<",
        ">=",
        "0",
        "-1",
        "3.5",
        "'no_answer'",
        "'reached'",
        " ",
        ";",
        "--",
        "/*",
        "\\",
        "%",
        "\x00",
        "é",
        "🙂",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_random_text_raises_only_filter_error(text: str) -> None:
    try:
        check_filter(text, GROUPS)
    except FilterError as err:
        assert err.column >= 1


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=25).map(" ".join))
def test_token_soup_raises_only_filter_error(text: str) -> None:
    try:
        node = check_filter(text, GROUPS)
    except FilterError:
        return
    selection_query(list_id=1, node=node, response_groups=GROUPS, sub_campaign_id=1)


def _compiled(value: str):
    quoted = "'" + value.replace("'", "''") + "'"
    node = check_filter(f"attributes.note = {quoted} or account like {quoted}", GROUPS)
    return selection_query(list_id=1, node=node, response_groups=GROUPS).compile(
        dialect=postgresql.asyncpg.dialect()
    )


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\x00"), min_size=1, max_size=40))
def test_string_literals_are_bound_parameters(value: str) -> None:
    compiled = _compiled(value)
    assert value in compiled.params.values()
    assert str(compiled) == str(_compiled("plain"))  # the SQL text does not depend on the data
