"""Automatic checks for the exercises, one module per chapter.

Every ``check_*`` takes the student's function, runs it on cases whose answers
bigramlab computes itself, prints ✓ or what is wrong ("not implemented yet" for
an unsolved stub), returns a ``CheckResult`` (truthy iff right, shown as nothing
in a notebook; see ``_core``), and never raises. Notebooks call them as
``checks.check_<name>(...)``; ``bigramlab grade`` calls them itself.

The machinery they share is public here too: ``run``, ``call`` and ``Wrong`` for an
instructor's own checks (``book/instructors.md``), ``CheckResult``, and ``wired`` and
``GRADING`` for the grader (``bigramlab.grade``).
"""

from ._core import GRADING, CheckResult, Wrong, call, run, wired

from .ch00 import check_count_parameters, check_log_spaced_steps, check_tokens_per_word
from .ch01 import (check_bigram_probs, check_correlation, check_count_bigrams,
                   check_surprisal_bits)
from .ch02 import check_count_maskable, check_head_slice, check_logit_lens_at
from .ch03 import (check_density_penalty, check_kept_per_layer, check_should_stop,
                   check_soft_mask, check_temperature)
from .ch04 import check_kept_per_head, check_overlap_summary, check_without_mlp
from .ch05 import check_attention_share, check_persistence, check_trend
from .ch06 import check_median_rotation, check_recall_at_k, check_ridge_fit
from .ch07 import check_covariance_from_sums, check_frobenius_cosine, check_remove_top
from .ch08 import (check_five_conditions, check_overlap_row, check_row_shuffle_mean,
                   check_tempered)
from .ch09 import (check_greedy_add_back, check_trigram_cross_entropy, check_trigram_next_probs,
                   check_with_head)

__all__ = ["GRADING", "CheckResult", "Wrong", "call", "run", "wired"]
__all__ += ["check_count_parameters", "check_log_spaced_steps", "check_tokens_per_word"]
__all__ += ["check_count_bigrams", "check_bigram_probs", "check_surprisal_bits",
            "check_correlation"]
__all__ += ["check_count_maskable", "check_head_slice", "check_logit_lens_at"]
__all__ += ["check_soft_mask", "check_density_penalty", "check_temperature",
            "check_should_stop", "check_kept_per_layer"]
__all__ += ["check_kept_per_head", "check_overlap_summary", "check_without_mlp"]
__all__ += ["check_attention_share", "check_persistence", "check_trend"]
__all__ += ["check_median_rotation", "check_ridge_fit", "check_recall_at_k"]
__all__ += ["check_frobenius_cosine", "check_remove_top", "check_covariance_from_sums"]
__all__ += ["check_five_conditions", "check_tempered", "check_overlap_row",
            "check_row_shuffle_mean"]
__all__ += ["check_trigram_next_probs", "check_trigram_cross_entropy", "check_with_head",
            "check_greedy_add_back"]
