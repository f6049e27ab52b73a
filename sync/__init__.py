"""The sync core: Application model, Git sources, rendering, cluster access, diff, health, plan, engine.

Must not import ``policy`` or ``api``: the gate and the event sink are injected by ``api``.
"""
