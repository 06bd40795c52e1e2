"""`numbra token list` and `numbra token revoke`: the subtree's tokens without their
secrets, and a revocation the API honours from the next request on."""

import subprocess
import uuid
from pathlib import Path

import pytest

from cli.database import FIRST_TOKEN_NAME
from domain.access import hash_token
from tests.support.processes import NUMBRA, environment, run_cli

pytestmark = pytest.mark.slow


def test_tokens_are_listed_without_secrets_and_revoked_from_the_command_line(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/numbra.db"
    root_token = run_cli(["migrate"], url, tmp_path).splitlines()[-1]
    made = run_cli(
        ["token", "create", "--org", "ROOT", "--role", "viewer", "--name", "partner feed"],
        url,
        tmp_path,
    ).splitlines()[-1]

    listed = run_cli(["token", "list"], url, tmp_path)
    header, *lines = [line.split("\t") for line in listed.splitlines()]
    assert header == [
        "uuid",
        "name",
        "role",
        "organization",
        "created",
        "expires",
        "last used",
        "revoked",
    ]
    assert sorted((line[1], line[2], line[3], line[7]) for line in lines) == sorted(
        [(FIRST_TOKEN_NAME, "ADMIN", "Provider", "-"), ("partner feed", "VIEWER", "Provider", "-")]
    )
    for secret in (made, root_token, hash_token(made), hash_token(root_token)):
        assert secret not in listed
    [partner] = [line for line in lines if line[1] == "partner feed"]

    revoked = run_cli(["token", "revoke", partner[0]], url, tmp_path)
    assert revoked.strip() == f"Revoked 'partner feed' ({partner[0]})."
    assert "partner feed" not in run_cli(["token", "list"], url, tmp_path)
    [again] = [
        line.split("\t")
        for line in run_cli(["token", "list", "--revoked"], url, tmp_path).splitlines()
        if "partner feed" in line
    ]
    assert again[7] != "-"

    unknown = subprocess.run(
        [NUMBRA, "token", "revoke", str(uuid.uuid4())],
        env=environment(url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "Not revoked: no such token."
