"""bench/profiling.py sorts py-spy's collapsed stacks into the stages of a request."""

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import profiling  # noqa: E402
from profiling import (  # noqa: E402
    BENTOML_MIDDLEWARE,
    DATAFRAME,
    EVENT_LOOP,
    FLAGSHIP_MIDDLEWARE,
    MODEL,
    OTHER,
    PREDICTION_LOG,
    WAITING,
    Rule,
)

pytestmark = pytest.mark.fast

SITE = "/app/.venv/lib/python3.11/site-packages"
STDLIB = "/usr/lib/python3.11"
EXAMPLE = "/app/examples/credit-risk"
LOOP = (f"_run_module_as_main (<frozen runpy>:198);main ({SITE}/_bentoml_impl/worker/service.py:"
        f"242);Runner.run ({STDLIB}/asyncio/runners.py:118)")
MIDDLEWARE = (f"{LOOP};JsonErrors.__call__ ({EXAMPLE}/credit_risk/middleware/errors.py:76);"
              f"LimitBodySize.read_body ({EXAMPLE}/credit_risk/middleware/limits.py:156)")
MODEL_THREAD = (f"Thread.run ({STDLIB}/threading.py:982);_worker ({STDLIB}/concurrent/futures/"
                f"thread.py:83);_WorkItem.run ({STDLIB}/concurrent/futures/thread.py:58);"
                f"CreditRisk.score_and_record ({EXAMPLE}/service.py:115)")
SCORE = f"{MODEL_THREAD};score ({EXAMPLE}/credit_risk/scoring.py:106)"
PANDAS_IN_SKLEARN = (
    f"{SCORE};probabilities ({EXAMPLE}/credit_risk/scoring.py:97);Pipeline.predict_proba "
    f"({SITE}/sklearn/pipeline.py:926);_LocIndexer._getitem_axis ({SITE}/pandas/core/"
    f"indexing.py:1421);DataFrame.__init__ ({SITE}/pandas/core/frame.py:700)")

# One stack per stage, as py-spy --format raw --full-filenames writes it, and its stage.
STACKS = {
    f"{LOOP} 7": EVENT_LOOP,
    # The flagship's middleware reads the body through BentoML's tracing receive wrapper:
    # the innermost named frame (OpenTelemetry's) decides.
    f"{MIDDLEWARE};otel_receive ({SITE}/opentelemetry/instrumentation/asgi/__init__.py:856)"
    f";attach ({SITE}/opentelemetry/context/__init__.py:116) 5": BENTOML_MIDDLEWARE,
    f"{MIDDLEWARE};Logger.info ({STDLIB}/logging/__init__.py:1489) 3": FLAGSHIP_MIDDLEWARE,
    f"{SCORE.replace(':106', ':103')};DataFrame.__init__ ({SITE}/pandas/core/frame.py:700);"
    f"dict_to_mgr ({SITE}/pandas/core/internals/construction.py:400) 4": DATAFRAME,
    f"{PANDAS_IN_SKLEARN};dict_to_mgr ({SITE}/pandas/core/internals/construction.py:400) 6":
        MODEL,
    f"{MODEL_THREAD};record ({EXAMPLE}/credit_risk/telemetry.py:77);JsonLines.format "
    f"({EXAMPLE}/credit_risk/jsonl_log.py:18);dumps ({STDLIB}/json/__init__.py:231) 2":
        PREDICTION_LOG,
    f"Thread.run ({STDLIB}/threading.py:982);_worker ({STDLIB}/concurrent/futures/"
    f"thread.py:81) 2": WAITING,
    f"Thread.run ({STDLIB}/threading.py:982) 1": OTHER,
}


def check(stacks: dict[str, str], rules: list[Rule] = profiling.RULES) -> None:
    """Each stack's stage is the expected one."""
    found = {line: profiling.categorise(profiling.parse(line)[0], rules) for line in stacks}
    assert found == stacks


def test_each_stack_goes_to_its_stage():
    check(STACKS)


def test_a_planted_miscategorisation_fails():
    # "pandas is DataFrame construction" would charge sklearn's own pandas work to it.
    planted = [Rule(DATAFRAME, r"/pandas/"), *profiling.RULES]
    with pytest.raises(AssertionError):
        check(STACKS, planted)


def test_parse_keeps_spaces_in_frames_and_drops_line_numbers():
    frames, count = profiling.parse(f"{LOOP} 12\n")
    assert count == 12
    assert frames == ["_run_module_as_main (<frozen runpy>)",
                      f"main ({SITE}/_bentoml_impl/worker/service.py)",
                      f"Runner.run ({STDLIB}/asyncio/runners.py)"]


def test_aggregate_shares_time_per_request_and_top_leaves():
    profile = profiling.aggregate(list(STACKS), requests=10, rate_hz=100, top=2)
    assert profile["samples"] == 30
    stages = {c["name"]: c for c in profile["categories"]}
    assert [c["name"] for c in profile["categories"]] == profiling.CATEGORIES
    assert sum(c["samples"] for c in profile["categories"]) == 30
    assert stages[EVENT_LOOP]["share_pct"] == pytest.approx(23.3)
    assert stages[EVENT_LOOP]["ms_per_request"] == pytest.approx(7.0)  # 7 samples of 10 ms
    assert profile["top_leaves"] == [
        {"frame": "dict_to_mgr (pandas/core/internals/construction.py)", "samples": 10,
         "share_pct": 33.3},
        {"frame": "Runner.run (asyncio/runners.py)", "samples": 7, "share_pct": 23.3}]
