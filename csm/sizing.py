"""Whether a worker's database pool can get its connections, checked when the worker starts.

A worker holds up to CSM_DATABASE_POOL_SIZE connections; every pass it runs borrows
from that pool, up to CONNECTIONS_PER_PASS at once (csm.pooled). Two configurations
cannot work, and a worker refuses to start with either, saying what to change, rather
than failing later in a pass: a pool PostgreSQL can never give (more than its
max_connections leaves for ordinary roles), and a pool smaller than one pass uses at
once. Two work, and the worker warns of them: a pool larger than what other clients leave
right now (their connections come and go), and more passes at once than the pool has
connections for (they wait their turn for a connection, heartbeating; none fails).
How to size workers and the server:
docs/sizing.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from csm.errors import CsmError
from csm.lookups import Db, reading
from csm.settings import Settings, mask_url_password

#: The stages of a pass's sweep that each borrow a connection, and may at the same moment
#: (csm/passes/sweep.py): the reader reads the next batch while the attempt stage works
#: this one and the recorder writes the one before.
PASS_STAGES = ("reader", "attempt stage", "recorder")
#: Connections one pass uses at once, at most: one a stage. A pool smaller than this makes
#: a lone pass's stages wait for one another; passes beyond pool / this wait their turn.
CONNECTIONS_PER_PASS = len(PASS_STAGES)
#: Activities a worker runs at once when CSM_MAX_CONCURRENT_ACTIVITIES is unset: the
#: Temporal SDK's default (temporalio.worker's fixed-size slot supplier, 100 slots).
SDK_DEFAULT_CONCURRENT_ACTIVITIES = 100

_log = logging.getLogger(__name__)

#: The server's connection limits, and its client connections other than the asker's.
#: Another role's sessions hide their backend_type from a role without pg_read_all_stats:
#: those connected to a database count as clients (a few background workers may be
#: counted too: the figure errs on the safe side).
SERVER_CONNECTIONS = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
       (SELECT count(*) FROM pg_stat_activity
         WHERE pid <> pg_backend_pid()
           AND (backend_type = 'client backend'
                OR (backend_type IS NULL AND datid IS NOT NULL)))::int AS in_use
"""


class SizingError(CsmError):
    """A worker's sizing that cannot get its connections: what is wrong and what to change."""


@dataclass(frozen=True, slots=True)
class ServerConnections:
    """PostgreSQL's connection slots as a worker that starts sees them.

    `reserved` is PostgreSQL 16's reserved_connections (0 before it): slots kept for roles
    with pg_use_reserved_connections. The worker is counted as an ordinary role even when
    it connects as a superuser: the superuser slots are the way in for the operator who
    must fix a full server, and a worker that took them would close it.
    """

    max_connections: int
    superuser_reserved: int
    reserved: int
    in_use: int

    @property
    def for_ordinary_roles(self) -> int:
        """Connections an ordinary role can ever hold: max_connections less the reserved."""
        return self.max_connections - self.superuser_reserved - self.reserved

    @property
    def left(self) -> int:
        """Connections an ordinary role can open now, the other clients' left in place."""
        return max(self.for_ordinary_roles - self.in_use, 0)


@dataclass(frozen=True, slots=True)
class Sizing:
    """A worker's sizing that can get its connections, with the figures behind it."""

    pool: int
    passes_at_once: int
    server: ServerConnections
    connections_per_pass: int = CONNECTIONS_PER_PASS

    @property
    def connections_wanted(self) -> int:
        """Connections for every pass the worker may run to have all it uses at once."""
        return self.passes_at_once * self.connections_per_pass

    @property
    def passes_wait(self) -> bool:
        """More passes at once than the pool serves side by side: some wait their turn."""
        return self.connections_wanted > self.pool

    def figures(self) -> str:
        server = self.server
        return (
            f"database pool {self.pool} connections (CSM_DATABASE_POOL_SIZE), "
            f"{self.passes_at_once} passes at once (CSM_MAX_CONCURRENT_ACTIVITIES), "
            f"{self.connections_per_pass} connections a pass; PostgreSQL max_connections "
            f"{server.max_connections} ({server.superuser_reserved + server.reserved} "
            f"reserved), {server.in_use} in use by other clients, {server.left} left"
        )


def passes_at_once(settings: Settings) -> int:
    """The most passes (activities) one worker runs at once."""
    return settings.max_concurrent_activities or SDK_DEFAULT_CONCURRENT_ACTIVITIES


async def server_connections(db: Db) -> ServerConnections:
    """The server's connection limits and the other clients' connections, read now."""
    async with reading(db) as connection:
        row = await connection.fetchrow(SERVER_CONNECTIONS)
    assert row is not None
    return ServerConnections(**dict(row))


def judge(pool: int, passes: int, server: ServerConnections) -> Sizing:
    """The sizing of a pool of `pool` connections for `passes` at once on `server`, or a
    SizingError that names the settings to change.

    Refused: a pool the server can never give (more than max_connections leaves ordinary
    roles). A pool larger than what other clients leave right now is a warning only
    (log_sizing): their connections come and go (test runs, a migration, the web page),
    and a worker that waits for a connection heartbeats and fails nothing."""
    _covers_a_pass(pool)
    if pool > server.for_ordinary_roles:
        raise SizingError(
            f"CSM_DATABASE_POOL_SIZE={pool} is more connections than PostgreSQL can ever give"
            f" this worker: max_connections={server.max_connections}, less"
            f" {server.superuser_reserved + server.reserved} reserved"
            " (superuser_reserved_connections, reserved_connections), leaves"
            f" {server.for_ordinary_roles}; " + _what_to_change(pool, server) + " (docs/sizing.md)"
        )
    return Sizing(pool=pool, passes_at_once=passes, server=server)


def _covers_a_pass(pool: int) -> None:
    if pool < CONNECTIONS_PER_PASS:
        raise SizingError(
            f"CSM_DATABASE_POOL_SIZE={pool} is fewer connections than one pass uses at once"
            f" ({CONNECTIONS_PER_PASS}: its {', '.join(PASS_STAGES)}); set"
            f" CSM_DATABASE_POOL_SIZE to {CONNECTIONS_PER_PASS} or more (docs/sizing.md)"
        )


def _what_to_change(pool: int, server: ServerConnections) -> str:
    enough = pool + server.superuser_reserved + server.reserved
    raise_it = f"raise max_connections on the server to {enough} or more"
    if server.for_ordinary_roles >= CONNECTIONS_PER_PASS:
        return f"lower CSM_DATABASE_POOL_SIZE to {server.for_ordinary_roles} or less, or {raise_it}"
    return raise_it


async def check_sizing(db: Db, settings: Settings) -> Sizing:
    """Whether this worker's pool (settings.database_pool_size) can get its connections on
    the database `db` reaches; raises SizingError if not, and CsmError if it cannot ask.

    `db` may be the worker's own engine: the connection the check borrows is one of the
    pool's, so it is not counted among the other clients'. A server already full refuses
    the check's own connection, and that is a SizingError too.
    """
    pool, passes = settings.database_pool_size, passes_at_once(settings)
    _covers_a_pass(pool)  # wrong whatever the server says
    where = mask_url_password(settings.effective_database_url)
    try:
        server = await server_connections(db)
    except OSError as err:  # refused, unknown host, timed out: asyncpg raises these unwrapped
        raise CsmError(f"cannot reach the database at {where} to check its sizing: {err}") from err
    except Exception as err:
        if (refusal := _too_many_connections(err)) is None:
            raise
        raise SizingError(
            f"PostgreSQL at {where} refused this worker a connection ({refusal}): its"
            " max_connections, or the CONNECTION LIMIT of the worker's role or database, are"
            " taken; raise the limit, or lower CSM_DATABASE_POOL_SIZE of the workers (and the"
            " pools of other clients) that hold them (docs/sizing.md)"
        ) from None
    return judge(pool, passes, server)


def _too_many_connections(err: BaseException) -> asyncpg.TooManyConnectionsError | None:
    """The server's refusal for want of connection slots, asyncpg's own or wrapped by
    SQLAlchemy (which raises its error from asyncpg's)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, asyncpg.TooManyConnectionsError):
            return seen
        seen = seen.__cause__
    return None


def log_sizing(sizing: Sizing) -> None:
    """Log the sizing's figures, and a warning when passes will wait their turn."""
    _log.info("sizing: %s", sizing.figures())
    if sizing.pool > sizing.server.left:
        _log.warning(
            "the database pool's %d connections are more than PostgreSQL has left now (%d:"
            " other clients hold %d): passes may wait for connections until they free up;"
            " lower CSM_DATABASE_POOL_SIZE or raise max_connections (docs/sizing.md)",
            sizing.pool,
            sizing.server.left,
            sizing.server.in_use,
        )
    if sizing.passes_wait:
        _log.warning(
            "up to %d passes at once x %d connections a pass = %d > the database pool's %d:"
            " passes will wait their turn for a connection (heartbeating: slower, never"
            " failed); to run them side by side raise CSM_DATABASE_POOL_SIZE (and"
            " PostgreSQL's max_connections) or lower CSM_MAX_CONCURRENT_ACTIVITIES"
            " (docs/sizing.md)",
            sizing.passes_at_once,
            sizing.connections_per_pass,
            sizing.connections_wanted,
            sizing.pool,
        )
