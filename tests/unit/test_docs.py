"""The README stays a page a newcomer reads, and every link in it and in docs/ leads somewhere."""

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")
README_BUDGET_BYTES = 10_500


def relative_links(page: Path) -> list[str]:
    """Targets of Markdown links that point inside the repository (no scheme, no bare anchor)."""
    targets = LINK.findall(page.read_text(encoding="utf-8"))
    return [t for t in targets if "://" not in t and not t.startswith(("#", "mailto:"))]


def test_the_readme_fits_on_a_screen_or_two() -> None:
    size = len(README.read_bytes())
    assert size <= README_BUDGET_BYTES, f"README.md is {size} bytes: move a section to docs/"


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    missing = [
        target
        for target in relative_links(page)
        if not (page.parent / target.split("#", 1)[0]).exists()
    ]
    assert not missing, f"{page.relative_to(REPO_ROOT)} links to missing files: {missing}"


def test_every_page_in_docs_is_reachable_from_the_readme() -> None:
    linked = {
        (page.parent / target.split("#", 1)[0]).resolve()
        for page in [README, *DOCS]
        for target in relative_links(page)
    }
    orphans = [doc.name for doc in DOCS if doc.resolve() not in linked]
    assert not orphans, f"docs pages no page links to: {orphans}"
