"""Deployment helpers (work pools, automations) for running Driftline flows on a Prefect server."""
