"""The offline tiny world: everything the real world downloads, made on this machine.

- ``lexicon``, ``grammar``: English-like passages from a small probabilistic grammar;
- ``pretrain``: pretraining a small causal LM from scratch with Pythia-style checkpoints;
- ``build``: the four cached stages (corpus, tokenizer, tokens, LM) and
  ``build_world``, the one call that builds them.

Defined in Chapter 0.
"""
