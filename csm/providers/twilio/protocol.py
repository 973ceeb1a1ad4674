"""What Twilio's words mean to csm: statuses, their order, callback URLs and result codes.

One definition shared by the three parts that speak the protocol: the adapter that
places attempts (csm.providers.twilio.adapter), the webhook receiver that takes the
callbacks (csm.webhooks) and the local carrier that plays the other side
(csm.devstack.carrier). docs/providers.md shows the mapping as a table.

Callbacks can repeat and arrive out of order, so a status has a *rank*: an attempt's
status only ever moves to a higher rank (a `ringing` after `completed` changes
nothing), and every final status has the top rank (the first one to arrive wins).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from csm.vocabulary import Channel

API_VERSION = "2010-04-01"

# ---- paths of the webhook receiver (relative to CSM_PUBLIC_URL) ------------------
VOICE_STATUS_PATH = "/twilio/voice/status"
VOICE_ANSWER_PATH = "/twilio/voice/answer"
SMS_STATUS_PATH = "/twilio/sms/status"
SMS_INBOUND_PATH = "/twilio/sms/inbound"
#: The query parameter of a callback URL that carries the attempt key.
KEY_PARAM = "key"

FINAL_RANK = 9

#: CallStatus → rank. Final: completed, busy, no-answer, canceled, failed.
CALL_RANKS: dict[str, int] = {
    "queued": 1,
    "initiated": 2,
    "ringing": 3,
    "in-progress": 4,
    "completed": FINAL_RANK,
    "busy": FINAL_RANK,
    "no-answer": FINAL_RANK,
    "canceled": FINAL_RANK,
    "failed": FINAL_RANK,
}
#: MessageStatus → rank. Final: delivered, undelivered, failed (and read, for channels
#: that report it). `sent` is final only for a lookup at the deadline (some carriers
#: never confirm delivery).
MESSAGE_RANKS: dict[str, int] = {
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": FINAL_RANK,
    "undelivered": FINAL_RANK,
    "failed": FINAL_RANK,
    "read": FINAL_RANK,
    "canceled": FINAL_RANK,
}

#: AnsweredBy → the voice result of a completed call that met it (answering-machine
#: detection with DetectMessageEnd: the message is spoken after the beep).
ANSWERED_BY_RESULTS: dict[str, str] = {
    "human": "delivered_person",
    # detection could not tell: treated as a person, the safe side (a person may be on the
    # line: a pass with agents bridges it, and it counts toward the abandon rate)
    "unknown": "delivered_person",
    "machine_end_beep": "delivered_machine",
    "machine_end_silence": "delivered_machine",
    "machine_end_other": "undelivered_machine",  # no beep found: the message may be lost
    "machine_start": "hang_up_on_machine",  # the call ended before the greeting did
    "fax": "bad_device",
}
#: The AnsweredBy values that are a person (or may be one): a live answer.
LIVE_ANSWERS = frozenset({"human", "unknown"})

#: Final CallStatus other than completed → result.
CALL_STATUS_RESULTS: dict[str, str] = {
    "busy": "busy",
    "no-answer": "no_answer",
    "canceled": "not_connected",
    "failed": "not_connected",
}
#: ErrorCodes of a failed call (or a refused POST) that say the number itself is wrong.
BAD_NUMBER_CODES = frozenset({"13223", "13224", "21211", "21214", "21217", "21215"})

#: SMS ErrorCodes (on an undelivered/failed status or a refused POST) → result.
MESSAGE_ERROR_RESULTS: dict[str, str] = {
    "21610": "opted_out",  # the recipient replied STOP: unsubscribed
    "30004": "opted_out",  # blocked by the recipient
    "21211": "bad_device",  # invalid 'To' number
    "21614": "bad_device",  # 'To' is not a mobile number
    "30005": "bad_device",  # unknown destination number
    "30006": "bad_device",  # landline or unreachable carrier
    "30003": "failed",  # unreachable handset
    "30007": "failed",  # filtered as spam
    "30008": "failed",  # unknown error
}


def rank(channel: Channel | str, status: str | None) -> int:
    """The status's rank on its channel's ladder (0: not a status we know)."""
    if status is None:
        return 0
    ranks = MESSAGE_RANKS if Channel(channel) is Channel.SMS else CALL_RANKS
    return ranks.get(status, 0)


def is_final(channel: Channel | str, status: str | None) -> bool:
    return rank(channel, status) == FINAL_RANK


def call_result(status: str, answered_by: str | None, error_code: str | None) -> str:
    """The result code of a call that reached a final status."""
    if status == "completed":
        return ANSWERED_BY_RESULTS.get(answered_by or "human", "delivered_person")
    if status == "failed" and error_code in BAD_NUMBER_CODES:
        return "bad_device"
    return CALL_STATUS_RESULTS.get(status, "not_connected")


def message_result(status: str, error_code: str | None, *, at_deadline: bool = False) -> str:
    """The result code of a message that reached a final status (or `sent` at its
    deadline, which counts as delivered)."""
    if status in ("delivered", "read") or (at_deadline and status == "sent"):
        return "success"
    return MESSAGE_ERROR_RESULTS.get(error_code or "", "failed")


def refused_result(channel: Channel | str, error_code: str | None) -> str:
    """The result code of a POST the carrier refused with a 4xx (never retried)."""
    if Channel(channel) is Channel.SMS:
        return MESSAGE_ERROR_RESULTS.get(error_code or "", "failed")
    return "bad_device" if error_code in BAD_NUMBER_CODES else "not_connected"


def callback_url(public_url: str, path: str, attempt_key: str | None = None) -> str:
    """The full URL the carrier calls back: CSM_PUBLIC_URL + path (+ ?key=attempt key).
    The signature covers it whole, query included."""
    url = public_url.rstrip("/") + path
    if attempt_key is not None:
        url += f"?{KEY_PARAM}={quote(attempt_key, safe='')}"
    return url


def public_path(public_url: str) -> str:
    """The path prefix of CSM_PUBLIC_URL (behind a proxy the receiver may sit under one)."""
    return urlsplit(public_url).path.rstrip("/")
