"""The authors' released bigram subnetworks across a model family (Chang & Bergen 2025,
Figures 7-9): where each one sits, layer by layer (Chapter 4: only the masks and the models'
configs are read, ``hub.hub_skeleton``, no weights), and each other model with its mask, one
at a time, for the rotation and covariance analyses (Chapters 6 and 7).

A model whose files are neither in the local Hugging Face cache nor downloadable (no
network) is skipped, with the reason, so that a figure shows what this machine can reach.
Defined in Chapter 4; Chapters 6 and 7 use it.
"""

from __future__ import annotations

from ..plumbing.profiles import PROFILES, Profile, entry_point
from ..worlds import hub
from ..worlds.loading import load_model

__all__ = ["released_family", "released_lambdas", "released_layer_shares", "released_models"]


UNREACHABLE = "not in the local cache, and the Hub is not reachable"


def released_family(profile: Profile) -> list[Profile]:
    """The real profiles of ``profile``'s architecture whose masks the authors released,
    smallest first (Pythia 70M-1B; GPT-2 small-large)."""
    return [PROFILES[name] for name in hub.RELEASED_SUBNETWORKS
            if PROFILES[name].arch == profile.arch]


@entry_point
def released_lambdas(profile: Profile) -> tuple:
    """The lambdas the authors released masks at for ``profile``'s model, default first
    (10 and 1; 100, 10 and 1 for Pythia 1B and GPT-2 large); () when none."""
    return hub.RELEASED_SUBNETWORKS.get(profile.name, (None, ()))[1]


@entry_point
def released_layer_shares(profile: Profile) -> tuple[dict[str, dict], dict[str, str]]:
    """(shares, skipped). ``shares``: model name -> {"lambda": the released default lambda,
    "layers": [share of the subnetwork's kept entries in each layer, first to last]};
    ``skipped``: model name -> why it could not be read here."""
    shares, skipped = {}, {}
    for q in released_family(profile):
        lam = released_lambdas.unchecked(q)[0]
        try:
            sub = hub.load_released_subnetwork(q.model_id, lam)
            by_layer = sub.counts_by_layer(hub.hub_skeleton(q))
        except hub.HubUnavailableError:
            skipped[q.name] = UNREACHABLE
            continue
        total = max(sum(by_layer.values()), 1)
        shares[q.name] = {"lambda": lam, "layers": [by_layer[i] / total for i in sorted(by_layer)]}
    return shares, skipped


@entry_point
def released_models(profile: Profile, skipped: dict, every_lambda: bool = False):
    """Each OTHER model of ``profile``'s family with its released bigram subnetwork, one
    model at a time: yields ``(profile, model, subnetwork, lambda)`` at the released default
    lambda (``every_lambda``: then at each other released lambda too, the same model object
    again), the model loaded as ``load_model`` loads it (weights downloaded once). A model
    that cannot be had here is left out and ``skipped[name]`` says why."""
    for q in released_family(profile):
        if q.name == profile.name:
            continue
        default, *others = released_lambdas.unchecked(q)
        try:
            sub = hub.load_released_subnetwork(q.model_id, default)
            model, _ = load_model(q)
        except hub.HubUnavailableError:
            skipped[q.name] = UNREACHABLE
            continue
        yield q, model, sub, default
        for lam in others if every_lambda else ():  # read one at a time: up to 0.8 GB each
            yield q, model, hub.load_released_subnetwork(q.model_id, lam), lam
