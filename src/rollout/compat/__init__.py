"""Old import paths of 0.1: ``rollout.compat.ruby`` is now ``rollout.redis.ruby``, and the
Ruby mirror is private (``Rollout(ruby_compat=True)``). Importing either warns; see
rollout._moved."""
