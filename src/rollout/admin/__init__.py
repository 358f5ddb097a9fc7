"""The operator's side: the HTTP JSON API, the dashboard and ``/metrics`` as one ASGI app.

Needs the ``admin`` extra (``pip install 'rollout[admin]'``)::

    from rollout import Rollout
    from rollout.admin import create_app

    app = create_app(Rollout("sqlite:///flags.db"), token="s3cret")   # serve with uvicorn
"""

from ._app import create_app
from ._auth import Auth

__all__ = ["Auth", "create_app"]
