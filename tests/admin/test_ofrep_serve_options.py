"""``rollout serve``'s access options: ``--eval-token``, ``--eval-flag``, ``--cors-origin`` (and
their variables), refused by name before the store is opened, and in effect once served."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from rollout import Rollout
from rollout.testing.cluster import free_port

from .serve_process import clean_env, rollout, serve


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--eval-flag", "web=chat"], {}, "'web' is not an evaluation token"),
        (["--eval-token", "web=x", "--eval-flag", "web"], {}, "expected NAME=FLAG, got 'web'"),
        (["--token", "web=x", "--eval-token", "web=y"], {}, "'web' is also an admin token's"),
        (["--cors-origin", "https://a.example/app"], {}, "--cors-origin: cors_origins"),
        ([], {"ROLLOUT_CORS_ORIGINS": "a.example"}, "$ROLLOUT_CORS_ORIGINS: cors"),
        ([], {"ROLLOUT_EVAL_TOKEN": "a=x,a=y"}, "$ROLLOUT_EVAL_TOKEN: two tokens are named 'a'"),
        (["--http", "0.0.0.0:0", "--eval-token", "web=weak"], {}, "the token named 'web'"),
    ],
)  # fmt: skip
def test_bad_access_options_are_one_line_and_status_2_and_nothing_is_opened(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = rollout("serve", *args, cwd=tmp_path, env=clean_env(**env))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert message in line
    assert not (tmp_path / "rollout.db").exists()


def test_tokens_and_origins_from_the_environment_are_in_effect(tmp_path: Path) -> None:
    with Rollout(f"sqlite:///{tmp_path / 'rollout.db'}") as seed:
        seed.activate("chat")
    admin, web = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    env = clean_env(
        ROLLOUT_TOKEN=f"ops={admin}",
        ROLLOUT_EVAL_TOKEN=web,  # no name: "evaluate"
        ROLLOUT_CORS_ORIGINS="http://app.example:3000",
    )
    # --code-timeout is taken (its effect: tests/admin/test_code_deadline.py, in process).
    args = ("--http", f"127.0.0.1:{free_port()}", "--code-timeout", "2.5")
    with serve(*args, cwd=tmp_path, env=env, token=web) as served:
        with served.client() as http:
            assert http.get("/api/v1/flags").status_code == 403
            answer = http.post(
                "/ofrep/v1/evaluate/flags/chat",
                json={"context": {"targetingKey": "a"}},
                headers={"Origin": "http://app.example:3000"},
            )
            assert answer.json()["value"] is True
            assert answer.headers["access-control-allow-origin"] == "http://app.example:3000"
        with served.client(admin) as http:
            assert http.get("/api/v1/flags").status_code == 200
