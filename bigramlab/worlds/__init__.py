"""The two worlds a profile lives in, behind one dispatch (``loading``).

- ``loading``: ``load_model``, ``load_tokenizer``, ``load_corpus`` for any
  Profile: the hub for the real profiles, the built tiny world for the others;
- ``hub``: the Hugging Face Hub (reachability, loading, corpus streaming, the
  authors' released masks);
- ``tiny``: the offline world (grammar, tokenizer, pretraining, ``build_world``);
- ``tokens``: packing documents into train and eval sequences, in both worlds;
- ``models``: fresh models of an architecture and size (tiny LMs, meta models).

These import ``plumbing`` and ``methods``, never ``experiments`` or above, and take
a checked Profile: ``bigramlab.load_model`` and its siblings (``bigramlab.loaders``) are
the doors that accept a profile's name. What the chapters call besides is importable
from here (``from bigramlab.worlds import load_released_subnetwork``).
Defined in Chapter 0.
"""

from .hub import HubUnavailableError, load_released_subnetwork
from .models import make_meta_model, make_model
from .tiny import grammar
from .tiny.build import build_corpus, read_passages, training_log

__all__ = ["HubUnavailableError", "load_released_subnetwork", "make_meta_model", "make_model",
           "grammar", "build_corpus", "read_passages", "training_log"]
