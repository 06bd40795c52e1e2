"""The `numbra` command as a newcomer meets it: run anywhere, it fails in one line saying what
to do (no traceback unless --debug), never leaves an empty database behind, and its help
names every option as the README's table does."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import typer.main
from alembic.script import ScriptDirectory
from typer.core import TyperGroup
from typer.testing import CliRunner

from cli.main import app
from migrations import alembic_config, upgrade
from tests.support.processes import NUMBRA, free_port, run_cli

NEEDS_A_DATABASE = [
    ["sweep"],
    ["export"],
    ["export", "--filter", "states=AVAILABLE"],
    ["import", "numbers.csv"],
    ["token", "create", "--org", "ROOT", "--role", "ADMIN", "--name", "me"],
    ["worker"],
]
CSV = "number,vendor,country,sku\n+6561000001,Carrier A,SG,SG-FIX\n"


def numbra(args: list[str], cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run `numbra ARGS` in CWD with only the NUMBRA_* SETTINGS given (none from this process)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NUMBRA_")}
    return subprocess.run(
        [NUMBRA, *args],
        cwd=cwd,
        env=env | settings,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], exit_code: int, *words: str) -> str:
    assert done.returncode == exit_code, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr
    return done.stderr


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A directory that is not the project's, holding only a CSV file to import."""
    (tmp_path / "numbers.csv").write_text(CSV)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("args", NEEDS_A_DATABASE, ids=" ".join)
def test_outside_the_project_a_command_says_there_is_no_database_and_creates_none(
    args: list[str], elsewhere: Path
) -> None:
    done = numbra(args, elsewhere, NUMBRA_REDIS_URL="redis://127.0.0.1:1/0")

    assert_one_line(
        done, 2, "No Numbra database at sqlite", "numbra migrate", "NUMBRA_DATABASE_URL"
    )
    assert str(elsewhere / "numbra.db") in done.stderr
    assert done.stdout == ""
    assert sorted(path.name for path in elsewhere.iterdir()) == ["numbers.csv"]


@pytest.mark.slow
def test_a_database_without_numbras_tables_or_behind_its_migrations_is_named(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    behind = f"sqlite+aiosqlite:///{tmp_path}/behind.db"
    scripts = ScriptDirectory.from_config(alembic_config(behind))
    head = scripts.get_current_head()
    assert head is not None
    previous = scripts.get_revision(head).down_revision
    assert isinstance(previous, str)
    upgrade(behind, previous)

    no_tables = numbra(["sweep"], tmp_path, NUMBRA_DATABASE_URL=f"sqlite+aiosqlite:///{empty}")
    old = numbra(["sweep"], tmp_path, NUMBRA_DATABASE_URL=behind)

    assert_one_line(no_tables, 2, "has no Numbra tables", "numbra migrate")
    assert_one_line(old, 2, f"at migration {previous}", f"needs {head}", "numbra migrate")


@pytest.mark.slow
def test_an_unreachable_database_is_one_line_and_debug_shows_the_traceback(
    tmp_path: Path,
) -> None:
    url = f"postgresql+asyncpg://numbra:secret@127.0.0.1:{free_port()}/numbra"

    done = numbra(["sweep"], tmp_path, NUMBRA_DATABASE_URL=url)
    debug = numbra(["--debug", "sweep"], tmp_path, NUMBRA_DATABASE_URL=url)

    line = assert_one_line(done, 1, "Cannot use the database at postgresql+asyncpg://numbra:***@")
    assert "secret" not in line
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("cli")
    url = f"sqlite+aiosqlite:///{workdir}/numbra.db"
    run_cli(["migrate"], url, workdir)
    (workdir / "numbers.csv").write_text(CSV)
    (workdir / "latin-1.csv").write_bytes(
        CSV.encode() + "+6561000002,Café,SG,X\n".encode("latin-1")
    )
    return workdir, url


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "settings", "exit_code", "words"),
    [
        (["export", "--filter", "states=BOGUS"], {}, 2, ["'BOGUS' is not one of"]),
        (["export", "--filter", "states"], {}, 2, ["FIELD=VALUE"]),
        (["import", "missing.csv"], {}, 2, ["missing.csv"]),
        (["import", "."], {}, 2, ["is a directory"]),
        (["import", "numbers.csv", "--org", "nobody"], {}, 1, ["No organization 'nobody'"]),
        (["sweep"], {"NUMBRA_DATABASE_POOL_SIZE": "many"}, 2, ["NUMBRA_DATABASE_POOL_SIZE"]),
        (["serve"], {"NUMBRA_PORT": "99999"}, 2, ["NUMBRA_PORT"]),
        (["sweep"], {"NUMBRA_LOG_LEVEL": "LOUD"}, 2, ["NUMBRA_LOG_LEVEL", "WARNING"]),
        (
            ["token", "create", "--org", "ROOT", "--role", "KING", "--name", "x"],
            {},
            2,
            ["'KING' is not one of ADMIN|OPERATOR|VIEWER"],
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_expected_failures_are_one_line_without_a_traceback(
    migrated: tuple[Path, str],
    args: list[str],
    settings: dict[str, str],
    exit_code: int,
    words: list[str],
) -> None:
    workdir, url = migrated

    done = numbra(args, workdir, NUMBRA_DATABASE_URL=url, **settings)

    assert done.returncode == exit_code, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word.lower() in done.stderr.lower()


@pytest.mark.slow
def test_a_file_that_is_not_utf8_is_reported_as_a_bad_row(migrated: tuple[Path, str]) -> None:
    workdir, url = migrated

    done = numbra(["import", "latin-1.csv", "--dry-run"], workdir, NUMBRA_DATABASE_URL=url)

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "cannot be read as UTF-8" in done.stdout


# Help, read in-process: every screen of every command.


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = [[]]
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            paths += [[name, sub] for sub in command.commands]
        else:
            paths.append([name])
    return paths


def _options(path: list[str]) -> list[str]:
    command = typer.main.get_command(app)
    for name in path:
        assert isinstance(command, TyperGroup)
        command = command.commands[name]
    return [
        opt
        for param in command.params
        if param.param_type_name == "option"
        for opt in [*param.opts, *param.secondary_opts]
    ]


@pytest.mark.parametrize("path", _command_paths(), ids=lambda path: " ".join(path) or "numbra")
def test_help_shows_no_type_tags_and_roles_as_the_api_names_them(path: list[str]) -> None:
    shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})

    assert shown.exit_code == 0, shown.output
    assert not re.search(r"<(bool|str|int|float|list\[\w+\]|path)>", shown.output), shown.output
    assert "admin|operator" not in shown.output
    if path == ["token", "create"]:
        assert "ADMIN|OPERATOR|VIEWER" in shown.output


def test_the_readme_command_table_names_every_option(pytestconfig: pytest.Config) -> None:
    readme = (pytestconfig.rootpath / "README.md").read_text()
    # The first cell of each row of the table (a `\|` inside it is a pipe, not a cell's end).
    first_cells = re.findall(r"^\| (`numbra (?:[^|\\]|\\.)*)\|", readme, re.MULTILINE)

    for path in _command_paths()[1:]:
        name = " ".join(path)
        cells = [cell for cell in first_cells if re.match(rf"`numbra {name}\b", cell)]
        assert cells, f"the README's command table has no row for `numbra {name}`"
        for option in _options(path):
            assert option in cells[0], f"the README's row for `numbra {name}` lacks {option}"
    assert "--debug" in readme
