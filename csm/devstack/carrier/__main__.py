"""`python -m csm.devstack.carrier`: the local Twilio-compatible carrier, served by uvicorn.

Defaults come from csm's settings (CSM_CARRIER_PORT, CSM_CARRIER_SPEED,
CSM_SIMULATOR_SEED, CSM_TWILIO_ACCOUNT_SID, CSM_TWILIO_AUTH_TOKEN, CSM_PUBLIC_URL,
CSM_TWILIO_FROM); the account's credentials are read only from there, never from
the command line (where `ps` would show them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from csm.devstack.carrier.carrier import CarrierConfig
from csm.devstack.carrier.faults import FaultError, Faults
from csm.settings import load_settings


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not a fraction in [0, 1]")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def parser() -> argparse.ArgumentParser:
    settings = load_settings()
    cli = argparse.ArgumentParser(
        prog="python -m csm.devstack.carrier",
        description=(
            "A local Twilio-compatible carrier. It answers Twilio's REST calls for calls and "
            "messages, draws each attempt's outcome from csm's simulator by the attempt key in "
            "its callback URL, sends signed status callbacks (and requests the answer URL of a "
            "call that is answered, playing its TwiML), and keeps a record of every placement: "
            "GET /_carrier/record. Faults can also be set while it runs: POST /_carrier/faults "
            'with JSON such as {"lose_callbacks": 0.1}. POST /_carrier/inbound {"from", "body"} '
            "sends the receiver an inbound text."
        ),
        epilog=(
            "The account SID and auth token are CSM_TWILIO_ACCOUNT_SID and CSM_TWILIO_AUTH_TOKEN; "
            "callbacks go to the URLs each request gives, inbound texts to CSM_PUBLIC_URL."
        ),
    )
    cli.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    cli.add_argument(
        "--port",
        type=int,
        default=settings.carrier_port,
        help="port (default CSM_CARRIER_PORT, %(default)s)",
    )
    cli.add_argument(
        "--speed",
        type=_non_negative,
        default=settings.carrier_speed,
        help="ring/AMD/talk/SMS delays as a share of real-world ones: 0 = callbacks at once "
        "(still in order), 1 = real time (default CSM_CARRIER_SPEED, %(default)s)",
    )
    cli.add_argument(
        "--seed",
        type=int,
        default=settings.simulator_seed,
        help="seed of the outcome draws and faults (default CSM_SIMULATOR_SEED, %(default)s)",
    )
    cli.add_argument(
        "--journal",
        type=Path,
        default=None,
        help="file where every placement is appended, read back on restart (default: none)",
    )
    cli.add_argument(
        "--cps",
        type=_non_negative,
        default=0.0,
        help="the account's calls per second; beyond it a call POST gets 429 code 20429 "
        "(default 0: no limit)",
    )
    cli.add_argument(
        "--public-url",
        default=settings.public_url,
        help="the webhook receiver, where inbound texts go (default CSM_PUBLIC_URL, %(default)s)",
    )
    faults = cli.add_argument_group("faults (fractions in [0, 1])")
    faults.add_argument("--error-rate", type=_fraction, default=0.0, help="POSTs answered 500")
    faults.add_argument("--throttle-rate", type=_fraction, default=0.0, help="POSTs answered 429")
    faults.add_argument(
        "--lose-callbacks", type=_fraction, default=0.0, help="status callbacks never sent"
    )
    faults.add_argument(
        "--repeat-callbacks", type=_fraction, default=0.0, help="status callbacks sent twice"
    )
    faults.add_argument(
        "--reorder",
        action="store_true",
        help="send some placements' final status before their ringing/sent",
    )
    return cli


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from csm.devstack.carrier.app import create_app

    cli = parser()
    args = cli.parse_args(argv)
    settings = load_settings()
    try:
        faults = Faults(
            error_rate=args.error_rate,
            throttle_rate=args.throttle_rate,
            lose_callbacks=args.lose_callbacks,
            repeat_callbacks=args.repeat_callbacks,
            reorder=args.reorder,
            seed=args.seed,
        )
    except FaultError as err:
        cli.error(str(err))
    config = CarrierConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        public_url=args.public_url,
        number=settings.twilio_from,
        seed=args.seed,
        speed=args.speed,
        cps=args.cps,
        journal=args.journal,
        faults=faults,
    )
    print(
        f"carrier on http://{args.host}:{args.port}/ (speed {args.speed:g}, seed {args.seed}"
        f"{', journal ' + str(args.journal) if args.journal else ''})",
        flush=True,
    )
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
