"""Load test the credit-risk service with Locust.

    locust -f locustfile.py --host http://127.0.0.1:3000                  # web UI on :8089
    locust -f locustfile.py --host http://127.0.0.1:3000 --headless -u 32 -r 8 -t 1m

Each simulated client scores single applications (most of the traffic) and sometimes a
batch of 64, drawn from the same generator the model was trained on. A 400 counts as a
failure: every application sent here is valid.
"""

import random

from locust import FastHttpUser, between, task

import data

APPLICATIONS = data.generate(2_000, seed=4242)[data.FEATURES].to_dict("records")


class LoanOfficer(FastHttpUser):
    """A client of the scoring API; FastHttpUser keeps the load generator's own cost low."""

    wait_time = between(0.0, 0.05)

    @task(10)
    def score_one(self):
        self.client.post("/score", json=random.choice(APPLICATIONS))

    @task(1)
    def score_batch(self):
        self.client.post("/score_batch", json={"applications": random.sample(APPLICATIONS, 64)})
