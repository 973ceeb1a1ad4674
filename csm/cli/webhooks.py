"""`csm webhooks`: the carrier's webhook receiver alone, served by uvicorn."""

from __future__ import annotations

import typer

#: Connections the receiver's pool keeps: each callback holds one for one statement.
POOL_SIZE = 10


def webhooks_command(
    host: str | None = typer.Option(
        None, "--host", help="address to listen on (default CSM_WEBHOOKS_HOST, 127.0.0.1)"
    ),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="port (default CSM_WEBHOOKS_PORT, 8411)"
    ),
) -> None:
    """Receive the carrier's webhooks: call and message statuses, the answer URL, inbound texts.

    The carrier calls CSM_PUBLIC_URL (default http://127.0.0.1:8411, this receiver on
    the embedded stack): behind a reverse proxy, set it to the public https address that
    reaches this port. Every request must carry a valid X-Twilio-Signature made with
    CSM_TWILIO_AUTH_TOKEN over that public URL (403 otherwise): the signature is the
    only authentication, so keep the proxy's URL exactly what CSM_PUBLIC_URL says.

    Calls and messages csm places name their status and answer URLs themselves. In the
    Twilio console, set the number's "A message comes in" webhook (HTTP POST) to
    {CSM_PUBLIC_URL}/twilio/sms/inbound so STOP replies suppress the sender everywhere.
    `csm web` serves the same /twilio/... routes, if you would rather expose one server.
    GET /twilio/health answers the counts of orphan callbacks and events (no personal data).
    """
    import uvicorn

    from csm.cli.database import run_on_database
    from csm.database import engine_for
    from csm.settings import load_settings
    from csm.webhooks import create_app

    settings = load_settings()
    url = settings.effective_database_url
    bind_host, bind_port = host or settings.webhooks_host, port or settings.webhooks_port

    async def serve() -> None:
        async with engine_for(url, pool_size=POOL_SIZE) as engine:
            app = create_app(settings, engine)
            print(
                f"csm webhooks on http://{bind_host}:{bind_port}/twilio/ for the public URL"
                f" {settings.public_url}  (Ctrl-C stops it)",
                flush=True,
            )
            config = uvicorn.Config(app, host=bind_host, port=bind_port, log_level="warning")
            await uvicorn.Server(config).serve()

    run_on_database(url, serve)
