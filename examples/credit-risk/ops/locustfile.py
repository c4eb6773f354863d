"""Load test the credit-risk service with Locust.

    export CREDIT_RISK_API_KEY=...   # a key with the score scope (python -m ops.api_keys new ...)
    PYTHONPATH=. locust -f ops/locustfile.py --host http://127.0.0.1:3000    # web UI on :8089
    PYTHONPATH=. locust -f ops/locustfile.py --host http://127.0.0.1:3000 --headless -u 32 -t 1m

(From this folder. Locust puts only the locustfile's own folder on the import path, and
`python -m locust` stops a headless run at once here, so PYTHONPATH names the example.)

Each simulated client scores single applications (most of the traffic) and sometimes a
batch of 64, drawn from the same generator the model was trained on. A 400 counts as a
failure: every application sent here is valid. All users share one key, so its rate limit
applies to the whole test: mint the key for a load test with the limit in mind, or raise
CREDIT_RISK_RATE_LIMIT_PER_S on the server under test, or a 429 shows up as a failure.
"""

import os
import random

from locust import FastHttpUser, between, task

from credit_risk.schema import FEATURES
from training import data

APPLICATIONS = data.generate(2_000, seed=4242)[FEATURES].to_dict("records")


class LoanOfficer(FastHttpUser):
    """A client of the scoring API; FastHttpUser keeps the load generator's own cost low."""

    wait_time = between(0.0, 0.05)
    # Sent with every request; without a key only a server in anonymous mode answers.
    default_headers = ({"X-API-Key": os.environ["CREDIT_RISK_API_KEY"]}
                       if os.environ.get("CREDIT_RISK_API_KEY") else None)

    @task(10)
    def score_one(self):
        self.client.post("/score", json=random.choice(APPLICATIONS))

    @task(1)
    def score_batch(self):
        self.client.post("/score_batch", json={"applications": random.sample(APPLICATIONS, 64)})
