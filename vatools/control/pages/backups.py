"""Backups: create, list, download, upload, verify, restore, delete (the backup library runs in
the root helper; the files live in the state directory, readable by the web user)."""

from __future__ import annotations

import datetime
import os
import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for

from vatools.control import auth
from vatools.control.protocol import BACKUP_NAME
from vatools.control.pages import config, job_json, jobs

bp = Blueprint("backups", __name__)


def _name_or_404(name: str) -> str:
    if not re.fullmatch(BACKUP_NAME.pattern, name):
        abort(404)
    path = config().backups_dir / name
    if path.is_symlink() or not path.is_file():
        abort(404)
    return name


def listing() -> list[dict[str, Any]]:
    found = []
    directory = config().backups_dir
    if directory.is_dir():
        for path in directory.iterdir():
            if re.fullmatch(BACKUP_NAME.pattern, path.name) and path.is_file():
                st = path.stat()
                found.append({"name": path.name, "size": st.st_size,
                              "made": datetime.datetime.fromtimestamp(st.st_mtime).strftime(
                                  "%Y-%m-%d %H:%M:%S")})
    return sorted(found, key=lambda b: b["made"], reverse=True)


RESTORING = "Restoring "  # the title of a restore job, before the backup's name


def refused_as_foreign(job: dict[str, Any] | None) -> str:
    """The backup the latest job refused to restore because this system did not make it
    (the page then offers the second confirmation), or ""."""
    from vatools.backup.authenticity import FOREIGN

    if (job and job["op"] == "backup-restore" and job["state"] == "failed"
            and FOREIGN in job["error"] and job["title"].startswith(RESTORING)):
        return str(job["title"][len(RESTORING):])
    return ""


@bp.route("/backups")
def index() -> Any:
    job = job_json("backups")
    return render_template("backups.html", backups=listing(), job=job,
                           foreign=refused_as_foreign(job))


@bp.route("/backups/create", methods=["POST"])
def create() -> Any:
    jobs().start("backups", "backup-create", "Creating a backup")
    return redirect(auth.safe_path(request.form.get("back"), url_for("backups.index")))


@bp.route("/backups/upload", methods=["POST"])
def upload() -> Any:
    file = request.files.get("backup")
    name = os.path.basename(file.filename or "") if file else ""
    if file is None or not re.fullmatch(BACKUP_NAME.pattern, name):
        flash(f"Not uploaded: {name!r} is not a backup file name ({BACKUP_NAME.describe}).")
        return redirect(url_for("backups.index"))
    path = config().backups_dir / name
    if os.path.lexists(path):
        flash(f"Not uploaded: a backup named {name} exists already.")
        return redirect(url_for("backups.index"))
    partial = path.with_name(name + ".upload")
    file.save(partial)
    os.replace(partial, path)
    jobs().start("backups", "backup-verify", f"Verifying the uploaded {name}", {"name": name})
    return redirect(url_for("backups.index"))


@bp.route("/backups/<name>/download")
def download(name: str) -> Any:
    return send_file(config().backups_dir / _name_or_404(name), as_attachment=True,
                     mimetype="application/octet-stream")


@bp.route("/backups/<name>/verify", methods=["POST"])
def verify(name: str) -> Any:
    jobs().start("backups", "backup-verify", f"Verifying {name}", {"name": _name_or_404(name)})
    return redirect(url_for("backups.index"))


@bp.route("/backups/<name>/restore", methods=["POST"])
def restore(name: str) -> Any:
    _name_or_404(name)
    if request.form.get("confirm") != "yes":
        flash(f"Not restored: tick the box to confirm replacing the appliance's data with {name}.")
        return redirect(url_for("backups.index"))
    # A backup this system did not make is restored only after a second, explicit box.
    trust_foreign = "yes" if request.form.get("foreign") == "yes" else "no"
    jobs().start("backups", "backup-restore", f"{RESTORING}{name}",
                 {"name": name, "trust_foreign": trust_foreign})
    return redirect(auth.safe_path(request.form.get("back"), url_for("backups.index")))


@bp.route("/backups/<name>/delete", methods=["POST"])
def delete(name: str) -> Any:
    jobs().start("backups", "backup-delete", f"Deleting {name}", {"name": _name_or_404(name)})
    return redirect(url_for("backups.index"))
