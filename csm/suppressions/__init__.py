"""Suppression lists: accounts, phone numbers and e-mail addresses not to contact.

A suppression names one *target* — an account (by its account key, as written
in list files), a phone number (E.164) or an e-mail address (lower-cased) — in
one campaign or, with no campaign, in every campaign (docs/suppression.md).

- `targets`: the target value object (kind, value), normalised once, and reasons;
- `store`: the table — add, lift, list;
- `importer`: a CSV file, parsed whole before one transaction writes it;
- `inbound`: STOP replies (`record_sms`, what the webhook receiver and `receive_sms` call);
- `errors`: `SuppressionError`, the one error of this package, with one-line
  messages (an import's lists its bad rows, naming line and column, never a value).

Pass activities read the table as each batch of contacts loads, just before
its attempts, and add global suppressions themselves when an SMS is answered
with STOP (`stop_reply`) or an e-mail hard-bounces (`hard_bounce`).
"""

from csm.suppressions.errors import (
    MAX_LISTED_PROBLEMS,
    ImportProblem,
    SuppressionError,
    SuppressionImportError,
)
from csm.suppressions.importer import ImportReport, import_suppressions
from csm.suppressions.inbound import OPT_OUT_KEYWORDS, Received, is_opt_out, receive_sms, record_sms
from csm.suppressions.store import (
    Added,
    SuppressionPage,
    SuppressionRow,
    add_suppression,
    ensure_suppression,
    list_suppressions,
    remove_suppression,
    remove_target,
)
from csm.suppressions.targets import (
    DEFAULT_REASON,
    HARD_BOUNCE,
    MAX_REASON,
    STOP_REPLY,
    SuppressionKind,
    Target,
    normalise_target,
)

__all__ = [
    "DEFAULT_REASON",
    "HARD_BOUNCE",
    "MAX_LISTED_PROBLEMS",
    "MAX_REASON",
    "OPT_OUT_KEYWORDS",
    "STOP_REPLY",
    "Added",
    "ImportProblem",
    "ImportReport",
    "Received",
    "SuppressionError",
    "SuppressionImportError",
    "SuppressionKind",
    "SuppressionPage",
    "SuppressionRow",
    "Target",
    "add_suppression",
    "ensure_suppression",
    "import_suppressions",
    "is_opt_out",
    "list_suppressions",
    "normalise_target",
    "receive_sms",
    "record_sms",
    "remove_suppression",
    "remove_target",
]
