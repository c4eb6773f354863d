"""The little Markdown the checkers need: sections by heading, comments, placeholders, tables."""

import re
from dataclasses import dataclass

# What the templates print where a value is missing (the Hugging Face model-card convention).
PLACEHOLDER = "[More Information Needed]"
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
FENCE = re.compile(r"^[ \t]*(```|~~~)")
COMMENT = re.compile(r"<!--.*?-->", re.S)
CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


@dataclass
class Section:
    """A heading and the text under it: `body` up to the next heading of any level,
    `content` up to the next heading of the same or a higher level (so with subsections)."""

    level: int
    title: str
    body: str = ""
    content: str = ""


def sections(text: str) -> list[Section]:
    """Every heading in order. A `#` line inside a fenced code block is not a heading."""
    found: list[Section] = []
    bodies: list[list[str]] = []
    lines: list[str] = []  # text before the first heading belongs to no section
    in_code = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
        heading = None if in_code else HEADING.match(line)
        if heading:
            found.append(Section(len(heading[1]), heading[2]))
            lines = []
            bodies.append(lines)
        else:
            lines.append(line)
    for index, section in enumerate(found):
        section.body = "\n".join(bodies[index]).strip()
        end = next((j for j in range(index + 1, len(found)) if found[j].level <= section.level),
                   len(found))
        parts = [section.body]
        for sub in range(index + 1, end):
            parts += ["#" * found[sub].level + " " + found[sub].title, *bodies[sub]]
        section.content = "\n".join(parts).strip()
    return found


def without_comments(text: str) -> str:
    return COMMENT.sub("", text).strip()


def written_text(body: str) -> str:
    """A section's own text without the guidance comments the template put at its top."""
    text = body.strip()
    while text.startswith("<!--") and "-->" in text:
        text = text.split("-->", 1)[1].strip()
    return text


def github_anchor(title: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def tables(text: str) -> list[list[list[str]]]:
    """Each pipe table in `text` as rows of cells (header first, the --- row dropped)."""
    found, rows = [], []
    for line in text.splitlines() + [""]:
        if line.strip().startswith("|"):
            cells = [cell.strip().replace("\\|", "|")
                     for cell in CELL_SEPARATOR.split(line.strip().strip("|"))]
            if not all(re.fullmatch(r":?-+:?", cell) for cell in cells):
                rows.append(cells)
        elif rows:
            found.append(rows)
            rows = []
    return found
