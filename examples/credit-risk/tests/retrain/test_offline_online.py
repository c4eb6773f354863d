"""Model 2 of the ML Test Score: the offline metric (ROC AUC on held-out rows) ranks models
of different quality as their online impact does (the expected profit of the loans the
service's decision rule approves; training/offline_online.py)."""

import json

import pytest

from training import offline_online

MIN_SPEARMAN = 0.8  # over six models: at most a near-tie or two may swap places


@pytest.fixture(scope="module")
def comparison():
    return offline_online.compare()


def test_offline_roc_auc_ranks_models_as_their_online_profit_does(comparison):
    for model in comparison["models"]:
        print(f"{model['model']:45} ROC AUC {model['roc_auc']:.4f}  "
              f"EUR {model['profit_per_application']:.1f} per application")
    assert len(comparison["models"]) >= 4
    assert comparison["spearman"] >= MIN_SPEARMAN, comparison["models"]
    best_offline = max(comparison["models"], key=lambda m: m["roc_auc"])
    best_online = max(comparison["models"], key=lambda m: m["profit_per_application"])
    assert best_offline == best_online


def test_the_committed_results_are_what_the_command_writes_today(comparison):
    committed = json.loads(offline_online.RESULTS.read_text())
    assert committed == comparison, "stale: run `python -m training.offline_online`"
