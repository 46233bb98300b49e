"""The interface's pages, one blueprint per page (menu order: dashboard, updates, backups,
services, settings; account holds login, logout and the password change)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from vatools.control.client import HelperClient
from vatools.control.config import Config
from vatools.control.jobs import Jobs


def config() -> Config:
    value: Config = current_app.extensions["control.config"]
    return value


def client() -> HelperClient:
    value: HelperClient = current_app.extensions["control.client"]
    return value


def jobs() -> Jobs:
    value: Jobs = current_app.extensions["control.jobs"]
    return value


def job_json(kind: str) -> Any:
    job = jobs().latest(kind)
    return job.to_json() if job else None
