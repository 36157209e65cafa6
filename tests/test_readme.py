"""
The README is the package index's project page: its links must work there, where relative paths and
in-page anchors do not resolve, and what they point at must exist in this repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
REPOSITORY = "https://github.com/airflow-provider-wavy/airflow-provider-wavy"
#: Images are shown from here: a ``blob`` URL is an HTML page, not the picture.
RAW = "https://raw.githubusercontent.com/airflow-provider-wavy/airflow-provider-wavy"
#: ``[text](target)`` and ``![alt](target)``, outside code spans and fenced blocks (stripped first).
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(markdown: str) -> str:
    """The README without fenced code blocks and inline code, where brackets are not links."""
    without_fences = re.sub(r"^```.*?^```", "", markdown, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"`[^`\n]*`", "", without_fences)


LINKS = LINK.findall(_prose(README))


def _repository_path(target: str) -> Path | None:
    """The file or folder of this repository an absolute link names, or None for other sites."""
    prefixes = (f"{REPOSITORY}/blob/main/", f"{REPOSITORY}/tree/main/", f"{RAW}/main/")
    for prefix in prefixes:
        if target.startswith(prefix):
            return ROOT / target.removeprefix(prefix).split("#", 1)[0]
    return None


def test_readme_has_links() -> None:
    assert len(LINKS) >= 5, LINKS


@pytest.mark.parametrize("target", LINKS)
def test_every_link_is_absolute(target: str) -> None:
    assert target.startswith("https://"), (
        f"README link {target!r} is relative: it breaks on the package index page; "
        f"use {REPOSITORY}/blob/main/..."
    )


def test_images_are_served_raw() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", _prose(README))
    assert images, "the README shows the UI screenshots"
    for target in images:
        assert target.startswith(f"{RAW}/main/"), f"image {target} is not a raw file URL: it would not render"


@pytest.mark.parametrize("target", [t for t in LINKS if _repository_path(t) is not None])
def test_links_into_the_repository_name_what_exists(target: str) -> None:
    path = _repository_path(target)
    assert path is not None
    assert path.exists(), f"README links to {target}, but {path.relative_to(ROOT)} is not in the repository"
