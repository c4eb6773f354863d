"""Test-only: the credit-risk service with serving skew in one age band.

The release tests build a candidate bento with this module as its entry point (see
`faults.faulty_source`). The model is the one that passed the gate; the serving code adds
0.4 to the probability of default of every applicant aged 65+, as a calibration step
applied in the wrong place would. The gate evaluates the model in process and cannot see it,
the smoke test's applicant is 26-35, and the canary judges errors and latency: only the
shadow stage, comparing decisions per age band on mirrored traffic, stops this release.
"""

import numpy as np

from credit_risk import scoring
from service import CreditRisk  # noqa: F401  (the entry point bentoml serves)

SKEWED_BAND, SHIFT = "65+", 0.4
model_probabilities = scoring.probabilities


def skewed_probabilities(model, frame):
    probabilities = model_probabilities(model, frame)
    return np.where(frame["age_band"] == SKEWED_BAND,
                    np.minimum(probabilities + SHIFT, 1.0), probabilities)


scoring.probabilities = skewed_probabilities
