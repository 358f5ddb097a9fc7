"""rollout.integrations.flask: the example under Flask's server, and the extension in-process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string, request

from rollout import MemoryStore, Rollout, StoreError
from rollout.integrations import UserFlags
from rollout.integrations.flask import FlaskRollout, current_flags
from rollout.testing.cluster import free_port

from .example_servers import EXAMPLES, Server, check_the_example, example_env, python, seed, serve

# The example, as a real server ------------------------------------------------------------------


@pytest.fixture
def flask_example(tmp_path: Path) -> Iterator[Server]:
    env, store, peer = example_env(tmp_path)
    seed(store)
    port = free_port()
    command = python(
        "-m", "flask", "--app", str(EXAMPLES / "flask_app.py"),
        "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger",
    )  # fmt: skip
    log = tmp_path / "flask.log"
    with serve(
        command, port=port, env=env, cwd=tmp_path, log_path=log, store=store, peer=peer
    ) as s:
        yield s


def test_the_flask_example_follows_flag_changes_per_user(flask_example: Server) -> None:
    check_the_example(flask_example)


# In-process, with Flask's test client ----------------------------------------------------------


def make_app(**config: Any) -> Flask:
    """``GET /?flag=x``: ``<user> <on|off>``; ``GET /page``: a template reading ``flags``."""
    app = Flask(__name__)
    app.config.update({"TESTING": True, "ROLLOUT_STORE": "memory://", **config})

    @app.get("/")
    def whoami() -> str:
        flag = request.args.get("flag", "x")
        return f"{current_flags.user} {'on' if current_flags.active(flag) else 'off'}"

    @app.get("/page")
    def page() -> str:
        return render_template_string(
            '{{ flags.user }} {{ flags.active("x") }} {{ flags["x-y"] }} {{ flags|join(",") }}'
        )

    return app


def header_user() -> str | None:
    return request.headers.get("X-User")


def test_views_and_templates_check_flags_for_the_loaded_user() -> None:
    app = make_app()
    rollout = FlaskRollout(app, user_loader=header_user)
    rollout.flags.activate_user("x", "alice")
    rollout.flags.activate("x-y")
    client = app.test_client()
    assert client.get("/", headers={"X-User": "alice"}).text == "alice on"
    assert client.get("/", headers={"X-User": "bob"}).text == "bob off"
    assert client.get("/").text == "None off"
    assert client.get("/page", headers={"X-User": "alice"}).text == "alice True True x,x-y"
    assert client.get("/page").text == "None False True x-y"


def test_the_user_is_loaded_once_per_request() -> None:
    calls: list[str] = []

    def load() -> str:
        calls.append(request.path)
        return "alice"

    app = make_app()
    FlaskRollout(app, user_loader=load)
    client = app.test_client()
    client.get("/page")  # the template checks four times
    client.get("/")
    assert calls == ["/page", "/"]


def test_requests_inside_one_app_context_each_get_their_own_user() -> None:
    app = make_app()
    FlaskRollout(app, user_loader=header_user).flags.activate_user("x", "alice")
    client = app.test_client()
    with app.app_context():  # the requests below share this context and its `g`
        assert client.get("/", headers={"X-User": "alice"}).text == "alice on"
        assert client.get("/", headers={"X-User": "bob"}).text == "bob off"


def test_user_loader_as_a_decorator_and_init_app_later() -> None:
    rollout = FlaskRollout()

    @rollout.user_loader
    def load() -> str:
        return "7"

    app = make_app(ROLLOUT_OPTIONS={"defaults": {"x": False}})
    rollout.init_app(app)
    with app.app_context():
        rollout.flags.activate_user("x", 7)
    assert app.test_client().get("/").text == "7 on"


def test_without_flask_login_the_default_user_is_anonymous(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "flask_login", None)  # `import flask_login` now fails
    app = make_app()
    FlaskRollout(app).flags.activate_user("x", "alice")
    assert app.test_client().get("/").text == "None off"


def test_the_default_user_is_flask_logins_current_user() -> None:
    flask_login = pytest.importorskip("flask_login")

    class User:  # what flask_login asks of a user class (UserMixin gives the same)
        is_authenticated = is_active = True
        is_anonymous = False

        def __init__(self, id: str) -> None:
            self.id = id

        def get_id(self) -> str:
            return self.id

    app = make_app(SECRET_KEY="test")
    login = flask_login.LoginManager(app)
    login.user_loader(User)

    @app.post("/login/<name>")
    def log_in(name: str) -> str:
        flask_login.login_user(User(name))
        return "ok"

    FlaskRollout(app).flags.activate_user("x", "alice")
    client = app.test_client()
    assert client.get("/").text == "None off"  # not logged in: anonymous
    client.post("/login/alice")
    assert client.get("/").text.endswith(" on")


def test_each_app_has_its_own_rollout_made_on_first_use() -> None:
    store = MemoryStore()
    first, second = make_app(ROLLOUT_STORE=store), make_app()
    rollout = FlaskRollout(user_loader=header_user)
    rollout.init_app(first)
    rollout.init_app(second)
    with first.app_context():
        rollout.flags.activate("x")
        flags = rollout.flags
        assert flags is rollout.flags
    with second.app_context():
        assert rollout.flags is not flags
        assert not rollout.flags.active("x")
    with Rollout(store) as other:  # the first app's Rollout wrote to the store it was given
        assert other.active("x")
    assert first.test_client().get("/").text == "None on"
    assert second.test_client().get("/").text == "None off"


def test_close_closes_the_apps_rollout_and_the_next_use_opens_another(tmp_path: Path) -> None:
    app = make_app(ROLLOUT_STORE=f"sqlite:///{tmp_path / 'flags.db'}")
    rollout = FlaskRollout(app)
    with app.app_context():
        flags = rollout.flags
        flags.activate("x")
    rollout.close(app)
    assert flags.stats()["closed"] is True
    assert app.test_client().get("/").text == "None on"  # reopened from the file


def test_a_store_that_cannot_be_opened_fails_on_first_use(tmp_path: Path) -> None:
    (tmp_path / "a-directory.db").mkdir()
    app = make_app(ROLLOUT_STORE=f"sqlite:///{tmp_path / 'a-directory.db'}")
    FlaskRollout(app)  # init_app opens nothing: `flask` commands and the reloader stay fast
    with pytest.raises(StoreError, match="a-directory"):
        app.test_client().get("/")


def test_bad_configuration_is_refused_by_init_app() -> None:
    app = Flask(__name__)
    with pytest.raises(RuntimeError, match="ROLLOUT_STORE"):
        FlaskRollout(app)
    app.config["ROLLOUT_STORE"] = "memory://"
    app.config["ROLLOUT_OPTIONS"] = {"lisen": "127.0.0.1:0"}
    with pytest.raises(TypeError, match=r"ROLLOUT_OPTIONS.*'lisen'"):
        FlaskRollout(app)
    app.config["ROLLOUT_OPTIONS"] = ["listen"]
    with pytest.raises(TypeError, match="must be a mapping"):
        FlaskRollout(app)
    with pytest.raises(TypeError, match="user_loader must be callable"):
        FlaskRollout(user_loader="alice")  # type: ignore[arg-type]


def test_current_flags_needs_an_app_that_was_initialised() -> None:
    app = make_app()
    with pytest.raises(RuntimeError, match="application context"):
        current_flags.active("x")
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        current_flags.active("x")


def test_outside_an_app_context_flags_is_the_rollout_of_the_only_app() -> None:
    rollout = FlaskRollout()
    first = make_app()
    rollout.init_app(first)
    rollout.flags.activate("x")  # setup code at import time: no app context yet
    assert first.test_client().get("/").text == "None on"
    second = make_app()
    rollout.init_app(second)
    with pytest.raises(RuntimeError, match="serves 2 apps"):
        rollout.flags.activate("x")
    with first.app_context():
        assert rollout.flags.active("x")


def test_outside_a_request_current_flags_has_the_loaders_user() -> None:
    app = make_app()
    FlaskRollout(app)  # the default loader: no request, so no user
    with app.app_context():
        assert isinstance(current_flags._get_current_object(), UserFlags)  # type: ignore[attr-defined]
        assert current_flags.user is None
