"""The ``memberlab`` command: mounts each domain's commands."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from typer.core import TyperGroup

from memberlab.analytics.commands import analyze_app
from memberlab.core import listening, migrate
from memberlab.core.cli_support import (
    actor,
    app_state,
    console,
    err_console,
    report_error,
    say,
)
from memberlab.core.commands import db_app, key_app, tenant_app
from memberlab.core.errors import Conflict, MemberLabError
from memberlab.core.i18n import normalise_language, set_language, t
from memberlab.core.settings import get_settings
from memberlab.dataio.commands import export_app, import_app
from memberlab.engagement.commands import engagement_app
from memberlab.experience.commands import cx_app
from memberlab.ledger.commands import jobs_app, liability_command, webhooks_app
from memberlab.members.commands import member_app
from memberlab.programs.commands import program_app


class DomainErrorsGroup(TyperGroup):
    """Reports domain errors in the chosen language with exit code 1, wherever the app runs
    (the ``memberlab`` command, ``CliRunner``, an embedding program)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MemberLabError as exc:
            report_error(exc)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=DomainErrorsGroup,
    name="memberlab",
    help=(
        "MemberLab: design, run, diagnose and optimize membership programs. "
        "/ 会员计划设计、运营、诊断与优化。"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(key_app, name="key")
app.add_typer(program_app, name="program")
app.add_typer(member_app, name="member")
app.add_typer(jobs_app, name="jobs")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(analyze_app, name="analyze")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(cx_app, name="cx")
app.add_typer(engagement_app, name="engagement")
app.command("liability")(liability_command)


@app.callback()
def root(
    lang: str | None = typer.Option(
        None, "--lang", help="zh or en (default: MEMBERLAB_LANGUAGE, zh-CN). / 界面语言。"
    ),
) -> None:
    chosen = normalise_language(lang) if lang else get_settings().language
    if lang and chosen is None:
        raise typer.BadParameter("--lang: zh | en")
    set_language(chosen or "zh-CN")


@app.command()
def demo(
    size: str = typer.Option(
        "small", "--size", help="tiny (300 members) | small (5,000) | medium (100,000) | large."
    ),
    members: int | None = typer.Option(None, "--members", help="Members (overrides --size)."),
    seed: int = typer.Option(7, "--seed", help="The same seed builds the same world."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the API afterwards."),
    host: str | None = typer.Option(None, help="Default: MEMBERLAB_HOST (127.0.0.1)."),
    port: int | None = typer.Option(None, help="Default: MEMBERLAB_PORT (8000)."),
) -> None:
    """Build the demo client (a tea-and-coffee chain with three years of history) in the
    store, print where to look, and serve the API.

    构建演示客户（连锁茶饮咖啡品牌，三年历史数据）并启动 API 服务。
    """
    from memberlab.datasets.demo import build_demo_world, prepare_demo, prepare_demo_experience
    from memberlab.datasets.world_config import WorldSize

    try:
        count = members or WorldSize(size).members
    except ValueError:
        raise typer.BadParameter("--size: tiny | small | medium | large") from None
    state = app_state()
    migrate.upgrade(state.database.bind)
    with state.database.session(platform=True) as session:
        built = prepare_demo(session, now=state.clock(), created_by=actor())
        slug, code, version = built.tenant.slug, built.version.code, built.version.version
        tenant_id = built.tenant.id
    say("core.demo.built", slug=slug, program=code, version=version)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=err_console,
    ) as bar:
        task = bar.add_task("", total=None)
        world = build_demo_world(
            state,
            tenant_id=tenant_id,
            members=count,
            seed=seed,
            step=lambda name: bar.update(
                task, description=t(f"core.demo.step.{name}"), completed=0, total=None
            ),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    say("core.demo.world", folder=str(world.folder), **world.counts)
    for kind, summary in world.imported.items():
        say(
            "core.demo.imported",
            kind=t(f"core.demo.step.{kind}"),
            loaded=summary.loaded,
            skipped=summary.skipped,
            rejected=summary.rejected,
        )
    experience = prepare_demo_experience(state, tenant_id=tenant_id)
    say("core.demo.experience", surveys=experience.surveys, cases=experience.open_cases)
    say("core.demo.next")
    say("core.demo.admin_key", slug=slug)
    typer.echo(built.admin_key)
    if serve:
        _serve(host, port)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Default: MEMBERLAB_HOST (127.0.0.1)."),
    port: int | None = typer.Option(None, help="Default: MEMBERLAB_PORT (8000)."),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="Processes. Default: MEMBERLAB_WORKERS (1)."
    ),
) -> None:
    """Serve the API (after upgrading the schema). / 启动 API 服务。"""
    migrate.upgrade(app_state().database.bind)
    _serve(host, port, workers)


def _serve(host: str | None, port: int | None, workers: int | None = None) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from memberlab.api import create_app

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    # several workers each listen on a socket of their own, which spreads the connections
    # over them (``core.listening``); where that does not work they share uvicorn's one
    reserved = None
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if workers > 1 and listening.SPREADS_CONNECTIONS:
            reserved = listening.listening_socket(host, port)
            port = reserved.getsockname()[1]  # the one the system chose, for port 0
        else:  # uvicorn binds the socket; a port in use is said here, in the user's language
            port = listening.free_port(host, port)  # and port 0 becomes the one uvicorn gets
    except listening.AddressInUse:
        raise Conflict("core.serve.address_in_use", address=address) from None
    except OSError as exc:  # no such address here, a port below 1024, ...
        raise Conflict("core.serve.cannot_listen", address=address, reason=exc) from None
    url = f"http://{host}:{port}"
    say("core.demo.serving", url=url)
    say("core.demo.try", url=url)
    if workers == 1:
        app_ = create_app(app_state(), scheduler=True)
        uvicorn.run(app_, host=host, port=port, log_level="warning")
        return
    # several processes: each builds its app from the settings (the environment)
    served = "memberlab.api:create_served_app"
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": "warning",
        # a worker imports the whole CLI before it answers: give it time on a busy machine
        # (uvicorn's 5 s default restarts slow starters forever)
        "timeout_worker_healthcheck": 60,
    }
    if reserved is None:
        uvicorn.run(served, **options)
        return
    with reserved:  # what uvicorn.run does with several workers, on our sockets
        Multiprocess(uvicorn.Config(served, **options), sockets=[reserved]).run()


def main() -> None:
    """Entry point: domain errors become a message in the chosen language and exit code 1."""
    try:
        app()
    except MemberLabError as exc:
        report_error(exc)
        sys.exit(1)
    except KeyboardInterrupt:
        console.print()
        sys.exit(130)


if __name__ == "__main__":
    main()
