"""The operator's side: the HTTP JSON API, the dashboard and ``/metrics`` as one ASGI app.

Needs the ``admin`` extra (``pip install 'rollout[admin]'``).
"""
