"""The pass activity's input: ids, codes and strategy text only (no personal data)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from temporalio.exceptions import ApplicationError

from csm.strategy.model import MAX_SHARDS, PassDefinition


@dataclass
class PassInput:
    """Ids, codes and strategy text only: no personal data."""

    sub_campaign_id: int
    campaign_id: int
    list_id: int
    day: date
    pass_number: int
    definition: PassDefinition
    response_groups: dict[str, list[str]]
    campaign_timezone: str
    previous_selection: tuple[date, int] | None = None  # for source = "previous"
    final_groups: dict[str, str] = field(default_factory=dict)  # group name → final scope
    batch_size: int = 2000  # the largest batch; batches adapt to last about BATCH_SECONDS
    close_reason: str | None = None  # set: do not attempt, skip the rest with this reason
    # `pacing.shards` > 1: the workflow runs shards 0..shards-1 of round 0 at once, then
    # the whole pass (shard None), which finds round 0 done and works the retry rounds.
    shard: int | None = None
    shards: int = 1

    def check(self) -> None:
        """Refuse a shard that is not one (a starter script's mistake): not retried."""
        if not 1 <= self.shards <= MAX_SHARDS or (
            self.shard is not None and not 0 <= self.shard < self.shards
        ):
            raise ApplicationError(
                f"pass {self.pass_number}: shard {self.shard} of {self.shards} is not a shard"
                f" (shards 1 to {MAX_SHARDS}, shard 0 to shards - 1)",
                type="BadPassInput",
                non_retryable=True,
            )

    def for_shard(self) -> PassInput:
        """The input as one shard works it: its share of the pass's pacing."""
        pacing = self.definition.pacing.shared(self.shards)
        return replace(self, definition=self.definition.model_copy(update={"pacing": pacing}))

    def final_codes(self) -> dict[str, list[tuple[str, str]]]:
        """Result code → the final response groups (name, scope) it puts an account in."""
        codes: dict[str, list[tuple[str, str]]] = {}
        for group, scope in self.final_groups.items():
            for code in self.response_groups.get(group, ()):
                codes.setdefault(code, []).append((group, scope))
        return codes
