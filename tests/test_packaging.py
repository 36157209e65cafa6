"""
The release files as users get them: the wheel and sdist built from this tree, checked the way PyPI checks
them, and the wheel installed into a clean virtualenv in which Airflow must discover the provider.

Both Airflow environments run this module: each builds the files (seconds, from uv's cache) and installs the
wheel with its own Airflow version and constraints, so the provider info is validated against the schema
that each Airflow version ships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import pytest

import airflow_provider_wavy
from tests.conftest import REPO_ROOT

if TYPE_CHECKING:
    from email.message import Message

BIN_DIR = Path(sys.executable).parent
UV = BIN_DIR / "uv"
PACKAGE = "airflow_provider_wavy"
DIST_NAME = "airflow-provider-wavy"
LICENSE_FILES = ("LICENSE", "NOTICE")
#: What a source distribution holds: the package, what documents and tests it, and the scripts and
#: constraints that run those tests (README's Development section). Nothing else, except the .gitignore
#: that hatchling always adds: building the wheel from the sdist needs it to leave out the same files.
SDIST_TOP_LEVEL = {
    PACKAGE, "tests", "docs", "example_dags", "benchmarks", "scripts", "constraints",
    "README.md", "CHANGELOG.md", "LICENSE", "NOTICE", "pyproject.toml", "PKG-INFO", ".gitignore",
}  # fmt: skip
SDIST_DIRS = sorted(name for name in SDIST_TOP_LEVEL if (REPO_ROOT / name).is_dir())
#: Files of these kinds in the tree's directories must all reach the sdist.
SOURCE_SUFFIXES = {".py", ".md", ".sh", ".txt", ".typed"}
#: Path parts that never belong in a release file: tool and VCS state, caches, build output.
STRAY_PARTS = {"__pycache__", "dist", "build", "node_modules"}
STRAY_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".log", ".tmp", ".orig", ".rej")
REPO_URL = "https://github.com/airflow-provider-wavy/airflow-provider-wavy"
#: The daily example as the wheel carries it for ``python -m airflow_provider_wavy.demo``.
DEMO_DAG = f"{PACKAGE}/_demo/example_wavy_daily.py"
#: Airflow's own schema of what get_provider_info() returns, shipped inside the apache-airflow package.
SCHEMA_FILE = "provider_info.schema.json"


def _env(**extra: str) -> dict[str, str]:
    """Return this environment without anything that would point a tool at the test's own venv or Airflow."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PYTHON", "UV_PROJECT_ENVIRONMENT")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("AIRFLOW")}
    env.update(PYTHONWARNINGS="ignore", **extra)
    return env


def _run(command: list[str | Path], *, timeout: float, cwd: Path | None = None) -> str:
    args = [str(part) for part in command]
    result = subprocess.run(
        args, capture_output=True, text=True, check=False, timeout=timeout, cwd=cwd, env=_env()
    )
    assert result.returncode == 0, f"{args[:4]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _stray(path: str) -> bool:
    if path == ".gitignore":
        return False
    parts = PurePosixPath(path).parts
    return any(p.startswith(".") or p in STRAY_PARTS or p.endswith(STRAY_SUFFIXES) for p in parts)


@dataclass(frozen=True)
class Dists:
    """The built release files and their member paths (the sdist's without its top folder)."""

    wheel: Path
    sdist: Path
    wheel_names: frozenset[str]
    sdist_names: frozenset[str]

    def wheel_metadata(self) -> Message:
        with zipfile.ZipFile(self.wheel) as archive:
            text = archive.read(f"{PACKAGE}-{airflow_provider_wavy.__version__}.dist-info/METADATA")
        return HeaderParser().parsestr(text.decode())

    def sdist_read(self, name: str) -> bytes:
        with tarfile.open(self.sdist) as archive:
            member = archive.extractfile(f"{PACKAGE}-{airflow_provider_wavy.__version__}/{name}")
            assert member is not None, name
            return member.read()


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """Build the sdist, then the wheel from it, as ``uv build`` does for a release."""
    assert UV.exists(), f"{UV} is missing: set the environment up with scripts/_env.sh"
    out = tmp_path_factory.mktemp("dist")
    _run([UV, "build", "--quiet", "--python", sys.executable, "--out-dir", out, REPO_ROOT], timeout=240)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        wheel_names = frozenset(archive.namelist())
    with tarfile.open(sdist) as archive:
        sdist_names = frozenset(
            str(PurePosixPath(*PurePosixPath(m.name).parts[1:])) for m in archive.getmembers() if m.isfile()
        )
    return Dists(wheel, sdist, wheel_names, sdist_names)


def _tree_files(directory: str) -> set[str]:
    """Files of the source kinds under a directory of the working tree, as sdist member paths."""
    return {
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / directory).rglob("*")
        if path.is_file()
        and path.suffix in SOURCE_SUFFIXES
        and not _stray(path.relative_to(REPO_ROOT).as_posix())
    }


@pytest.mark.slow
def test_twine_check_strict_passes_both_files(dists: Dists) -> None:
    output = _run([sys.executable, "-m", "twine", "check", "--strict", dists.wheel, dists.sdist], timeout=120)
    assert output.count("PASSED") == 2, output


@pytest.mark.slow
def test_wheel_holds_the_typed_package_and_the_license_files(dists: Dists) -> None:
    dist_info = f"{PACKAGE}-{airflow_provider_wavy.__version__}.dist-info"
    package_files = {name for name in dists.wheel_names if name.startswith(f"{PACKAGE}/")}
    assert package_files == _tree_files(PACKAGE) | {DEMO_DAG}
    assert f"{PACKAGE}/py.typed" in package_files
    assert {
        name for name in dists.wheel_names if not name.startswith((f"{PACKAGE}/", f"{dist_info}/"))
    } == set()
    assert not [name for name in dists.wheel_names if _stray(name)]
    with zipfile.ZipFile(dists.wheel) as archive:
        for name in LICENSE_FILES:
            shipped = archive.read(f"{dist_info}/licenses/{name}")
            assert shipped == (REPO_ROOT / name).read_bytes(), name
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        # The demo's DAG, for installs without a checkout: the example as it is in the tree.
        assert archive.read(DEMO_DAG) == (REPO_ROOT / "example_dags" / "example_wavy_daily.py").read_bytes()
    assert f"[apache_airflow_provider]\nprovider_info = {PACKAGE}:get_provider_info" in entry_points


@pytest.mark.slow
def test_sdist_holds_the_sources_docs_examples_and_tests_and_nothing_stray(dists: Dists) -> None:
    top_level = {PurePosixPath(name).parts[0] for name in dists.sdist_names}
    assert top_level == SDIST_TOP_LEVEL
    assert sorted(name for name in dists.sdist_names if _stray(name)) == []
    for directory in SDIST_DIRS:
        shipped = {name for name in dists.sdist_names if name.startswith(f"{directory}/")}
        missing = _tree_files(directory) - shipped
        assert not missing, f"left out of the sdist: {sorted(missing)}"
    for name in ("README.md", "CHANGELOG.md", "pyproject.toml", *LICENSE_FILES):
        assert dists.sdist_read(name) == (REPO_ROOT / name).read_bytes(), name


@pytest.mark.slow
def test_metadata_licence_urls_classifiers_and_extras(dists: Dists) -> None:
    meta = dists.wheel_metadata()
    # 2.4 carries the licence fields (PEP 639); twine 6.x and older upload tools refuse 2.5.
    assert meta["Metadata-Version"] == "2.4"
    assert meta["Name"] == DIST_NAME
    assert meta["Version"] == airflow_provider_wavy.__version__
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == list(LICENSE_FILES)
    # Test and lint tools are dependency groups, never something users can install as an extra.
    assert meta.get_all("Provides-Extra") == ["numpy", "postgres"]
    urls = dict(line.split(", ", 1) for line in meta.get_all("Project-URL", []))
    assert urls == {
        "Documentation": f"{REPO_URL}#readme",
        "Changelog": f"{REPO_URL}/blob/main/CHANGELOG.md",
        "Issues": f"{REPO_URL}/issues",
        "Source": REPO_URL,
    }
    classifiers = meta.get_all("Classifier", [])
    for prefix in ("Development Status :: ", "Intended Audience :: ", "Environment :: ", "Topic :: "):
        assert any(c.startswith(prefix) for c in classifiers), prefix
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    # PEP 639: the licence is the License-Expression; PyPI refuses a licence classifier beside it.
    assert not [c for c in classifiers if c.startswith("License ::")]
    tested = f"Programming Language :: Python :: {sys.version_info.major}.{sys.version_info.minor}"
    assert tested in classifiers, f"the suite runs on {tested}: list it"


def test_changelog_has_a_section_for_this_version() -> None:
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert f"\n## [{airflow_provider_wavy.__version__}]" in changelog


#: Runs in the clean venv. First line: the entry point's provider info checked against Airflow's schema
#: (before Airflow reads it, so a schema error is named, not a traceback); second: what Airflow discovered.
PROBE = """
import importlib.metadata, importlib.util, json, pathlib, sys
import jsonschema

# Found without importing airflow: Airflow 3 reads every provider's info while it imports.
airflow_dir = pathlib.Path(importlib.util.find_spec("airflow").origin).parent
schema = json.loads((airflow_dir / sys.argv[1]).read_text())
(entry,) = [e for e in importlib.metadata.entry_points(group="apache_airflow_provider")
            if e.value.startswith("airflow_provider_wavy")]
validator = jsonschema.validators.validator_for(schema)
validator.check_schema(schema)
errors = validator(schema).iter_errors(entry.load()())
print(json.dumps([f"{list(e.absolute_path)}: {e.message}" for e in errors]), flush=True)

import airflow, airflow_provider_wavy
from airflow.providers_manager import ProvidersManager
manager = ProvidersManager()
hook = manager.hooks["wavy"]
print(json.dumps({
    "airflow": airflow.__version__,
    "module": airflow_provider_wavy.__file__,
    "version": manager.providers["airflow-provider-wavy"].version,
    "hook": [hook.hook_class_name, hook.package_name, hook.connection_type],
}))
"""


@pytest.mark.e2e
def test_wheel_in_a_clean_venv_is_discovered_and_matches_airflows_schema(
    dists: Dists, tmp_path: Path
) -> None:
    airflow_version = version("apache-airflow")
    constraints = REPO_ROOT / "constraints" / f"airflow-{airflow_version}.txt"
    assert constraints.is_file(), f"no constraints file for Airflow {airflow_version}"
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    _run([UV, "venv", "--quiet", "--python", sys.executable, venv], timeout=60, cwd=tmp_path)
    _run(
        [UV, "pip", "install", "--quiet", "--python", python, "--constraint", constraints,
         f"apache-airflow=={airflow_version}", dists.wheel],
        timeout=600,
        cwd=tmp_path,
    )  # fmt: skip
    home = {"AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    probe = subprocess.run(
        [str(python), "-c", PROBE, SCHEMA_FILE],
        capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path, env=_env(**home),
    )  # fmt: skip
    lines = probe.stdout.strip().splitlines()
    assert lines, probe.stderr[-3000:]
    assert json.loads(lines[0]) == [], f"get_provider_info() breaks Airflow {airflow_version}'s schema"
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(lines[-1])
    assert found["airflow"] == airflow_version
    assert Path(found["module"]).is_relative_to(venv), "the provider was not imported from the wheel"
    assert found["version"] == airflow_provider_wavy.__version__
    assert found["hook"] == ["airflow_provider_wavy.hooks.wavy.WavyHook", DIST_NAME, "wavy"]

    listed = subprocess.run(
        [str(venv / "bin" / "airflow"), "providers", "list", "-o", "json"],
        capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path, env=_env(**home),
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr[-3000:]
    by_name = {p["package_name"]: p["version"] for p in json.loads(listed.stdout)}
    assert by_name[DIST_NAME] == airflow_provider_wavy.__version__

    # The demo runs from the install alone: its DAG comes from the wheel, not from a checkout.
    demo = [str(python), "-m", f"{PACKAGE}.demo"]
    helped = subprocess.run(
        [*demo, "--help"], capture_output=True, text=True, check=False, timeout=120, cwd=tmp_path, env=_env()
    )
    assert helped.returncode == 0, helped.stderr[-3000:]
    assert "--dags-folder" in helped.stdout
    ran = subprocess.run(
        [*demo, "--rows", "3", "--workdir", str(tmp_path / "demo")],
        capture_output=True, text=True, check=False, timeout=600, cwd=tmp_path, env=_env(),
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "Rows:  3 open session(s)" in ran.stdout, ran.stdout[-3000:]
