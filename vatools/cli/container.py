"""`vatools container ...`: appliances as podman containers, updated atomically and rolled back."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from vatools.cli import common

F = TypeVar("F", bound=Callable[..., Any])

DESCRIPTION = """\
Run appliance images (`vatools image build --format oci`) as podman containers, the
rpm-ostree way: each deploy, update and rollback is a deployment in a history kept under
the state directory (default /var/lib/vatools/containers/NAME), with its image's digest
and its configuration. A new deployment becomes current only when its HTTP health probe
passes; otherwise the old one keeps serving. Data lives in named podman volumes
(vatools-NAME-*) that survive update, rollback and remove. With systemd running, the
serving container is the unit vatools-container-NAME.service; without it (a container,
CI), podman runs it detached and the command says so. See vatools(1)."""

NAME_ARG = {"metavar": "NAME", "cls": common.Arg, "help": "the deployment's name (a-z, 0-9, _ . -)"}


def _state_dir_option(func: F) -> F:
    return click.option("--state-dir", type=common.DIR, metavar="DIR",
                        default="/var/lib/vatools/containers", show_default=False,
                        help="keep the deployments' state here (default /var/lib/vatools/containers)")(func)


def _containers(state_dir: Path) -> Any:
    from vatools.container.deploy import Containers

    return Containers(Path(state_dir), say=lambda text: click.echo(f"vatools container: {text}", err=True))


def _print_outcome(outcome: Any) -> None:
    if common.settings().json:
        json.dump(outcome.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(outcome.message)


@common.group("container", DESCRIPTION,
              short_help="run appliance images as containers: deploy, update, roll back")
@common.debug_option()
def container() -> None:
    pass


@container.command("deploy", help="""\
Deploy NAME from the JSON configuration CONFIG (see CONTAINER CONFIGURATION in vatools(1)):
load and verify the image, create the volumes, start the container and wait until the
health probe passes. Everything is checked first; a deployment that does not become
healthy is removed again (exit 4).""", short_help="deploy a container from a configuration")
@click.argument("name", **NAME_ARG)
@click.argument("config", metavar="CONFIG", type=common.FILE, cls=common.Arg,
                help="the JSON configuration file")
@click.option("--image", type=common.FILE, metavar="PATH",
              help="the OCI layout directory or archive (instead of the configuration's image)")
@_state_dir_option
@common.json_option("print the result as JSON")
@common.debug_option()
def deploy_handler(name: str, config: Path, image: Path | None, state_dir: Path) -> int:
    _print_outcome(_containers(state_dir).deploy(name, Path(config), image))
    return 0


@container.command("update", help="""\
Update NAME to a new image (--image) or configuration (--config): the image is loaded and
its digest checked, then started beside the serving container on spare ports (strategy
"beside") or in its place ("in-place") and probed. It becomes current only when healthy;
otherwise the old deployment keeps serving, or is started again, and the update fails
with exit status 4.""", short_help="update to a new image or configuration, atomically")
@click.argument("name", **NAME_ARG)
@click.option("--image", type=common.FILE, metavar="PATH", help="the new OCI layout directory or archive")
@click.option("--config", "config_path", type=common.FILE, metavar="FILE",
              help="a new JSON configuration (default: the current deployment's)")
@_state_dir_option
@common.json_option("print the result as JSON")
@common.debug_option()
def update_handler(name: str, image: Path | None, config_path: Path | None, state_dir: Path) -> int:
    _print_outcome(_containers(state_dir).update(name, image, config_path))
    return 0


@container.command("rollback", help="""\
Return NAME to its previous deployment (its image and configuration), health-checked like
an update. A second rollback returns to where the first one came from.""",
                   short_help="return to the previous deployment")
@click.argument("name", **NAME_ARG)
@_state_dir_option
@common.json_option("print the result as JSON")
@common.debug_option()
def rollback_handler(name: str, state_dir: Path) -> int:
    _print_outcome(_containers(state_dir).rollback(name))
    return 0


@container.command("list", help="List the deployed containers: current deployment, version, image"
                   " digest, ports and health (probed now).", short_help="list deployed containers")
@_state_dir_option
@common.json_option("print the list as JSON, with every deployment")
@common.debug_option()
def list_handler(state_dir: Path) -> int:
    containers = _containers(state_dir)
    entries = [containers.describe(name) for name in containers.names()]
    if common.settings().json:
        json.dump(entries, sys.stdout, indent=2)
        print()
        return 0
    if not entries:
        print("no containers deployed")
    for entry in entries:
        print(f"{entry['name']:20} deployment {entry.get('current', '-')!s:4} {entry.get('version', ''):16}"
              f" {entry.get('health', '')}  {' '.join(entry.get('ports', []))}")
    return 0


@container.command("status", help="Show NAME's deployment history: each deployment's image, digest,"
                   " version and health; the current one marked.", short_help="show a deployment history")
@click.argument("name", **NAME_ARG)
@_state_dir_option
@common.json_option("print the status as JSON")
@common.debug_option()
def status_handler(name: str, state_dir: Path) -> int:
    entry = _containers(state_dir).describe(name)
    if common.settings().json:
        json.dump(entry, sys.stdout, indent=2)
        print()
        return 0
    print(f"{entry['name']}: container {entry['container']}"
          f" {'running' if entry['running'] else 'not running'}, {entry.get('health', '')}")
    for d in entry["deployments"]:
        mark = "*" if d["id"] == entry.get("current") else " "
        print(f"{mark} {d['id']:3} {d['status']:8} {d['version']:16} {d['digest'][:19]}  {d['created']}"
              f"  {d['note']}  {d['health']}")
    return 0


@container.command("remove", help="""\
Stop and remove NAME: its container, systemd unit, images and state. Its volumes are kept
(a later deploy of NAME finds its data) unless --purge is given.""",
                   short_help="remove a deployment (volumes kept unless --purge)")
@click.argument("name", **NAME_ARG)
@click.option("--purge", is_flag=True, help="remove the volumes too: the data is lost")
@_state_dir_option
@common.debug_option()
def remove_handler(name: str, purge: bool, state_dir: Path) -> int:
    for thing in _containers(state_dir).remove(name, purge):
        print(f"removed {thing}")
    return 0
