"""The canary's rule and the access-log reader, without servers."""

import json

from ops.release.canary import CanaryPolicy, judge, read_access_log, summarize


def stats(requests, errors, p95_ms):
    return {"requests": requests, "errors": errors, "p95_ms": p95_ms}


def test_canary_rule_compares_latency_with_production_at_the_same_time():
    policy = CanaryPolicy()  # SLO p95 250 ms, at most 1.5x production
    slow = stats(60, 0, 400)
    assert judge(stats(240, 0, 50), slow, policy, final=True)[0].startswith(
        "p95 latency 400 ms")
    # The whole machine is slow: production too, so the candidate is not to blame.
    assert judge(stats(240, 0, 350), slow, policy, final=True) == []


def test_canary_rule_counts_errors_against_a_minimum_sample():
    policy = CanaryPolicy()  # 1 % budget, at least 20 requests
    healthy = stats(240, 0, 50)
    # One failure in the first 5 requests already breaches: 1/20 > 1 %, stop now.
    assert "error rate 1 of 5" in judge(healthy, stats(5, 1, 40), policy, False)[0]
    assert judge(healthy, stats(5, 0, 40), policy, final=False) == []
    # Too few requests is no evidence, and no evidence is not a pass.
    assert "only 5 requests" in judge(healthy, stats(5, 0, 40), policy, True)[0]


def test_access_log_attributes_each_attempt_to_its_release(tmp_path):
    log = tmp_path / "access.log"
    lines = [
        {"uri": "/score", "status": "200", "upstream": "127.0.0.1:1",
         "upstream_status": "200", "upstream_time": "0.012"},
        # Retried: the first release refused the connection, the second answered.
        {"uri": "/score", "status": "200", "upstream": "127.0.0.1:2, 127.0.0.1:1",
         "upstream_status": "502, 200", "upstream_time": "0.000, 0.020"},
        {"uri": "/readyz", "status": "200", "upstream": "127.0.0.1:2",
         "upstream_status": "200", "upstream_time": "0.001"},
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    attempts = read_access_log(log, 0)
    assert [(a["upstream"], a["status"]) for a in attempts] == [
        ("127.0.0.1:1", "200"), ("127.0.0.1:2", "502"), ("127.0.0.1:1", "200")]
    second = summarize([a for a in attempts if a["upstream"] == "127.0.0.1:2"])
    assert second["errors"] == 1 and second["error_rate"] == 1.0
