"""What the chapters run: per-profile, cached orchestration of the methods in a world.

- ``bigram``: a profile's bigram model, counted once (Chapter 1);
- ``trigram``: a profile's trigram model, counted once (Chapter 9);
- ``subnetworks``: train a profile's subnetwork at a checkpoint (cached),
  evaluate it against the bigram or the trigram model, and the reference mask
  to compare with (Chapters 3-5, 9);
- ``necessity``: the five ablation conditions of a subnetwork and the
  optimal-subnetwork sweep (Chapter 8);
- ``circuits``: agreement cases in a profile's text, many subnetworks measured
  in one pass each, and the greedy add-back path (Chapter 9);
- ``world_report``: Chapter 0's tables on the tiny world;
- ``released``: the authors' released masks across a model family, layer by layer (Chapter 4);
- ``sweep``: a grid of masks (profiles x checkpoints x lambdas), trained once, in this
  process or on a cluster, and its table (Chapters 3 and 5; ``bigramlab sweep``);
- ``plan``: what a chapter costs on a free T4, said before it trains (``chapter_plan``);
- ``paper_tables``: the paper's own numbers, to set beside ours.

What the chapters call is importable from here (``from bigramlab.experiments import
train_subnetwork``). Every function takes a ``Profile``. These import ``plumbing``,
``methods`` and ``worlds``; ``display``, ``checks`` and the CLI sit above them.
"""

from .bigram import bigram_model
from .circuits import add_back, agreement_cases, agreement_words, measure
from .necessity import ablation, optimal_sweep
from .paper_tables import PLATEAU_ACTIVE, SECTION_3_2, SECTION_4_2, TABLE2
from .plan import chapter_plan
from .released import released_family, released_lambdas, released_layer_shares, released_models
from .subnetworks import (TARGETS, evaluate_subnetwork, evaluate_trigram, mask_config, mask_key,
                          reference_subnetwork, train_subnetwork)
from .trigram import trigram_model
from .world_report import compare_worlds, evaluate_world

__all__ = ["bigram_model", "trigram_model", "ablation", "optimal_sweep", "TARGETS",
           "evaluate_subnetwork", "evaluate_trigram", "mask_config", "mask_key",
           "reference_subnetwork", "train_subnetwork", "compare_worlds", "evaluate_world",
           "chapter_plan", "agreement_words", "agreement_cases", "measure", "add_back",
           "PLATEAU_ACTIVE", "SECTION_3_2", "SECTION_4_2", "TABLE2", "released_family",
           "released_lambdas", "released_layer_shares", "released_models"]
