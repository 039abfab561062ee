"""MLflow URIs of a space's `tracking` section (`space.uris`): made absolute (trials change directory), with the
artifact folder of a sqlite store beside its database; a scheme MLflow cannot use here names tracking.uri."""

from pathlib import Path

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.search.space.sections import TrackingSection
from tune_hardbatch.search.space.uris import resolve_uri, tracking_uri


def test_no_uri_is_a_sqlite_store_in_the_storage_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri, artifacts = resolve_uri(None, "out")  # a relative storage directory too
    assert uri == f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    assert artifacts == (tmp_path / "out" / "mlartifacts").as_uri()
    assert not (tmp_path / "out").exists()  # nothing created


def test_a_relative_sqlite_path_is_made_absolute_with_mlartifacts_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri, artifacts = resolve_uri("sqlite:///db/m.db", "/elsewhere")  # relative to the current directory
    assert uri == f"sqlite:///{tmp_path / 'db' / 'm.db'}" and uri.startswith("sqlite:////")
    assert artifacts == (tmp_path / "db" / "mlartifacts").as_uri()
    assert resolve_uri(f"sqlite:///{tmp_path}/x.db", "s") == (f"sqlite:///{tmp_path}/x.db",
                                                             (tmp_path / "mlartifacts").as_uri())


def test_a_directory_or_file_uri_becomes_an_absolute_file_uri(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_uri("runs", "s") == ((tmp_path / "runs").as_uri(), None)
    assert resolve_uri("~/runs", "s") == ((tmp_path / "home" / "runs").as_uri(), None)
    assert resolve_uri("file:rel", "s") == ((tmp_path / "rel").as_uri(), None)
    assert resolve_uri(f"file://{tmp_path}/abs", "s") == ((tmp_path / "abs").as_uri(), None)


@pytest.mark.parametrize("uri", ["http://127.0.0.1:5000", "https://mlflow.example.org/", "databricks"])
def test_servers_are_kept_as_given_without_an_artifact_location(uri):
    assert resolve_uri(uri, "s") == (uri, None)


@pytest.mark.parametrize("uri", ["s3://bucket/runs", "ftp://host/x", "postgresql://user@host/db"])
def test_other_schemes_name_tracking_uri(uri):
    with pytest.raises(UserError) as info:
        resolve_uri(uri, "s")
    assert info.value.key == "tracking.uri" and repr(uri) in str(info.value)


def test_tracking_uri_of_a_section(tmp_path):
    assert tracking_uri(TrackingSection(enabled=False, uri="http://h:1"), str(tmp_path)) == (None, None)
    assert tracking_uri(TrackingSection(), str(tmp_path)) == (f"sqlite:///{tmp_path / 'mlflow.db'}",
                                                              (tmp_path / "mlartifacts").as_uri())
    assert tracking_uri(TrackingSection(uri="http://h:1"), str(tmp_path)) == ("http://h:1", None)
    assert Path(tracking_uri(TrackingSection(uri="sqlite:///a.db"), str(tmp_path))[0][len("sqlite:///"):]).is_absolute()
