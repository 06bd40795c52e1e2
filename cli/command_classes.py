"""What every `numbra` command does around its own work: its help, and its expected failures.

typer (0.29) writes a type tag beside every flag in help (`--dry-run <bool>`, and
`--help <bool>` on every screen); a flag takes no value, so it gets none. Options that
take one name it with a metavar where they are declared (cli/main.py).

An expected failure (cli/failures.py) ends the command with one line on stderr and its
exit code; `numbra --debug COMMAND` lets it raise, traceback and all.
"""

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from cli.failures import explain


def _untag_flags(command: TyperCommand | TyperGroup, ctx: Any) -> None:
    for param in command.get_params(ctx):
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and param.metavar and "|" in param.metavar:
            # An argument whose metavar names its forms (UUID|ID) needs no type tag.
            param.display_type_rich = _no_type  # type: ignore[method-assign]


def _no_type(ctx: Any) -> str:
    return ""


class Command(TyperCommand):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _untag_flags(self, ctx)
        super().format_help(ctx, formatter)


class Group(TyperGroup):
    def format_help(self, ctx: Any, formatter: Any) -> None:
        _untag_flags(self, ctx)
        super().format_help(ctx, formatter)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:
            failure = explain(error)
            if failure is None or ctx.find_root().params.get("debug"):
                raise
            typer.echo(failure.message, err=True)
            raise typer.Exit(failure.exit_code) from error
