"""Flask with Rollout: a page and an endpoint gated by flags for the current user.

    flask --app examples/flask_app.py run
    rollout --store memory:// --peers 127.0.0.1:7946 activate-user new_checkout alice
    curl -H 'X-User: alice' http://127.0.0.1:5000/

The user is whoever the X-User header names (a login proxy in front would set it); without
``user_loader`` the extension uses flask_login's ``current_user``.
"""

from __future__ import annotations

import os

from flask import Flask, abort, render_template_string, request

from rollout.integrations.flask import FlaskRollout, current_flags

app = Flask(__name__)
app.config["ROLLOUT_STORE"] = os.environ.get("ROLLOUT_STORE", "sqlite:///flags.db")
app.config["ROLLOUT_OPTIONS"] = {
    # Where the CLI and other processes send flag changes (rollout --peers 127.0.0.1:7946).
    "listen": os.environ.get("ROLLOUT_LISTEN", "127.0.0.1:7946"),
}
rollout = FlaskRollout(app, user_loader=lambda: request.headers.get("X-User"))

HOME = """<!doctype html>
<title>Shop</title>
<p>Hello {{ request.headers.get("X-User", "stranger") }}.</p>
{% if flags.active("new_checkout") %}
  <p id="checkout">new checkout</p>
{% else %}
  <p id="checkout">old checkout</p>
{% endif %}
{% if flags["holiday-banner"] %}<p id="banner">holiday sale</p>{% endif %}
"""


@app.get("/")
def home() -> str:
    return render_template_string(HOME)


@app.get("/beta")
def beta() -> str:
    if not current_flags.active("beta"):
        abort(404)
    return f"beta for {current_flags.user}"
