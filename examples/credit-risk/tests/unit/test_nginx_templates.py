"""The nginx templates fill every placeholder, and a placeholder left over is an error."""

from pathlib import Path

import pytest

from ops import replicas
from ops.nginx import render


def test_the_template_renders_every_placeholder(tmp_path: Path):
    conf = replicas.render_config([1111, 2222], 3333, tmp_path)
    text = conf.read_text()
    assert "${" not in text
    assert "listen 127.0.0.1:3333;" in text
    assert "server 127.0.0.1:2222 max_fails=1 fail_timeout=5s;" in text
    assert f"pid {tmp_path}/nginx.pid;" in text


def test_an_unfilled_placeholder_is_named(tmp_path: Path):
    template = tmp_path / "t.conf"
    template.write_text("listen ${PORT}; root ${RUN_DIR};")
    with pytest.raises(ValueError, match=r"\$\{RUN_DIR\}"):
        render(template, tmp_path / "out.conf", PORT="1")
