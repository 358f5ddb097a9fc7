"""The client: the :class:`~rollout.Rollout` facade, composed of the write pipeline, the replica
and the ports through which transports, write hooks and check wrappers reach it."""
