"""`csm web`: the live results page and manager actions, served by uvicorn."""

from __future__ import annotations

import secrets

import typer


def web_command(
    host: str | None = typer.Option(
        None, "--host", help="address to listen on (default CSM_WEB_HOST, 127.0.0.1)"
    ),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="port (default CSM_WEB_PORT, 8000)"
    ),
) -> None:
    """Serve the web page: sub-campaigns, each pass as a live funnel, pause / resume / stop,
    and amendments with the strategy preview's count before you confirm.

    Sign in with the token in CSM_WEB_TOKEN (without one, a random token is made for
    this run and printed). The API takes the same token as `Authorization: Bearer`.
    Binds to 127.0.0.1 unless told otherwise: put it behind TLS to open it up.
    It also serves the carrier's webhooks at /twilio/... (as `csm webhooks` does),
    authenticated by their signature rather than the sign-in.
    """
    import uvicorn

    from csm.cli.subcampaigns import with_temporal
    from csm.settings import Settings
    from csm.web.app import create_app
    from csm.webhooks import mount

    async def serve(client, engine, settings: Settings) -> None:
        token = settings.web_token.get_secret_value() if settings.web_token else None
        if not token:
            token = secrets.token_urlsafe(18)
            print(f"no CSM_WEB_TOKEN set: this run's token is {token}")
        app = create_app(
            client=client,
            engine=engine,
            token=token,
            temporal_ui_url=settings.temporal_ui_url,
            namespace=settings.temporal_namespace,
            session_hours=settings.web_session_hours,
            webhooks=mount(settings, engine),
        )
        bind_host, bind_port = host or settings.web_host, port or settings.web_port
        print(f"csm web on http://{bind_host}:{bind_port}/  (Ctrl-C stops it)", flush=True)
        config = uvicorn.Config(app, host=bind_host, port=bind_port, log_level="warning")
        await uvicorn.Server(config).serve()

    with_temporal(serve)
