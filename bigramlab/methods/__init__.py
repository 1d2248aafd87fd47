"""The paper's algorithms as plain functions: tensors and Hugging Face models in, tensors out.

Nothing here reads a profile, the cache or the network; the chapters and
``bigramlab.experiments`` choose the model, the text and the subnetwork.

- ``rotation``: ridge maps across the residual stream from streamed sufficient
  statistics, and how far each map rotates (Chapter 6);
- ``lenses``: output lens, input lens and the logit lens (Chapters 2 and 6);
- ``covariance``: layer-to-layer similarity of the residual stream's
  covariance (Chapter 7).
"""
