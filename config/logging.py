"""Logging setup, called only from entry points (the CLI and ``serve``); libraries never configure logging."""

from __future__ import annotations

import json
import logging
import sys

from config.settings import LoggingSettings

__all__ = ["configure_logging"]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def configure_logging(settings: LoggingSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.json_format:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("config", "policy", "sync", "api", "sandbox"):
        logging.getLogger(name).setLevel(settings.level)
    # pycasbin logs every enforce at INFO when enabled; keep it quiet explicitly instead of relying on
    # its process-wide switches.
    logging.getLogger("casbin").setLevel(logging.WARNING)
    logging.getLogger("casbin_policy").setLevel(logging.WARNING)
    logging.getLogger("casbin_enforcer").setLevel(logging.WARNING)
