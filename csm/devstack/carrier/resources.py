"""The JSON the carrier's REST answers with, shaped as Twilio's (the fields csm reads and
the usual ones around them), and its error bodies."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime

from csm.devstack.carrier.record import Placement
from csm.providers.twilio.protocol import API_VERSION

#: Twilio's error codes the carrier answers with.
INVALID_TO = 21211
UNSUBSCRIBED = 21610
NO_FROM = 21603
NO_URL = 21205
NO_BODY = 21602
BAD_CREDENTIALS = 20003
NOT_FOUND = 20404
TOO_MANY_REQUESTS = 20429
INTERNAL_ERROR = 20500
BAD_PARAMETER = 20001


class CarrierError(Exception):
    """A REST request the carrier refuses: HTTP status, Twilio error code, message."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def _date(when: datetime | None) -> str | None:
    return format_datetime(when) if when is not None else None


def _code(code: str | None) -> int | None:
    """Twilio's JSON gives error codes as numbers (webhooks give them as text)."""
    return int(code) if code else None


def call_json(placement: Placement, account_sid: str) -> dict[str, object]:
    return {
        "sid": placement.sid,
        "account_sid": account_sid,
        "to": placement.to,
        "from": placement.from_,
        "status": placement.status,
        "answered_by": placement.answered_by,
        "error_code": _code(placement.error_code),
        "duration": None if placement.duration is None else str(placement.duration),
        "date_created": _date(placement.created),
        "start_time": _date(placement.created),
        "end_time": _date(placement.ended),
        "direction": "outbound-api",
        "api_version": API_VERSION,
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/Calls/{placement.sid}.json",
    }


def message_json(placement: Placement, account_sid: str) -> dict[str, object]:
    return {
        "sid": placement.sid,
        "account_sid": account_sid,
        "to": placement.to,
        "from": placement.from_,
        "body": None,  # the carrier keeps no message text
        "status": placement.status,
        "error_code": _code(placement.error_code),
        "num_segments": "1",
        "date_created": _date(placement.created),
        "date_sent": _date(placement.created),
        "direction": "outbound-api",
        "api_version": API_VERSION,
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{placement.sid}.json",
    }
