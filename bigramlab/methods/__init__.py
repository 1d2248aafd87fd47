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
"""
