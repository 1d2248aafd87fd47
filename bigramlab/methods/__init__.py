"""The paper's algorithms: tensors and Hugging Face models in, tensors out.

These modules import only ``plumbing`` and each other; none takes a Profile,
touches the cache or the network. In the order the chapters teach them:

- ``ngrams`` (Ch. 1): the exact, streamed n-gram counting engine;
- ``rowstore``, ``bigrams`` (Ch. 1): the bigram model on it; ``sparse_ce``: its
  chunked cross-entropy;
- ``metrics`` (Ch. 1): surprisal, cross-entropy and correlation helpers;
- ``precision`` (Ch. 3): the dtype losses and surprisals are computed in (float64
  stays float64, the rest computes in float32);
- ``architectures`` (Ch. 2): the table of where each architecture keeps its parts;
- ``anatomy`` (Ch. 2): which weights can be masked, and their head layout;
- ``residual`` (Ch. 2): reading the residual stream, and interventions on it;
- ``batching`` (Ch. 0, 3): the seeded order training draws rows in;
- ``masks`` (Ch. 3): the one way weights are masked, and soft masks;
- ``targets``, ``sparsify_config``, ``sparsify`` (Ch. 3): continuous sparsification;
- ``subnetwork`` (Ch. 3-5): binary masks as values (apply, count, edit, files);
- ``attention_roles`` (Ch. 4): a subnetwork's attention entries split into
  query/key and value/output (section 4.2), by the true layout or the paper's
  helper's contiguous thirds;
- ``overlap`` (Ch. 4, 8): the overlap of two masks and its exact chance level
  under uniform placement and under the paper's row-shuffle null;
- ``rotation`` (Ch. 6): ridge maps across the residual stream from streamed
  sufficient statistics, and how far each map rotates;
- ``lenses`` (Ch. 2, 6): output lens, input lens and the logit lens;
- ``covariance`` (Ch. 7): layer-to-layer similarity of the residual stream's
  covariance;
- ``trigrams`` (Ch. 9): the trigram model with back-off to the bigram model, on
  the same engine and row store, and its cross-entropy (the trigram target);
- ``lambda_selection`` (Ch. 3): which lambda of a sweep to analyse, the paper's rule
  (Appendix A.3) beside the course's;
- ``power_law`` (Ch. 5): power-law fits of r against active parameters per
  checkpoint, compared at one parameter count (section 4.1);
- ``ablation`` (Ch. 8): the five ablation conditions and their surprisals, and
  the paper's rule for the optimal subnetwork to compare;
- ``generation`` (Ch. 1, 8): one temperature sampler for the bigram model and
  any (masked) causal LM;
- ``agreement`` (Ch. 9): determiner-noun number agreement across a word, as
  minimal pairs scored from LM logits or n-gram probabilities;
- ``circuits`` (Ch. 9): attention heads, MLPs and extra entries as subnetworks,
  and the greedy loop that adds them back to a subnetwork.

What the chapters call is importable from here (``from bigramlab.methods import
overlap_stats``; the training loop ``sparsify`` from the package root, since
``bigramlab.methods.sparsify`` is its module); the rest from its module.
"""

from .ablation import (CONDITIONS, LABELS, ablation_conditions, clip_inf, condition_surprisals,
                       select_optimal, surprisal_summary)
from .agreement import (AgreementCases, agreement_accuracy, find_agreement, logit_margins,
                        ngram_margins)
from .anatomy import (KINDS, MaskableMatrix, UnsupportedArchitectureError, anatomy_table,
                      count_maskable, maskable_matrices, parameter_groups)
from .attention_roles import query_key_value_output
from .bigrams import BigramModel, bigram_counts, bigram_generate, context_counts, unigram_counts
from .circuits import (extra_part, gap_closed, greedy_add_back, head_part, kinds_part, mlp_part,
                       model_parts)
from .covariance import covariance_similarity, frobenius_cosine, off_diagonal, remove_top_components
from .generation import lm_generate, tempered, top_token_share
from .lambda_selection import lambda_choices
from .lenses import lens_correlation, lens_readings, recall_at_k, token_ranks
from .masks import density_penalty, masked, soft_masks
from .metrics import (LN2, cross_entropy_nats, lm_bigram_cross_entropy, lm_logits, lm_surprisal,
                      logits_surprisal, surprisal_correlation, zipf_fit)
from .overlap import (chance_overlap, overlap_stats, overlap_table, row_blocks, row_shuffle_null,
                      row_shuffle_samples)
from .power_law import compare_at, fit_per_checkpoint, fit_power_law
from .residual import (blocks, final_layer_norm, hidden_states, lens_stats, lens_surprisal,
                       lens_top_tokens, logit_lens, residual_writes, zero_head_output, zeroed)
from .rotation import ResidualStats, eigen_angles, median_rotation, residual_stats, rotations
from .sparsify import (BigramTarget, FullModelTarget, SparsifyConfig, SparsifyResult,
                       TrigramTarget, planted_toy, undecided_counts)
from .subnetwork import Subnetwork
from .trigrams import TrigramModel

__all__ = [
    "CONDITIONS", "LABELS", "ablation_conditions", "clip_inf", "condition_surprisals",
    "select_optimal", "surprisal_summary",
    "AgreementCases", "agreement_accuracy", "find_agreement", "logit_margins", "ngram_margins",
    "query_key_value_output",
    "KINDS", "MaskableMatrix", "UnsupportedArchitectureError", "anatomy_table", "count_maskable",
    "maskable_matrices", "parameter_groups",
    "BigramModel", "bigram_counts", "bigram_generate", "context_counts", "unigram_counts",
    "extra_part", "gap_closed", "greedy_add_back", "head_part", "kinds_part", "mlp_part",
    "model_parts",
    "covariance_similarity", "frobenius_cosine", "off_diagonal", "remove_top_components",
    "lm_generate", "tempered", "top_token_share",
    "lambda_choices",
    "lens_correlation", "lens_readings", "recall_at_k", "token_ranks",
    "density_penalty", "masked", "soft_masks",
    "LN2", "cross_entropy_nats", "lm_bigram_cross_entropy", "lm_logits", "lm_surprisal",
    "logits_surprisal", "surprisal_correlation", "zipf_fit",
    "chance_overlap", "overlap_stats", "overlap_table", "row_blocks", "row_shuffle_null",
    "row_shuffle_samples",
    "compare_at", "fit_per_checkpoint", "fit_power_law",
    "blocks", "final_layer_norm", "hidden_states", "lens_stats", "lens_surprisal",
    "lens_top_tokens", "logit_lens", "residual_writes", "zero_head_output", "zeroed",
    "ResidualStats", "eigen_angles", "median_rotation", "residual_stats", "rotations",
    "BigramTarget", "FullModelTarget", "SparsifyConfig", "SparsifyResult", "TrigramTarget",
    "planted_toy", "undecided_counts",
    "Subnetwork",
    "TrigramModel",
]
