"""The full-size tiny world (its corpus and tokens built once into the shared cache,
its LM the released one, both reused by the notebooks): its LM has learned more
than bigrams."""

import pytest

from bigramlab import build_world, get_profile, load_corpus, load_model
from bigramlab.experiments import evaluate_world

pytestmark = pytest.mark.slow  # needs the full tiny world (its corpus, tokens and LM)


@pytest.fixture(scope="module")
def tiny():
    profile = get_profile("tiny")
    build_world(profile)
    return profile


def test_tiny_lm_beats_the_bigram_model_by_half_a_nat(tiny):
    report = evaluate_world(tiny)
    # Same positions for both (pairs seen in training); 0.5 nats is the course's bar.
    assert report["bigram CE (nats)"] - report["LM CE (nats)"] >= 0.5, report
    unseen, total = map(int, report["unseen pairs"].split(" of "))
    assert unseen / total < 0.01  # the comparison leaves out almost nothing


def test_untrained_checkpoint_is_near_uniform(tiny):
    import math
    report = evaluate_world(tiny, "step0")
    vocab = len(load_model(tiny, "step0")[1])
    assert abs(report["LM CE (nats)"] - math.log(vocab)) < 0.5


def test_tiny_world_sizes(tiny):
    assert tiny.world.n_words >= 2_000_000
    train = load_corpus(tiny, "train")
    assert train.shape[1] == 128 and train.numel() > 4_000_000
