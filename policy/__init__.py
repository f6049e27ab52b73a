"""The project policy layer: AppProject gates, RBAC, sync windows, the combined gate, tokens and audit.

Must not import ``sync`` or ``api``. See README "Python API" for the public surface.
"""
