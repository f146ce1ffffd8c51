"""The ``sw`` commands (typer): ``login``, ``logout``, ``submit``, ``status``, ``list``.

Output: a person's (rich) on standard output, or, with ``--json``, the platform's JSON as it
is, one document a line (JSON Lines: ``--watch`` prints every change it sees, the last line
is the view it stopped on). Errors go to standard error: the problem document's title,
detail and each field error, or with ``--json`` the problem document itself. The exit
status says what happened (:class:`~singlewindow_cli.api.ExitCode`, listed in ``sw --help``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.live import Live

from singlewindow_cli import config, render
from singlewindow_cli.api import Api, ExitCode, Failure, Json
from singlewindow_cli.watch import Follower, answered, exit_code, settled

EXIT_STATUSES = """\b
Exit status:
  0    done
  1    a watched declaration ended badly (REJECTED, WITHDRAWN, SANCTIONED, RECALLED)
  2    a bad command line
  3    not signed in, or the platform refused the token (401, 403)
  4    not found (404: no such declaration among those the token acts for)
  5    refused (409, 422, other 4xx): the problem document is printed
  6    the platform is unavailable (5xx, 429, no answer)
  130  interrupted (Ctrl-C)"""

HELP = f"""The trader's command line of the Single Window.

Sign in once (sw login), then lodge declarations (sw submit FILE.json), follow them
(sw status ID --watch) and list them (sw list). SW_URL names the platform (default
{config.DEFAULT_URL}); SW_CONFIG_DIR the folder of the token (default ~/.config/singlewindow).
--json prints the platform's JSON, one document a line."""

app = typer.Typer(
    name="sw",
    help=HELP,
    epilog=EXIT_STATUSES,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # the help as written: its lines are a table of exit statuses
    pretty_exceptions_show_locals=False,  # a crash must not print the token
)


@dataclass(frozen=True)
class Options:
    """What every command needs; tests give a transport (httpx.MockTransport) and a sleep."""

    url: str = config.DEFAULT_URL
    token_file: Path = field(default_factory=config.token_path)
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep


JsonOption = Annotated[
    bool, typer.Option("--json", help="print the platform's JSON (one document a line)")
]
WatchOption = Annotated[bool, typer.Option("--watch", "-w", help="follow the status live")]


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", envvar="SW_URL", help=f"the platform's intake [default: {config.DEFAULT_URL}]"
        ),
    ] = None,
) -> None:
    base = ctx.obj if isinstance(ctx.obj, Options) else Options()
    ctx.obj = replace(base, url=url) if url else base


def _options(ctx: typer.Context) -> Options:
    options: Options = ctx.obj
    return options


def _print_json(document: Any, stream: Any = None) -> None:
    print(
        json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        file=stream or sys.stdout,
        flush=True,
    )


@contextmanager
def _exits(json_out: bool) -> Iterator[None]:
    """Turn a failure into its message and exit status (and Ctrl-C into 130)."""
    try:
        yield
    except Failure as failure:
        if json_out:
            _print_json(failure.document(), sys.stderr)
        else:
            Console(stderr=True).print(
                render.problem_text(failure.message, failure.problem, failure.hint)
            )
        raise typer.Exit(failure.code) from None
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None


def _api(options: Options) -> Api:
    token = config.load_token(options.token_file)
    if token is None:
        raise Failure(ExitCode.NOT_SIGNED_IN, "not signed in: sw login")
    return Api(options.url, token, options.transport)


@app.command()
def login(
    ctx: typer.Context,
    token: Annotated[
        str | None,
        typer.Option(
            help="the bearer token (default: read from standard input, hidden when typed)"
        ),
    ] = None,
    dev_uscc: Annotated[
        list[str] | None,
        typer.Option(
            "--dev-uscc",
            help="mint a token from the local development issuer acting for this USCC "
            "(repeat, or comma-separate, for several): local use only",
        ),
    ] = None,
    dev_sub: Annotated[
        str | None, typer.Option("--dev-sub", help="the subject of a --dev-uscc token")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Sign in: keep a token (mode 0600) for the other commands. It is never printed."""
    options = _options(ctx)
    with _exits(json_out):
        if token is not None and dev_uscc:
            raise typer.BadParameter("give --token or --dev-uscc, not both")
        if dev_uscc:
            token = _dev_token(dev_uscc, dev_sub)
        elif token is None:
            token = _read_token()
        identity = config.identity_of(token)
        if identity is None:
            raise typer.BadParameter("this is not a token (a JWT)", param_hint="--token")
        if identity.expired(datetime.now(UTC)):
            raise Failure(ExitCode.NOT_SIGNED_IN, f"the token expired at {identity.expires_at}")
        config.save_token(token, options.token_file)
        if json_out:
            _print_json({**identity.as_json(), "token_file": str(options.token_file)})
            return
        usccs = ", ".join(identity.usccs) or "no USCC"
        until = f" until {identity.expires_at:%Y-%m-%d %H:%M} UTC" if identity.expires_at else ""
        Console().print(
            f"Signed in as [bold]{identity.subject}[/] acting for {usccs}{until} "
            f"(the token is in {options.token_file})",
            highlight=False,
        )


def _dev_token(values: list[str], subject: str | None) -> str:
    """A token of the local development issuer (the project's source is needed)."""
    usccs = [u.strip() for value in values for u in value.split(",") if u.strip()]
    try:
        from services.intake import devissuer
    except ImportError as exc:  # pragma: no cover - sw installed without the platform
        raise typer.BadParameter(
            f"the local development issuer is not installed here ({exc})", param_hint="--dev-uscc"
        ) from None
    try:
        return devissuer.mint(subject or f"local-trader-{usccs[0]}", usccs)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--dev-uscc") from None


def _read_token() -> str:
    if sys.stdin.isatty():
        return str(typer.prompt("Token", hide_input=True)).strip()
    return sys.stdin.readline().strip()


@app.command()
def logout(ctx: typer.Context) -> None:
    """Forget the token kept by sw login."""
    forgot = config.forget_token(_options(ctx).token_file)
    Console(stderr=True).print("Signed out" if forgot else "Not signed in")


@app.command()
def submit(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(dir_okay=False, allow_dash=True, help="the declaration (JSON; - for stdin)"),
    ],
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="send again safely: the same key and file give the same declaration"),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="wait for the first consolidated answer")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Lodge a declaration; print its id (with --watch, then its first answer)."""
    options = _options(ctx)
    try:
        body = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(exc.strerror or str(exc), param_hint=str(file)) from None
    with _exits(json_out), _api(options) as api:
        try:
            accepted = api.submit(body, idempotency_key)
        except Failure as failure:
            if failure.code == ExitCode.UNAVAILABLE:
                failure.hint = (
                    "It may or may not be lodged: send it again with the same --idempotency-key"
                    if idempotency_key
                    else "It may or may not be lodged: send it with --idempotency-key, again "
                    "with the same key until it is answered, to lodge it once"
                )
            raise
        declaration_id = str(accepted["declaration_id"])
        if json_out:
            _print_json(accepted)
        else:
            print(declaration_id, flush=True)  # alone on standard output: ID=$(sw submit f.json)
            if not watch:
                Console(stderr=True).print(
                    f"Lodged. Follow it: sw status {declaration_id} --watch", highlight=False
                )
        if watch:
            first = {**accepted, "declaration_id": declaration_id}
            code = _follow(options, api, first, answered, json_out, just_lodged=True)
            raise typer.Exit(code)


@app.command()
def status(
    ctx: typer.Context,
    declaration_id: Annotated[str, typer.Argument(help="the declaration's id (DEC-...)")],
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="follow it live until nobody but you has anything to do (its next step is "
            "not WAIT); exit 1 if it ended badly",
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Show a declaration as its trader sees it: status, each agency's decision and reasons,
    duties, inspection, what to do next."""
    options = _options(ctx)
    with _exits(json_out), _api(options) as api:
        view = api.status(declaration_id)
        if not watch:
            if json_out:
                _print_json(view)
            else:
                Console().print(render.view_panel(view))
            return
        raise typer.Exit(_follow(options, api, view, settled, json_out))


def _follow(
    options: Options,
    api: Api,
    view: Json,
    stop: Callable[[Json], bool],
    json_out: bool,
    *,
    just_lodged: bool = False,
) -> int:
    """Show ``view`` and each change after it until ``stop``; the exit status of the last."""
    console, err = Console(), Console(stderr=True)

    def retrying(failure: Failure, delay: float) -> None:
        if not json_out:
            err.print(f"{failure.message}: trying again in {delay:.0f} s", highlight=False)

    follower = Follower(api, sleep=options.sleep, on_retry=retrying, pending_ok=just_lodged)
    views = _until(follower, view, stop)
    last = view
    if json_out or not console.is_terminal:  # a line a change: a log, a pipe, a script
        for n, last in enumerate(views):
            if json_out and (n or not just_lodged):  # the acceptance is printed already
                _print_json(last)
            elif not json_out:
                console.print(render.change_line(last))
        if not json_out:
            console.print(render.view_panel(last))
        return exit_code(last)
    with Live(render.view_panel(view), console=console, auto_refresh=False) as live:
        for last in views:
            live.update(render.view_panel(last), refresh=True)
    return exit_code(last)


def _until(follower: Follower, first: Json, stop: Callable[[Json], bool]) -> Iterator[Json]:
    """``first`` and each change after it, up to the first that ``stop`` accepts."""
    yield first
    if stop(first):
        return
    for view in follower.changes(str(first["declaration_id"]), first):
        yield view
        if stop(view):
            return


@app.command("list")
def list_declarations(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="only those in this status")] = None,
    limit: Annotated[int | None, typer.Option(min=1, max=100, help="how many (default 20)")] = None,
    after: Annotated[
        str | None, typer.Option(help="the next page: the cursor printed last")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """List your declarations, newest first."""
    options = _options(ctx)
    with _exits(json_out), _api(options) as api:
        page = api.declarations(status, limit, after)
        if json_out:
            _print_json(page)
            return
        Console().print(render.declarations_table(page))
        if page.get("next"):
            Console(stderr=True).print(f"More: sw list --after {page['next']}", highlight=False)


def main() -> None:
    """The console script's entry point."""
    app()
