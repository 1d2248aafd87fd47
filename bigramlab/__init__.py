"""bigramlab: the package behind the course on bigram subnetworks.

Chang & Bergen (2025), "Bigram Subnetworks: Mapping to Next Tokens in
Transformer Language Models". What the chapters use is importable from here::

    from bigramlab import get_profile, load_model, train_subnetwork, BigramModel, Subnetwork

(the names in ``__all__``), and everything else one level down, from the package
of its layer: ``bigramlab.methods`` (the paper's algorithms: tensors and models in,
tensors out), ``bigramlab.experiments`` (per profile, cached: what the chapters run),
``bigramlab.worlds`` (the Hugging Face Hub and the offline tiny world),
``bigramlab.plumbing`` (profiles, cache, devices), and the modules ``bigramlab.display``
(tables and plots), ``bigramlab.explorers`` (interactive figures), ``bigramlab.checks``
(the exercises' checks) and ``bigramlab.grade`` (grading notebooks).

The layers, each importing only those before it (``tests/package/test_layers.py`` checks it):
``plumbing`` < ``methods`` < ``worlds`` < ``experiments`` < the rest. A profile's name
is resolved once, by ``get_profile`` (here: ``load_model`` and its siblings in
``loaders``; the command line ``cli``); the functions that take a Profile check it where
it comes in (``plumbing.profiles.entry_point``).

``import bigramlab`` itself is light (no torch): a name is imported on first use.
"""

from __future__ import annotations

import importlib

#: name -> (module, attribute): what ``from bigramlab import name`` gives.
_EXPORTS = {name: (module, attr) for module, names in {
    "bigramlab.plumbing.profiles": ["PROFILES", "Profile", "UnknownProfileError", "get_profile",
                                    "profile_table"],
    "bigramlab.plumbing.environment": ["__version__", "environment_report=report"],
    "bigramlab.plumbing.cache": ["cache_dir"],
    "bigramlab.plumbing.devices": ["default_device", "describe_device"],
    "bigramlab.loaders": ["load_model", "load_tokenizer", "load_corpus", "build_world",
                          "with_embeddings"],
    "bigramlab.worlds.hub": ["HubUnavailableError", "load_released_subnetwork"],
    "bigramlab.methods.anatomy": ["KINDS", "MaskableMatrix", "UnsupportedArchitectureError",
                                  "count_maskable", "maskable_matrices", "parameter_groups"],
    "bigramlab.methods.bigrams": ["BigramModel"],
    "bigramlab.methods.subnetwork": ["Subnetwork"],
    "bigramlab.methods.sparsify": ["SparsifyConfig", "SparsifyResult", "sparsify"],
    "bigramlab.experiments": ["bigram_model", "trigram_model", "mask_config", "train_subnetwork",
                              "evaluate_subnetwork", "evaluate_trigram", "reference_subnetwork",
                              "ablation", "optimal_sweep", "evaluate_world", "compare_worlds",
                              "chapter_plan"],
}.items() for name, _, attr in (n.partition("=") for n in names) for attr in [attr or name]}

#: The packages and modules one level down, importable as attributes too.
_SUBMODULES = ("checks", "cli", "display", "experiments", "explorers", "grade", "loaders",
               "methods", "plumbing", "worlds")

__all__ = [name for name in _EXPORTS if name != "__version__"] + ["__version__", "checks"]


def __getattr__(name: str):
    """Import a name of ``__all__`` (or a subpackage) the first time it is asked for."""
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))
