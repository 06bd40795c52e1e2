"""The deployment layout: docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is read with PyYAML (anchors and `<<` merges resolve as Compose resolves
them); each app service's command line is the image's ENTRYPOINT followed by its `command`
(or the image's CMD), and is parsed by the real `numbra` click command, so a misspelt
command or option fails here rather than in a crash-looping container.
"""

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.core
import typer.main
import yaml

import cli.main

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

pytestmark = pytest.mark.slow

BACKING_SERVICES = ("postgres", "redis")
APP_SERVICES = ("migrate", "api", "worker", "scheduler")
LONG_RUNNING_APP_SERVICES = ("api", "worker", "scheduler")

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}
_INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def services() -> dict[str, dict[str, Any]]:
    found = compose().get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services"
    return found


def dockerfile_instruction(keyword: str) -> list[str] | None:
    """The last KEYWORD of the Dockerfile in exec (JSON) form, as Docker applies only the last."""
    value: list[str] | None = None
    for line in DOCKERFILE.read_text().splitlines():
        parts = line.strip().split(None, 1)
        if parts and parts[0].upper() == keyword:
            assert len(parts) == 2, f"empty {keyword} in the Dockerfile"
            parsed = json.loads(parts[1])
            assert isinstance(parsed, list), f"{keyword} must use the exec (JSON list) form"
            value = [str(item) for item in parsed]
    return value


def as_argv(value: object) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    assert isinstance(value, list), f"not a command line: {value!r}"
    return [str(item) for item in value]


def effective_argv(service: dict[str, Any]) -> list[str]:
    """What the container runs: entrypoint (the service's or the image's) + command (or CMD)."""
    if "entrypoint" in service:
        # Compose drops the image's CMD when it overrides the ENTRYPOINT.
        return as_argv(service["entrypoint"]) + as_argv(service.get("command") or [])
    entrypoint = dockerfile_instruction("ENTRYPOINT") or []
    command = service.get("command")
    default = dockerfile_instruction("CMD") or []
    return entrypoint + (as_argv(command) if command is not None else default)


def _find_usage_error() -> type[Exception]:
    # click's UsageError (the base of NoSuchOption, MissingParameter, BadParameter...), from
    # whichever click typer runs on: recent typer vendors its own copy as a private module.
    for base in typer.BadParameter.__mro__:
        if base.__name__ == "UsageError" and issubclass(base, Exception):
            return base
    raise AssertionError("typer.BadParameter does not derive from click's UsageError")


UsageError = _find_usage_error()


def parse_numbra(args: list[str]) -> dict[str, Any]:
    """Resolve `numbra ARGS` to its subcommand and parse the rest exactly as `numbra` would.

    Returns the parsed parameters; raises UsageError (unknown command or option, missing or
    malformed value) where `numbra` would refuse the command line.
    """
    command = typer.main.get_command(cli.main.app)
    name = "numbra"
    rest = list(args)
    while isinstance(command, typer.core.TyperGroup):
        if not rest or rest[0].startswith("-"):
            raise UsageError(f"`{name}` needs a command, got {rest!r}")
        sub_name, *rest = rest
        sub = command.get_command(command.context_class(command, info_name=name), sub_name)
        if sub is None:
            raise UsageError(f"`{name}` has no command {sub_name!r}")
        command, name = sub, sub_name
    return dict(command.make_context(name, rest).params)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as Compose would set it, with `${VAR:-default}` defaults."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw)
    else:
        pairs = {str(key): "" if value is None else str(value) for key, value in raw.items()}

    def default(match: re.Match[str]) -> str:
        return match["arg"] if match["op"] in {"-", ":-"} else ""

    return {key: _INTERPOLATION.sub(default, value) for key, value in pairs.items()}


def test_parse_numbra_rejects_what_numbra_would() -> None:
    assert parse_numbra(["serve", "--workers", "3"])["workers"] == 3
    for bad in (
        ["numbra", "serve"],
        ["serv"],
        ["serve", "--worker", "2"],
        ["serve", "--workers", "two"],
        ["worker", "--concurrency", "2"],
        ["token", "create", "--org", "ROOT"],
        ["token"],
        [],
    ):
        with pytest.raises(UsageError):
            parse_numbra(bad)


def test_services_exist() -> None:
    missing = {*BACKING_SERVICES, *APP_SERVICES} - services().keys()
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"


def test_dockerfile_runs_numbra() -> None:
    assert DOCKERFILE.is_file()
    assert dockerfile_instruction("ENTRYPOINT") == ["numbra"]
    default = dockerfile_instruction("CMD")
    assert default is not None
    assert default[0] == "serve"
    parse_numbra(default)
    user = [
        line.split()[1] for line in DOCKERFILE.read_text().splitlines() if line.startswith("USER")
    ]
    assert user, "the image must switch to a non-root USER"
    assert user[-1].split(":")[0] not in {"root", "0"}, "the image must not run as root"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_builds_from_the_dockerfile(name: str) -> None:
    build = services()[name].get("build")
    assert build is not None, f"{name} does not build the image"
    if isinstance(build, str):
        build = {"context": build}
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    assert context == ROOT, f"{name} builds from {context}, not the repository"
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runs_a_numbra_command(name: str) -> None:
    argv = effective_argv(services()[name])
    assert argv[:1] == ["numbra"], f"{name} runs {argv!r}, not numbra"
    try:
        parse_numbra(argv[1:])
    except UsageError as exc:
        pytest.fail(f"{name}: `{shlex.join(argv)}` is refused: {exc}")


def test_every_numbra_command_line_parses() -> None:
    """Any service, app or not, whose command line is `numbra ...` must be one numbra accepts."""
    all_services = services()
    app_images = {all_services[name].get("image") for name in APP_SERVICES} - {None}
    for name, service in all_services.items():
        if "build" in service or service.get("image") in app_images:
            argv = effective_argv(service)
        else:
            argv = as_argv(service.get("entrypoint") or []) + as_argv(service.get("command") or [])
        if argv[:1] == ["numbra"]:
            try:
                parse_numbra(argv[1:])
            except UsageError as exc:
                pytest.fail(f"{name}: `{shlex.join(argv)}` is refused: {exc}")


def test_migrate_runs_once_before_the_app() -> None:
    all_services = services()
    assert effective_argv(all_services["migrate"])[1:2] == ["migrate"]
    assert str(all_services["migrate"].get("restart", "no")) == "no"
    for name in LONG_RUNNING_APP_SERVICES:
        depends_on = all_services[name].get("depends_on")
        assert isinstance(depends_on, dict), f"{name} must wait on migrate with a condition"
        assert depends_on.get("migrate", {}).get("condition") == "service_completed_successfully"


def test_api_runs_at_least_two_processes() -> None:
    api = services()["api"]
    argv = effective_argv(api)
    assert argv[1:2] == ["serve"]
    workers = parse_numbra(argv[1:])["workers"]
    replicas = (api.get("deploy") or {}).get("replicas", 1)
    assert workers >= 2 or replicas >= 2, f"api runs {workers} worker(s) x {replicas} replica(s)"


@pytest.mark.parametrize("name", ["postgres", "redis", "api"])
def test_healthchecks(name: str) -> None:
    check = services()[name].get("healthcheck")
    assert isinstance(check, dict), f"{name} has no healthcheck"
    assert not check.get("disable", False)
    test = check.get("test")
    assert test, f"{name}'s healthcheck has no test"
    assert not (isinstance(test, list) and test[0] == "NONE")


def test_healthy_conditions_name_services_with_healthchecks() -> None:
    all_services = services()
    for name, service in all_services.items():
        depends_on = service.get("depends_on")
        if not isinstance(depends_on, dict):
            continue
        for dependency, spec in depends_on.items():
            assert dependency in all_services, f"{name} depends on unknown {dependency}"
            if (spec or {}).get("condition") == "service_healthy":
                assert "healthcheck" in all_services[dependency], (
                    f"{name} waits for {dependency} to be healthy, but it has no healthcheck"
                )


def test_api_healthcheck_hits_healthz_without_curl() -> None:
    test = as_argv(services()["api"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(test)
    assert not {"curl", "wget"} & set(test), "python:3.11-slim has neither curl nor wget"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_point_at_the_compose_backends(name: str) -> None:
    all_services = services()
    env = environment(all_services[name])

    database = urlsplit(env.get("NUMBRA_DATABASE_URL", ""))
    assert database.scheme == "postgresql+asyncpg", f"{name}: NUMBRA_DATABASE_URL is {database}"
    assert database.hostname == "postgres", f"{name}: NUMBRA_DATABASE_URL is {database}"
    postgres_env = environment(all_services["postgres"])
    assert database.username == postgres_env.get("POSTGRES_USER")
    assert database.password == postgres_env.get("POSTGRES_PASSWORD")
    assert database.path.lstrip("/") == postgres_env.get("POSTGRES_DB", database.username)

    redis = urlsplit(env.get("NUMBRA_REDIS_URL", ""))
    assert redis.scheme == "redis", f"{name}: NUMBRA_REDIS_URL is {redis}"
    assert redis.hostname == "redis", f"{name}: NUMBRA_REDIS_URL is {redis}"

    assert {"NUMBRA_SMTP_HOST", "NUMBRA_MAIL_FROM"} <= env.keys()


def test_api_publishes_its_port() -> None:
    ports = [str(port) for port in services()["api"].get("ports", [])]
    assert "8000:8000" in ports
    assert "EXPOSE 8000" in DOCKERFILE.read_text()
