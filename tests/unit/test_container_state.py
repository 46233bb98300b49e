"""The deployment history (rpm-ostree-like current/previous), its file, and image checks."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.support.oci import derive, tiny_layout
from vatools.container.image import read_image
from vatools.container.state import KEEP_IMAGES, History, Store
from vatools.errors import VatoolsError


def _history(*statuses: str) -> History:
    history = History("wiki")
    for i, status in enumerate(statuses):
        deployment = history.add(image=f"/i{i}.oci", digest=f"sha256:{i}", version=f"1.{i}", config={},
                                 note="update")
        if status == "current":
            history.make_current(deployment)
        else:
            deployment.status = status
    return history


def test_a_new_current_retires_the_old_one() -> None:
    history = _history("current")
    second = history.add(image="/b", digest="sha256:b", version="2", config={}, note="update")
    history.make_current(second)
    assert [d.status for d in history.deployments] == ["retired", "current"]
    assert history.current is second


def test_rollback_goes_to_the_last_one_that_served_not_a_failed_one() -> None:
    history = _history("current")
    history.make_current(history.add(image="/b", digest="sha256:b", version="2", config={}, note="update"))
    history.add(image="/c", digest="sha256:c", version="3", config={}, note="update").status = "failed"
    assert history.previous().id == 1


def test_a_second_rollback_returns_where_the_first_came_from() -> None:
    history = _history("current")
    history.make_current(history.add(image="/b", digest="sha256:b", version="2", config={}, note="update"))
    history.make_current(history.previous())  # rollback to 1
    assert history.current.id == 1
    assert history.previous().id == 2


def test_no_previous_deployment_is_an_error() -> None:
    with pytest.raises(VatoolsError, match="no previous deployment"):
        _history("current").previous()
    with pytest.raises(VatoolsError, match="no current deployment"):
        History("wiki").current


def test_images_kept_are_the_current_and_the_latest_that_served() -> None:
    history = _history("current")
    for i in range(5):
        history.make_current(history.add(image=f"/n{i}", digest=f"sha256:n{i}", version="x", config={},
                                         note="update"))
    history.add(image="/f", digest="sha256:f", version="x", config={}, note="update").status = "failed"
    assert history.kept_images() == {6, 5, 4}
    assert len(history.kept_images()) == KEEP_IMAGES


def test_the_store_saves_and_reads_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "state")
    history = _history("current", "failed")
    with store.locked("wiki"):
        store.save(history)
    assert store.names() == ["wiki"]
    again = store.load("wiki")
    assert again == history
    assert json.loads((tmp_path / "state/wiki/history.json").read_text())["current"] == 1
    assert not (tmp_path / "state/wiki/history.tmp").exists()
    store.remove("wiki")
    assert store.names() == [] and not (tmp_path / "state/wiki").exists()


def test_a_refused_first_deploy_leaves_no_state_directory(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RuntimeError):
        with store.locked("wiki"):
            raise RuntimeError("refused")
    assert list(tmp_path.iterdir()) == []


def test_a_second_command_on_the_same_name_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.locked("wiki"):
        with pytest.raises(VatoolsError, match="another vatools container command"):
            with store.locked("wiki"):
                pass


def test_damaged_or_missing_state_is_explained(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(VatoolsError, match="no container named wiki is deployed"):
        store.load("wiki")
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki/history.json").write_text("{}")
    with pytest.raises(VatoolsError, match="damaged state"):
        store.load("wiki")


def test_an_image_layout_is_read_and_its_digests_checked(tmp_path: Path) -> None:
    digest = tiny_layout(tmp_path / "one", "1.0", "hello")
    image = read_image(tmp_path / "one")
    assert (image.digest, image.version, image.title) == (digest, "1.0", "tiny")
    assert image.volumes == ("/data",) and image.exposed == ("80/tcp",)
    assert image.reference == f"oci:{tmp_path / 'one'}:1.0"
    derived = derive(tmp_path / "one", tmp_path / "two", "2.0", {"www/index.html": "v2"})
    assert read_image(tmp_path / "two").digest == derived != digest
    # An archive of the layout reads the same.
    with tarfile.open(tmp_path / "two.tar", "w") as tar:
        tar.add(tmp_path / "two", arcname=".")
    archived = read_image(tmp_path / "two.tar")
    assert archived.digest == derived and archived.reference.startswith("oci-archive:")


def test_a_damaged_layout_is_refused(tmp_path: Path) -> None:
    digest = tiny_layout(tmp_path / "one", "1.0", "hello")
    manifest = json.loads((tmp_path / "one/blobs/sha256" / digest.split(":")[1]).read_text())
    config = tmp_path / "one/blobs/sha256" / manifest["config"]["digest"].split(":")[1]
    config.write_text(config.read_text().replace("1.0", "6.6"))
    with pytest.raises(VatoolsError, match=r"blob sha256:\w+ has the digest sha256:\w+: the layout is damaged"):
        read_image(tmp_path / "one")
    layer = tmp_path / "one/blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
    layer.unlink()
    with pytest.raises(VatoolsError):
        read_image(tmp_path / "one")
    with pytest.raises(VatoolsError, match="no such directory or file"):
        read_image(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VatoolsError, match="no index.json"):
        read_image(tmp_path / "empty")
