"""The A/B assignment (ops/release/ab.py): nginx's split_clients computed in Python. The
system test (tests/system/test_ab.py) checks it against nginx itself on 2,000 ids."""

import math

from ops.release.ab import arm, murmur_hash2

IDS = [f"applicant-{i:05d}" for i in range(10_000)]


def test_murmur_hash2_matches_known_values():
    # MurmurHash2 with seed 0, the variant nginx uses (ngx_murmur_hash2).
    assert murmur_hash2(b"") == 0
    assert all(0 <= murmur_hash2(i.encode()) < 2**32 for i in IDS[:100])
    assert len({murmur_hash2(i.encode()) for i in IDS}) == len(IDS)  # no collisions here


def test_the_arms_nginx_gave_these_applicants():
    # Observed through nginx 1.22's split_clients (50 %) in tests/system/test_ab.py.
    assert [arm(f"applicant-{i:05d}") for i in range(8)] == list("bababbaa")


def test_assignment_is_a_function_of_the_id_alone():
    assert [arm(i) for i in IDS[:500]] == [arm(i) for i in IDS[:500]]
    assert arm("") == "unassigned"


def test_assignment_splits_by_the_share_within_a_binomial_bound():
    for share in (50, 20, 5):
        in_a = sum(arm(i, share) == "a" for i in IDS)
        expected, sd = len(IDS) * share / 100, math.sqrt(len(IDS) * share / 100 * (1 - share / 100))
        assert abs(in_a - expected) <= 4 * sd, (share, in_a)


def test_a_smaller_share_only_moves_applicants_out_of_arm_a():
    # Shrinking arm a (stopping an experiment gradually) moves no one from b into a.
    assert all(arm(i, 50) == "a" for i in IDS if arm(i, 20) == "a")
    assert all(arm(i, 0) == "b" for i in IDS[:1000])
