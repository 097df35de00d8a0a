"""One version: ``mm.__version__``, the installed distribution and the command line agree.

The number is written once, in ``src/mixedmodels/_version.py``; pyproject.toml declares the
version dynamic and reads that file, and CHANGELOG.md has a section for it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import mixedmodels as mm

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_a_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.dev\d+)?", mm.__version__)


def test_the_installed_distribution_has_the_same_version():
    # an editable install records the version when it is installed: reinstall after a bump
    assert version("mixedmodels") == mm.__version__


def test_the_command_line_prints_the_same_version():
    proc = subprocess.run(
        [sys.executable, "-m", "mixedmodels", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert proc.stdout.split() == ["mixedmodels,", "version", mm.__version__]


def test_pyproject_does_not_write_a_second_version():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mixedmodels._version.__version__"}


def test_the_changelog_has_a_section_for_this_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(mm.__version__)}\]", changelog, re.M)
    assert re.search(r"^## \[Unreleased\]", changelog, re.M)
