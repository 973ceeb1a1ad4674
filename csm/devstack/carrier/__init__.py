"""A local Twilio-compatible carrier: the other side of csm.providers.twilio in dev and tests.

It answers Twilio's REST calls for calls and messages, draws each attempt's outcome
from csm's simulator (csm.channels.simulator) by the attempt key in the callback URL,
plays the outcome out in Twilio's protocol (signed status callbacks, the answer URL's
TwiML) with delays scaled by a speed, keeps a record of every placement (the witness
that csm never places an attempt key twice) and injects faults on request.

Modules, one job each: `world` (outcome draws and how each plays out), `record`
(placements and the journal), `faults`, `twiml` (reading the answer URL's TwiML),
`callbacks` (the signed callback sender), `playout` (one call or message, step by
step), `resources` (the REST JSON shapes), `carrier` (the state of one carrier),
`app` (the HTTP routes) and `__main__` (`python -m csm.devstack.carrier`).
"""
