"""How many contacts a pending pass would select with another filter, before one confirms.

The amend form asks this first: the strategy the sub-campaign runs today, with one
pass's filter replaced and validated again as a file would be, counted by the strategy
preview (csm.preview) without changing anything.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.errors import CsmError
from csm.preview import preview_strategy
from csm.strategy.model import StrategyDefinition
from csm.subcampaigns import SubCampaignRef
from csm.web.data import strategy_of


async def amended_count(engine: AsyncEngine, ref: SubCampaignRef, target: str, text: str) -> int:
    """Contacts pass `target` (name or number) would select today with filter `text`."""
    strategy = await strategy_of(engine, ref, None)
    passes = [p.model_copy() for p in strategy.passes]
    found = [i for i, p in enumerate(passes) if p.name == target or str(i + 1) == target]
    if not found:
        raise CsmError(f"no pass {target!r} in today's strategy")
    passes[found[0]] = passes[found[0]].model_copy(update={"filter": text})
    try:
        amended = with_passes(strategy, passes)
    except ValidationError as err:  # the amended filter does not check out
        message = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
        raise CsmError(message) from None
    result = await preview_strategy(engine, sub_campaign=ref.workflow_id, strategy=amended)
    for planned in result.passes:
        if planned.number == found[0] + 1:
            return planned.selected
    raise CsmError(f"pass {target!r} is not due today")


def with_passes(strategy: StrategyDefinition, passes: list[Any]) -> StrategyDefinition:
    """The strategy with its passes replaced (validated again, as a file would be)."""
    return StrategyDefinition.model_validate(
        {**strategy.model_dump(), "passes": [p.model_dump() for p in passes]}
    )
