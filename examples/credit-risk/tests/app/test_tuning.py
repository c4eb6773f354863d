"""Model 3 of the ML Test Score: the committed hyperparameters (training/model.py's
DEFAULT_PARAMS) are as good as the best of a seeded search, up to the noise between folds
(the rule in training/tuning.py), as the committed search found; tests/retrain/ reruns a
smaller search."""

import json

from training import tuning
from training.model import DEFAULT_PARAMS


def test_the_committed_search_ran_on_the_committed_defaults_and_found_them_tuned():
    committed = json.loads(tuning.RESULTS.read_text())
    assert committed["defaults"] == {name: DEFAULT_PARAMS[name] for name in tuning.SEARCH_SPACE}, \
        "stale: run `python -m training.tuning`"
    assert committed["search_space"] == tuning.SEARCH_SPACE
    assert committed["rows"] == tuning.ROWS
    assert committed["defaults_are_tuned"], (committed["gap"], committed["noise"])
