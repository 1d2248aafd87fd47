"""A model no checkpoint is (appendix A.4): one checkpoint's blocks with another's embedding
and unembedding, named by ``with_embeddings`` and loaded, trained and cached like a checkpoint."""

import pytest
import torch
from safetensors.torch import load_file

from bigramlab import get_profile, load_model, with_embeddings
from bigramlab.experiments import mask_config, mask_key
from bigramlab.worlds import tiny
from bigramlab.worlds.loading import UnknownCheckpointError


@pytest.fixture(scope="module")
def profile():
    return get_profile("tiny")


def stored(profile, checkpoint):
    """The checkpoint's weights as stored (fp32, transformers' names), read without transformers."""
    folder = tiny.build.build_world(profile, stage="lm") / "checkpoints" / checkpoint
    return load_file(folder / "model.safetensors")


def test_the_spliced_model_has_the_donors_embeddings_and_the_rest_of_its_base(profile):
    name = with_embeddings("step0", profile.final_checkpoint)
    model, _ = load_model(profile, name, device="cpu")
    base, donor = stored(profile, "step0"), stored(profile, profile.final_checkpoint)
    embed = {"gpt_neox.embed_in.weight", "embed_out.weight"}
    assert embed <= set(base)
    params = dict(model.named_parameters())
    for key in base:  # transformers 5 calls the stored embed_out lm_head
        got = params[key if key in params else key.replace("embed_out", "lm_head")]
        assert torch.equal(got, (donor if key in embed else base)[key].double()), key
    # the naive reading: copying the two matrices by hand into the step0 model gives it
    by_hand, _ = load_model(profile, "step0", device="cpu")
    with torch.no_grad():
        by_hand.gpt_neox.embed_in.weight.copy_(donor["gpt_neox.embed_in.weight"])
        by_hand.lm_head.weight.copy_(donor["embed_out.weight"])
    x = torch.arange(16).reshape(2, 8)
    assert torch.equal(model(x).logits, by_hand(x).logits)


def test_a_spliced_name_is_checked_part_by_part(profile):
    with pytest.raises(UnknownCheckpointError, match="step7"):
        load_model(profile, with_embeddings("step7", profile.final_checkpoint))
    with pytest.raises(UnknownCheckpointError, match="final"):
        load_model(profile, with_embeddings("step0", "final"))


def test_its_masks_have_their_own_key(profile):
    cfg, cpu = mask_config(profile), torch.device("cpu")
    keys = {mask_key(profile, c, "bigram", cfg, cpu)
            for c in ("step0", profile.final_checkpoint, with_embeddings("step0", profile.final_checkpoint))}
    assert len(keys) == 3
