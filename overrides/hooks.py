"""MkDocs hooks: point a notebook page's "edit" link at the committed notebook.

Notebook pages are rendered from executed copies in docs/notebooks/, which git ignores;
readers who click "edit" should land on notebooks/<name>.ipynb instead.
"""


def on_page_context(context, page, config, nav):
    if page.file.src_uri.startswith("notebooks/") and config.repo_url:
        page.edit_url = f"{config.repo_url.rstrip('/')}/edit/main/{page.file.src_uri}"
    return context
