"""Pure decisions: no kopf, no Kubernetes client, no network, no clock (time is an argument).

Everything here can be tested as a table of cases; see ``tests/unit/``.
"""
