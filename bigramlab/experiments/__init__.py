"""What the chapters run: per-profile, cached orchestration of the methods in a world.

- ``bigram``: a profile's bigram model, counted once (Chapter 1);
- ``subnetworks``: train a profile's subnetwork at a checkpoint (cached),
  evaluate it, and the reference mask to compare with (Chapters 3-5);
- ``necessity``: the five ablation conditions of a subnetwork and the
  optimal-subnetwork sweep (Chapter 8);
- ``world_report``: Chapter 0's tables on the tiny world.

Every function takes a ``Profile``. These import ``plumbing``, ``methods`` and
``worlds``; ``display``, ``checks`` and the CLI sit above them.
"""

from .bigram import bigram_model
from .necessity import ablation, optimal_sweep
from .subnetworks import (TARGETS, evaluate_subnetwork, mask_config, mask_key,
                          reference_subnetwork, train_subnetwork)
from .world_report import compare_worlds, evaluate_world

__all__ = ["bigram_model", "ablation", "optimal_sweep", "TARGETS", "evaluate_subnetwork",
           "mask_config", "mask_key", "reference_subnetwork", "train_subnetwork", "compare_worlds",
           "evaluate_world"]
