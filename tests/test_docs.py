"""The README is a front page, and every link between README.md and docs/ leads somewhere.

A relative link must name a file that exists, and a `#anchor` a heading of its target, by
GitHub's rule for heading anchors. Read from the Markdown itself: no server, no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250

# Pages generated from the code's own declarations by a step of their own, so a checkout may not
# have them yet: a link to one is accepted while it is absent, and checked like any other once it
# is there.
GENERATED = ("docs/reference/settings.md", "docs/reference/routes.md")

_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
# [text](target) and ![alt](target), the text possibly over several lines, an optional "title".
_INLINE_LINK = re.compile(r"\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# [label]: target
_REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def pages(root: Path) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def without_code(text: str) -> str:
    """The text with fenced blocks and code spans blanked out, lines kept where they were."""

    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return _CODE_SPAN.sub(blank, _FENCE.sub(blank, text))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercase, punctuation removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for match in _HEADING.finditer(without_code(page.read_text(encoding="utf-8"))):
        slug = anchor(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> Iterator[tuple[int, str]]:
    """Each link target of a page that stays inside the repository, with its line number."""
    text = without_code(page.read_text(encoding="utf-8"))
    for pattern in (_INLINE_LINK, _REFERENCE_LINK):
        for match in pattern.finditer(text):
            target = match.group(1)
            if _SCHEME.match(target) or target.startswith("//"):
                continue
            yield text.count("\n", 0, match.start(1)) + 1, target


def broken_links(root: Path, checked: list[Path]) -> list[str]:
    """One line per link among the checked pages that leads nowhere."""
    generated = {root / name for name in GENERATED}
    broken: list[str] = []
    for page in checked:
        for line, target in links(page):
            path, _, fragment = target.partition("#")
            where = f"{page.relative_to(root)}:{line}: {target}"
            destination = (page.parent / path).resolve() if path else page
            if not destination.exists():
                if destination not in generated:
                    broken.append(f"{where}: no such file")
                continue
            if not fragment:
                continue
            if destination.suffix != ".md":
                broken.append(f"{where}: an anchor into a file that is not Markdown")
            elif fragment not in anchors(destination):
                broken.append(f"{where}: no heading with that anchor in {destination.relative_to(root)}")
    return broken


def test_every_link_between_readme_and_docs_leads_somewhere() -> None:
    assert broken_links(ROOT, pages(ROOT)) == []


def test_the_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move a topic into docs/"


def test_anchors_follow_githubs_rule() -> None:
    assert anchor("Recordings browser: access") == "recordings-browser-access"
    assert anchor("tapedeck's recorder against a minimal Node `ws` recorder") == (
        "tapedecks-recorder-against-a-minimal-node-ws-recorder"
    )
    assert anchor("What each bundle installs, and how that is checked") == (
        "what-each-bundle-installs-and-how-that-is-checked"
    )


def test_a_missing_page_a_missing_heading_and_a_missing_generated_page(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "flows.md").write_text("# Flows\n\n## Voicemail to pager\n\n## Flows\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "\n".join(
            [
                "# tapedeck",
                "[flows](docs/flows.md#voicemail-to-pager) [again](docs/flows.md#flows-1) [top](#tapedeck)",
                "[settings](docs/reference/settings.md) [site](https://example.com/x.md)",
                "`[not a link](docs/nowhere.md)`",
                "```",
                "[nor this](docs/nowhere.md)",
                "```",
                "[gone](docs/gone.md) [no such heading](docs/flows.md#live-voicemail)",
                "[across",
                "lines](#nowhere)",
            ]
        ),
        encoding="utf-8",
    )
    assert broken_links(tmp_path, pages(tmp_path)) == [
        "README.md:8: docs/gone.md: no such file",
        "README.md:8: docs/flows.md#live-voicemail: no heading with that anchor in docs/flows.md",
        "README.md:10: #nowhere: no heading with that anchor in README.md",
    ]
