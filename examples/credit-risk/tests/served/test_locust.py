"""The locustfile readers start from runs against a real server without a single failure."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops.processes import EXAMPLE_DIR


@pytest.mark.timeout(180)
def test_a_short_headless_run_has_traffic_and_no_failures(server_url, tmp_path):
    run = subprocess.run(
        [Path(sys.executable).with_name("locust"), "-f", "ops/locustfile.py", "--host", server_url,
         "--headless", "--users", "4", "--spawn-rate", "4", "--run-time", "5s",
         "--csv", str(tmp_path / "run"), "--only-summary"],
        cwd=EXAMPLE_DIR, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(EXAMPLE_DIR)},  # `credit_risk`, `training`
    )
    assert run.returncode == 0, run.stderr[-3000:]
    with open(tmp_path / "run_stats.csv") as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    assert int(total["Request Count"]) > 50
    assert int(total["Failure Count"]) == 0
