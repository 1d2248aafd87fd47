"""A small tiny world (300-token vocabulary, a 2-layer LM trained 12 steps): it builds
in seconds, for the tests of the tiny world's machinery and of the real-world path."""

from bigramlab.plumbing.profiles import TinyWorld, get_profile, tiny_checkpoints

STEPS = 12
SMALL = get_profile("tiny").replace(
    name="tiny-test",
    world=TinyWorld(seed=3, n_words=60_000, vocab_size=300, n_layer=2, d_model=16, n_head=2,
                    d_mlp=32, train_steps=STEPS, batch_size=4, lr=3e-3, warmup_steps=2),
    checkpoints=tiny_checkpoints(STEPS), n_eval_seqs=8)
