"""The authors' released bigram subnetworks across a model family: where each one sits,
layer by layer (Chang & Bergen 2025, Figure 7; Chapter 4).

Only the masks and the models' configs are read (``hub.hub_skeleton``: no weights). A model
whose mask is neither in the local Hugging Face cache nor downloadable (no network) is
skipped, with the reason, so that the figure shows what this machine can reach.
"""

from __future__ import annotations

from ..plumbing.profiles import PROFILES, Profile, entry_point
from ..worlds import hub

__all__ = ["released_family", "released_layer_shares"]


def released_family(profile: Profile) -> list[Profile]:
    """The real profiles of ``profile``'s architecture whose masks the authors released,
    smallest first (Pythia 70M-1B; GPT-2 small-large)."""
    return [PROFILES[name] for name in hub.RELEASED_SUBNETWORKS
            if PROFILES[name].arch == profile.arch]


@entry_point
def released_layer_shares(profile: Profile) -> tuple[dict[str, dict], dict[str, str]]:
    """(shares, skipped). ``shares``: model name -> {"lambda": the released default lambda,
    "layers": [share of the subnetwork's kept entries in each layer, first to last]};
    ``skipped``: model name -> why it could not be read here."""
    shares, skipped = {}, {}
    for q in released_family(profile):
        lam = hub.RELEASED_SUBNETWORKS[q.name][1][0]
        try:
            sub = hub.load_released_subnetwork(q.model_id, lam)
            by_layer = sub.counts_by_layer(hub.hub_skeleton(q))
        except hub.HubUnavailableError:
            skipped[q.name] = "not in the local cache, and the Hub is not reachable"
            continue
        total = max(sum(by_layer.values()), 1)
        shares[q.name] = {"lambda": lam, "layers": [by_layer[i] / total for i in sorted(by_layer)]}
    return shares, skipped
