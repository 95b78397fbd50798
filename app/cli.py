"""The ``creditlens`` command: serve, migrate, ingest, and manage organizations and tokens."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import typer
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import Settings
from db import migrate as migrations
from db.engine import create_engine, writing
from db.queries.directory import create_organization, create_user, find_organization
from db.queries.tokens import create_token, revoke_token
from domain.clock import system_clock
from domain.plans import Plan
from domain.roles import Role
from domain.scopes import TokenScope

T = TypeVar("T")
PLANS = tuple(plan.value for plan in Plan)
ROLES = tuple(role.value for role in Role)

# Plain click help: typer's rich panels print flags such as --json and --help as if they took
# a <bool> value. Plain tracebacks: the rich ones run to hundreds of lines of boxes.
cli = typer.Typer(
    help="creditlens: where do our API credits go?",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
org_cli = typer.Typer(help="Organizations.", no_args_is_help=True)
user_cli = typer.Typer(help="Users of an organization.", no_args_is_help=True)
token_cli = typer.Typer(help="Access tokens.", no_args_is_help=True)
rollups_cli = typer.Typer(help="Rollup tables.", no_args_is_help=True)
webhooks_cli = typer.Typer(help="Alert webhooks.", no_args_is_help=True)
cli.add_typer(org_cli, name="org")
cli.add_typer(user_cli, name="user")
cli.add_typer(token_cli, name="token")
cli.add_typer(rollups_cli, name="rollups")
cli.add_typer(webhooks_cli, name="webhooks")


def _run(work: Callable[[AsyncEngine, Settings], Awaitable[T]]) -> T:
    """Runs ``work`` on the configured database, after checking that it is there and migrated:
    otherwise one line names the database and the command that fixes it."""
    settings = Settings()

    async def main() -> T:
        engine = create_engine(settings.database_url)
        try:
            problem = await migrations.not_ready(engine, settings.database_url)
            if problem is not None:
                fix = (
                    "run `creditlens migrate` (the CLI uses CREDITLENS_DATABASE_URL)"
                    if problem.reachable
                    else "check CREDITLENS_DATABASE_URL, then run `creditlens migrate`"
                )
                where = migrations.describe(settings.database_url)
                raise _fail(f"the database {where} {problem.reason}: {fix}")
            return await work(engine, settings)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _emit(as_json: bool, payload: dict[str, object], text: str) -> None:
    typer.echo(json.dumps(payload) if as_json else text)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


@cli.command()
def migrate() -> None:
    """Bring the database (CREDITLENS_DATABASE_URL) to the newest schema."""
    settings = Settings()
    _upgrade(settings.database_url)
    typer.echo(f"database at revision {migrations.head_revision()}")


def _upgrade(url: str) -> None:
    """Migrates, or says in one line why the database cannot be reached."""
    try:
        migrations.upgrade(url)
    except (SQLAlchemyError, OSError) as error:
        raise _fail(
            f"cannot open the database {migrations.describe(url)}: "
            f"{migrations.unreachable_reason(error)} (check CREDITLENS_DATABASE_URL)"
        ) from error


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    demo: bool = typer.Option(False, "--demo", help="Migrate and load demo data if empty."),
    workers: int = typer.Option(1, help="Worker processes (above 1: CREDITLENS_REDIS_URL)."),
) -> None:
    """Serve the API, the dashboard at / and GraphiQL at /graphql."""
    import shutil

    import uvicorn

    from app.http_protocol import protocol_name
    from app.workers import WorkersRefused, check_workers, prepare_metrics_directory

    settings = Settings()
    try:
        check_workers(settings, workers)
    except WorkersRefused as refused:
        raise _fail(str(refused)) from refused
    _upgrade(settings.database_url)
    if demo:
        from app.demo import demo_banner, load_demo

        async def seed(engine: AsyncEngine, settings: Settings) -> None:
            async with engine.connect() as conn:
                existing = await find_organization(conn, ref="acme")
            if existing is not None:
                typer.echo(
                    "demo data already loaded; tokens were printed when it was made. "
                    f"Dashboard: http://{host}:{port}/"
                )
                return
            tokens = await load_demo(
                engine, now=system_clock(), pepper=settings.token_pepper.get_secret_value()
            )
            # A link to a wildcard address would not open: point browsers at loopback.
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            banner = demo_banner(
                tokens, base_url=f"http://{shown}:{port}", database_url=settings.database_url
            )
            typer.echo(banner)
            sys.stdout.flush()  # before uvicorn takes over, even when piped

        _run(seed)
    metrics_directory = prepare_metrics_directory(settings, workers)
    try:
        if workers > 1:
            code = _supervise(settings, host, port, workers)
            if code:
                raise typer.Exit(code=code)
            return
        uvicorn.run(
            "app.asgi:app",
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            access_log=False,
            # httptools (h11 without it) with a deadline for request headers (slow clients,
            # docs/hardening.md); the worker process builds it from this import string.
            # The event loop is uvloop when installed ("auto"); both: bench/PROPOSALS.md R1.
            http=protocol_name(),
            loop="auto",
            # SIGTERM: stop accepting, answer what is in flight, then go (docs/deploy.md).
            timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        )
    finally:
        if metrics_directory is not None and not settings.metrics_multiprocess_dir:
            shutil.rmtree(metrics_directory, ignore_errors=True)


def _supervise(settings: Settings, host: str, port: int, workers: int) -> int:
    """``--workers N``: N uvicorn servers, one SO_REUSEPORT socket each (app/supervisor.py)."""
    from app.logging import configure_logging
    from app.supervisor import PortInUse, ServeOptions, Supervisor

    configure_logging(settings)
    options = ServeOptions(
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        shutdown_timeout_seconds=settings.shutdown_timeout_seconds,
    )
    try:
        return Supervisor(options, workers).run()
    except PortInUse as busy:
        raise _fail(str(busy)) from busy


@org_cli.command("create")
def org_create(
    slug: str = typer.Option(..., help="Short unique name, e.g. acme."),
    name: str = typer.Option(..., help="Display name."),
    plan: str = typer.Option("PRO", help="FREE, STARTER, PRO or ENTERPRISE."),
    timezone: str = typer.Option("UTC", help="IANA time zone of its reports."),
    allowance: int = typer.Option(100_000, help="Credits per billing cycle."),
    anchor: str | None = typer.Option(None, help="Billing cycle anchor (RFC 3339); default now."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create an organization."""
    from domain.errors import InvalidInput
    from domain.time_range import zone

    plan = plan.upper()
    if plan not in PLANS:
        raise _fail(f"--plan must be one of {', '.join(PLANS)}")
    try:
        zone(timezone, field="--timezone")
    except InvalidInput as error:
        raise _fail(error.message) from error
    now = system_clock()
    try:
        anchored = now if anchor is None else datetime.fromisoformat(anchor)
    except ValueError as error:
        raise _fail("--anchor must be an RFC 3339 timestamp") from error
    if anchored.tzinfo is None:
        raise _fail("--anchor needs an offset, e.g. 2026-01-01T00:00:00Z")

    async def work(engine: AsyncEngine, _: Settings) -> int:
        async with writing(engine) as conn:
            return await create_organization(
                conn,
                slug=slug,
                name=name,
                plan=plan,
                timezone=timezone,
                credit_allowance=allowance,
                billing_cycle_anchor=anchored,
                now=now,
            )

    try:
        ident = _run(work)
    except IntegrityError as error:
        raise _fail(f"an organization with slug {slug!r} exists") from error
    _emit(as_json, {"id": ident, "slug": slug}, f"created organization {slug} (id {ident})")


@user_cli.command("create")
def user_create(
    org: str = typer.Option(..., help="Organization id or slug."),
    name: str = typer.Option(..., help="Display name."),
    email: str | None = typer.Option(None, help="Email address."),
    role: str = typer.Option("MEMBER", help="ADMIN or MEMBER."),
    external_id: str | None = typer.Option(None, help="Id in events; default: the email."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create a user in an organization."""
    role = role.upper()
    if role not in ROLES:
        raise _fail(f"--role must be {' or '.join(ROLES)}")
    ident_in_events = external_id or email or name

    async def work(engine: AsyncEngine, _: Settings) -> int | None:
        async with writing(engine) as conn:
            organization = await find_organization(conn, ref=org)
            if organization is None:
                return None
            return await create_user(
                conn,
                organization_id=organization.id,
                external_id=ident_in_events,
                name=name,
                email=email,
                role=role,
                now=system_clock(),
            )

    try:
        ident = _run(work)
    except IntegrityError as error:
        raise _fail(f"a user {ident_in_events!r} exists in {org}") from error
    if ident is None:
        raise _fail(f"no organization {org!r}")
    _emit(as_json, {"id": ident}, f"created user {name} (id {ident})")


@token_cli.command("create")
def token_create(
    user: int | None = typer.Option(None, "--user", help="User id the token speaks for."),
    ingest_scope: bool = typer.Option(False, "--ingest", help="A token that can only ingest."),
    expires: str | None = typer.Option(None, help="Expiry (RFC 3339); default: never."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Create an access token; it is shown once and stored only as a hash."""
    if (user is None) == (not ingest_scope):
        raise _fail("give exactly one of --user ID or --ingest")
    expires_at = None
    if expires is not None:
        try:
            expires_at = datetime.fromisoformat(expires)
        except ValueError as error:
            raise _fail("--expires must be an RFC 3339 timestamp") from error
        if expires_at.tzinfo is None:
            raise _fail("--expires needs an offset")

    async def work(engine: AsyncEngine, settings: Settings) -> tuple[int, str]:
        async with writing(engine) as conn:
            return await create_token(
                conn,
                pepper=settings.token_pepper.get_secret_value(),
                scope=TokenScope.INGEST if ingest_scope else TokenScope.USER,
                user_id=user,
                now=system_clock(),
                expires_at=expires_at,
            )

    try:
        ident, token = _run(work)
    except IntegrityError as error:
        raise _fail(f"no user with id {user}") from error
    _emit(as_json, {"id": ident, "token": token}, f"token {ident}: {token}\n(shown once)")


@token_cli.command("revoke")
def token_revoke(
    token_id: int = typer.Argument(..., help="The token's id."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Revoke a token; it stops working at once."""

    async def work(engine: AsyncEngine, _: Settings) -> bool:
        async with writing(engine) as conn:
            return await revoke_token(conn, token_id=token_id, now=system_clock())

    if not _run(work):
        raise _fail(f"no active token with id {token_id}")
    _emit(as_json, {"id": token_id, "revoked": True}, f"token {token_id} revoked")


@rollups_cli.command("rebuild")
def rollups_rebuild(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Recompute every rollup from raw events (one transaction)."""
    from db.rollups import rebuild

    async def work(engine: AsyncEngine, _: Settings) -> int:
        async with writing(engine) as conn:
            return await rebuild(conn)

    rows = _run(work)
    _emit(as_json, {"rows": rows}, f"rebuilt rollups: {rows} rows")


@webhooks_cli.command("run")
def webhooks_run(
    once: bool = typer.Option(False, "--once", help="Attempt what is due now, then exit."),
) -> None:
    """Deliver alert webhooks from the outbox until stopped (Ctrl-C or SIGTERM).

    ``serve`` already delivers them in every worker; run this on a host of its own with
    CREDITLENS_WEBHOOK_DISPATCHER=false on the servers, or beside them (PostgreSQL: each
    message is claimed by one dispatcher).
    """
    from app.logging import configure_logging
    from app.webhooks.dispatcher import Dispatcher, run_until_signalled

    async def work(engine: AsyncEngine, settings: Settings) -> int:
        configure_logging(settings)
        if once:
            return await Dispatcher(engine, settings).run_once()
        await run_until_signalled(engine, settings)
        return 0

    attempts = _run(work)
    if once:
        typer.echo(f"{attempts} webhook attempt(s) made")


@cli.command("ingest")
def ingest_file(
    file: str = typer.Argument(..., help="NDJSON or CSV file of events; - for standard input."),
    batch_size: int = typer.Option(1000, min=1, max=10_000, help="Events per atomic batch."),
    fmt: str | None = typer.Option(None, "--format", help="ndjson or csv; default: by suffix."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on standard error."),
) -> None:
    """Load events through the same validation and idempotency as POST /v1/events.

    Each batch is atomic. At the first refused batch the command stops with exit code 1 and
    lists its bad events (index in the file, field, reason) on standard error; the batches
    before it stay stored, so fix the file and run it again: stored events count as
    duplicates.
    """
    from app.file_ingest import Summary, ingest_stream
    from app.live_usage import LiveUsageHub
    from app.metrics import Metrics
    from app.redis_client import redis_client

    kind = (fmt or ("csv" if file.lower().endswith(".csv") else "ndjson")).lower()
    if kind not in ("ndjson", "csv"):
        raise _fail("--format must be ndjson or csv")
    try:
        stream = sys.stdin if file == "-" else Path(file).open(encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as error:
        raise _fail(f"cannot read {file}: {error.strerror}") from error

    async def work(engine: AsyncEngine, settings: Settings) -> Summary:
        # With Redis, each committed batch reaches the servers' live-usage subscriptions
        # (app/live_usage.py). Without it this process has no way to the servers' own
        # subscribers, which see the events at their next tick.
        redis = redis_client(settings)
        live = None if redis is None else LiveUsageHub(engine, redis=redis, metrics=Metrics())
        try:
            return await ingest_stream(
                engine,
                stream,
                kind=kind,
                batch_size=batch_size,
                progress=not quiet,
                published=None if live is None else live.published,
            )
        finally:
            if redis is not None:
                await redis.aclose()

    try:
        summary = _run(work)
    except UnicodeDecodeError as error:
        raise _fail(f"{file} is not UTF-8 text (byte {error.start} of a read chunk)") from error
    finally:
        if stream is not sys.stdin:
            stream.close()
    if summary.errors:
        first = summary.processed
        typer.echo(
            f"error: the batch starting at event {first} was refused and not written; "
            f"the {first} events before it are stored. Fix the file and run it again "
            "(stored events count as duplicates).",
            err=True,
        )
        for problem in summary.errors[:50]:
            typer.echo(
                f"event {problem.index} ({problem.field or 'event'}): {problem.reason}", err=True
            )
        if len(summary.errors) > 50:
            typer.echo(f"... and {len(summary.errors) - 50} more", err=True)
        if as_json:
            typer.echo(json.dumps(summary.as_dict()))
        raise typer.Exit(code=1)
    _emit(
        as_json,
        summary.as_dict(),
        f"accepted {summary.accepted:,}, duplicates {summary.duplicates:,}, "
        f"in {summary.seconds:.1f} s ({summary.rate:,.0f} events/s)",
    )


# The export's parameters as this command spells them.
EXPORT_FLAGS = {
    "preset": "--preset",
    "start": "--start",
    "end": "--end",
    "timezone": "--timezone",
    "keyId": "--key-id",
    "outcomes": "--outcomes",
    "groupBy": "--group-by",
    "granularity": "--granularity",
}


@cli.command("export")
def export_csv(
    org: str = typer.Option(..., help="Organization id or slug."),
    preset: str | None = typer.Option(None, help="A time range preset, e.g. LAST_30_DAYS."),
    start: str | None = typer.Option(None, help="Range start (RFC 3339), with --end."),
    end: str | None = typer.Option(None, help="Range end, excluded (RFC 3339)."),
    timezone: str | None = typer.Option(None, help="IANA zone; default: the organization's."),
    key_id: str | None = typer.Option(None, "--key-id", help="Only this API key."),
    outcomes: str | None = typer.Option(None, help="Only these outcomes, e.g. NO_RESULT."),
    group_by: str | None = typer.Option(
        None, "--group-by", help="endpoint (default), source, user or apiKey."
    ),
    granularity: str | None = typer.Option(None, help="HOUR, DAY, WEEK or MONTH buckets."),
    output: str = typer.Option("-", "--output", "-o", help="File to write; - for stdout."),
) -> None:
    """Export usage as CSV, as GET /v1/exports/usage.csv does (docs/export.md).

    Run by an operator with access to the database, for any organization: no token and no
    plan check. A file is written beside its name and renamed when complete, so an
    interrupted export never leaves a short file that looks whole.
    """
    from app.export_csv import parameter_of, parse_options, prepare
    from db.session import RequestDatabase
    from domain.errors import CreditLensError
    from domain.records import UserRecord
    from resolvers.context import Context, Limits

    given = {
        "preset": preset,
        "start": start,
        "end": end,
        "timezone": timezone,
        "keyId": key_id,
        "outcomes": outcomes,
        "groupBy": group_by,
        "granularity": granularity,
    }

    def refused(error: CreditLensError) -> typer.Exit:
        field = parameter_of(error.field)
        flag = EXPORT_FLAGS.get(field or "", "")
        return _fail(f"{flag}: {error.message}" if flag else error.message)

    try:
        options = parse_options({name: [value] for name, value in given.items() if value})
    except CreditLensError as error:
        raise refused(error) from error
    target = None if output == "-" else Path(output)
    partial = None if target is None else target.with_name(target.name + ".part")

    async def work(engine: AsyncEngine, settings: Settings) -> int | None:
        async with engine.connect() as conn:
            organization = await find_organization(conn, ref=org)
        if organization is None:
            return None
        now = system_clock()
        operator = UserRecord(
            id=0,
            organization_id=organization.id,
            external_id="creditlens-cli",
            name="creditlens export",
            email=None,
            role=Role.ADMIN,
            created_at=now,
        )
        db = RequestDatabase(engine)
        context = Context(
            db=db,
            clock=system_clock,
            viewer=operator,
            organization=organization,
            limits=Limits(
                max_page_size=settings.max_page_size,
                max_series_points=settings.max_series_points,
            ),
        )
        written = 0
        try:
            export = await prepare(context, options)
            sink = sys.stdout.buffer if partial is None else partial.open("wb")
            try:
                async for piece in export.chunks():
                    sink.write(piece)
                    written += len(piece)
            finally:
                if sink is sys.stdout.buffer:
                    sink.flush()
                else:
                    sink.close()
        finally:
            await db.close()
        return written

    try:
        try:
            written = _run(work)
        except BaseException:
            if partial is not None:  # no short file that looks whole
                partial.unlink(missing_ok=True)
            raise
    except CreditLensError as error:
        raise refused(error) from error
    except OSError as error:
        raise _fail(f"cannot write {output}: {error.strerror}") from error
    if partial is not None and target is not None and written is not None:
        partial.replace(target)
    if written is None:
        raise _fail(f"no organization {org!r}")
    if target is not None:
        typer.echo(f"wrote {written:,} bytes to {target}", err=True)


def main() -> None:
    cli()
