"""Key rotation on a real `bentoml serve`. An API key: while the old and the new key overlap
both score, after the expiry the old key gets the 401 a revoked key gets, and at no moment
are both keys refused, so a client that switches to the new key loses no request. The
signing key: a model the rotation left out stops the server at start, in one line."""

import datetime

import httpx
import pytest
from checks import assert_json_error, poll
from servers import failed_start, served

from credit_risk import api_keys as keys
from credit_risk import artifact
from credit_risk.schema import EXAMPLE_INPUT
from ops import signing

# Long enough for the server to read the keys file again (within about 1 s) on a busy
# machine; the stored expiry is whole seconds, so the overlap may be up to 1 s shorter.
OVERLAP = datetime.timedelta(seconds=10)


@pytest.mark.timeout(300)
def test_a_rotated_key_overlaps_then_expires_and_no_request_is_lost(trained, tmp_path):
    path = tmp_path / "api-keys.jsonl"
    old = keys.new(path, "partner-a", ["score"])
    with (served(log=tmp_path / "serve.log", CREDIT_RISK_API_KEYS_FILE=str(path)) as url,
          httpx.Client(base_url=url, timeout=10) as client):

        def score(key: str) -> httpx.Response:
            return client.post("/score", json=EXAMPLE_INPUT.model_dump(),
                               headers={"X-API-Key": key})

        assert score(old).status_code == 200
        revoked = score(keys.PREFIX + "partner-a_" + "A" * 43)  # what a revoked key gets
        new = keys.rotate(path, "partner-a", overlap=OVERLAP)
        (expires,) = [record.expires for record in keys.read(path)["partner-a"]
                      if record.expires]
        rounds = []  # (sent at, old key's response, new key's response, answered at)

        def both_keys():
            sent = keys.utc_now()
            rounds.append((sent, score(old), score(new), keys.utc_now()))
            return rounds[-1]

        poll(both_keys, until=lambda round_: round_[1].status_code != 200,
             deadline_s=OVERLAP.total_seconds() + 30)
        assert score(new).status_code == 200

    assert all(200 in (old_.status_code, new_.status_code) for _, old_, new_, _ in rounds)
    assert all(old_.status_code == 200 for _, old_, _, answered in rounds if answered < expires)
    assert all(old_.status_code == 401 for sent, old_, _, _ in rounds if sent >= expires)
    first_new = next(i for i, (_, _, new_, _) in enumerate(rounds) if new_.status_code == 200)
    assert rounds[first_new][3] < expires  # both keys scored before the old one expired
    assert all(new_.status_code == 200 for _, _, new_, _ in rounds[first_new:])
    refused = rounds[-1][1]
    assert assert_json_error(refused, 401) == assert_json_error(revoked, 401)
    assert refused.headers["www-authenticate"] == revoked.headers["www-authenticate"]


@pytest.mark.timeout(300)
def test_a_model_left_out_of_a_signing_key_rotation_stops_the_server_in_one_line(
        trained, model_home, tmp_path):
    stored, _ = trained
    folder = model_home / "models" / stored.tag.name / stored.tag.version
    old_private, _ = signing.keygen(tmp_path / "old")
    artifact.seal(folder, old_private)
    _, new_public = signing.keygen(tmp_path / "next")
    returncode, output = failed_start(tmp_path / "serve.log", BENTOML_HOME=str(model_home),
                                      CREDIT_RISK_SIGNING_PUBLIC_KEY=str(new_public))
    assert returncode != 0 and "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "not started" in line]
    assert line == (f"credit-risk service not started: model directory {folder} fails its "
                    f"signature checked with {new_public}: {folder / artifact.SIGNATURE}: "
                    f"Key mismatch: made with another key; refusing to load it")
