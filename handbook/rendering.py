"""The Jinja environment both templates render in."""

from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"


def template(name: str) -> jinja2.Template:
    """A template from templates/. StrictUndefined turns a misspelt variable into an error
    instead of an empty string; the output is Markdown, so nothing is HTML-escaped."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=(), default=False),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(name)
