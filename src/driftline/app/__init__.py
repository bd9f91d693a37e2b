"""The shell users touch: the ``driftline`` command (``cli``; its entry point ``forkserver`` runs it in a warm
parent that ``warm`` finds, when one runs), the local Prefect API a command starts (``local_api``),
``doctor``, the configuration reference (``config_doc``) and the signed-webhook relay (``webhook``, its
durable ``outbox`` and the Prefect ``events_api`` it delivers to).

The shell may import everything below it (flows, tasks, adapters, the core); nothing imports the shell.
"""
