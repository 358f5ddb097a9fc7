"""The real Python OFREP provider (``openfeature-provider-ofrep``) through the OpenFeature SDK,
against ``rollout serve`` as a process: what a Python service in another process or on another
host would do to read this server's flags."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from rollout import Rollout
from rollout.testing.cluster import free_port
from rollout.testing.eventually import eventually

from .serve_process import Served, clean_env, rollout, serve

ADMIN = secrets.token_urlsafe(32)
WEB = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    folder = tmp_path_factory.mktemp("ofrep")
    with Rollout(f"sqlite:///{folder / 'rollout.db'}") as seed:
        seed.activate("chat")
        seed.activate_users("vip", ["alice"])
        seed.activate_users("color", ["alice"])
        seed.set_feature_data("color", {"value": "blue", "off_value": "grey", "team": "web"})
        seed.activate_users("limit", ["alice"])
        seed.set_feature_data("limit", {"value": 10})
        seed.activate_users("ratio", ["alice"])
        seed.set_feature_data("ratio", {"value": 0.25, "off_value": 0.0})
        seed.activate_users("layout", ["alice"])
        seed.set_feature_data("layout", {"value": {"columns": 2}})
        seed.activate_percentage("half", 50)
    args = ("--http", f"127.0.0.1:{free_port()}", "--token", f"ops={ADMIN}")
    with serve(*args, "--eval-token", f"web={WEB}", cwd=folder, token=ADMIN) as server:
        yield server, folder


def client_for(server: Served, token: str) -> OpenFeatureClient:
    provider = OFREPProvider(
        server.url.rstrip("/"), headers_factory=lambda: {"Authorization": f"Bearer {token}"}
    )
    domain = f"ofrep-{secrets.token_hex(4)}"
    api.set_provider(provider, domain)
    return api.get_client(domain)


ALICE = EvaluationContext("alice")
BOB = EvaluationContext("bob", {"plan": "pro"})


def test_booleans_with_their_reasons(served: tuple[Served, Path]) -> None:
    client = client_for(served[0], WEB)
    chat = client.get_boolean_details("chat", False, BOB)
    assert (chat.value, chat.reason, chat.variant) == (True, Reason.STATIC, "on")
    vip = client.get_boolean_details("vip", False, ALICE)
    assert (vip.value, vip.reason) == (True, Reason.TARGETING_MATCH)
    assert client.get_boolean_details("vip", True, BOB).value is False


def test_typed_values_on_and_off_and_the_code_default(served: tuple[Served, Path]) -> None:
    client = client_for(served[0], WEB)
    on = client.get_string_details("color", "red", ALICE)
    assert (on.value, on.variant) == ("blue", "on")
    assert (on.flag_metadata["team"], on.flag_metadata["rule"]) == ("web", "listed")
    assert client.get_string_value("color", "red", BOB) == "grey"
    assert client.get_integer_value("limit", 1, ALICE) == 10
    assert client.get_integer_value("limit", 1, BOB) == 1  # off, no off_value: the default
    assert client.get_float_value("ratio", 1.0, ALICE) == 0.25
    assert client.get_object_value("layout", {}, ALICE) == {"columns": 2}


def test_errors_reach_the_application_as_openfeature_errors(served: tuple[Served, Path]) -> None:
    client = client_for(served[0], WEB)
    missing = client.get_boolean_details("missing", True, ALICE)
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    no_key = client.get_boolean_details("half", False, EvaluationContext())
    assert no_key.error_code == ErrorCode.TARGETING_KEY_MISSING
    wrong_type = client.get_integer_details("color", 5, ALICE)
    assert (wrong_type.value, wrong_type.error_code) == (5, ErrorCode.TYPE_MISMATCH)
    stranger = client_for(served[0], "not-a-token").get_boolean_details("chat", False, ALICE)
    assert (stranger.value, stranger.error_code) == (False, ErrorCode.GENERAL)


def test_a_change_made_with_the_cli_is_what_the_next_evaluation_sees(
    served: tuple[Served, Path],
) -> None:
    server, folder = served
    client = client_for(server, WEB)
    assert client.get_boolean_value("vip", False, BOB) is False
    store = f"sqlite:///{folder / 'rollout.db'}"
    done = rollout("--store", store, "activate-user", "vip", "bob", cwd=folder, env=clean_env())
    assert done.returncode == 0, done.stderr
    eventually(lambda: client.get_boolean_value("vip", False, BOB) is True)
