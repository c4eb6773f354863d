"""Model 3 of the ML Test Score: the committed hyperparameters (training/model.py's
DEFAULT_PARAMS) are as good as the best of a seeded search, up to the noise between folds
(the rule in training/tuning.py)."""

import json

from training import tuning
from training.model import DEFAULT_PARAMS

SUBSAMPLE = 8_000  # rows: the full search takes minutes on two cores; results/tuning.json has it


def test_the_committed_search_ran_on_the_committed_defaults_and_found_them_tuned():
    committed = json.loads(tuning.RESULTS.read_text())
    assert committed["defaults"] == {name: DEFAULT_PARAMS[name] for name in tuning.SEARCH_SPACE}, \
        "stale: run `python -m training.tuning`"
    assert committed["search_space"] == tuning.SEARCH_SPACE
    assert committed["rows"] == tuning.ROWS
    assert committed["defaults_are_tuned"], (committed["gap"], committed["noise"])


def test_no_candidate_beats_the_defaults_by_more_than_the_fold_noise_on_a_subsample():
    result = tuning.search(rows=SUBSAMPLE)
    for candidate in result["candidates"][:3]:
        print(candidate)
    assert result["defaults_are_tuned"], (
        f"the best candidate beats the defaults by {result['gap']} ROC AUC, more than the "
        f"fold noise {result['noise']}: {result['candidates'][0]['params']}")
