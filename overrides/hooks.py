"""MkDocs hooks: edit links of notebook pages, and the template pages and downloads.

Notebook pages are rendered from executed copies in docs/notebooks/, which git ignores;
readers who click "edit" should land on notebooks/<name>.ipynb instead.

The model-card and runbook templates live once, in templates/ (the handbook CLI renders
them from there); the build publishes each at templates/<name> so the template pages can
link to it for download.
"""

from pathlib import Path

from mkdocs.structure.files import File, InclusionLevel


def on_files(files, config):
    # MkDocs leaves every docs/templates/ file out of the site by default (a folder themes
    # used to keep their templates in); here it holds the template pages, so keep them.
    for file in files:
        if file.src_uri.startswith("templates/"):
            file.inclusion = InclusionLevel.INCLUDED
    templates = Path(config.config_file_path).parent / "templates"
    for template in sorted(templates.glob("*.jinja")):
        files.append(File.generated(config, f"templates/{template.name}",
                                    abs_src_path=str(template),
                                    inclusion=InclusionLevel.INCLUDED))
    return files


def on_page_context(context, page, config, nav):
    if page.file.src_uri.startswith("notebooks/") and config.repo_url:
        page.edit_url = f"{config.repo_url.rstrip('/')}/edit/main/{page.file.src_uri}"
    return context
