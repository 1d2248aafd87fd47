"""Chapter 4 exercise checks: they pass right answers (written here independently
of bigramlab), say "not implemented yet" for stubs, name the problem in
plausible wrong answers, and never raise."""

import torch

from bigramlab import checks
from tests.check_contract import contract_tests


# ------------------------------------------------------------ right answers
def kept_per_head(model, mask, split="per_head", kinds="qkvo"):
    """GPT-NeoX: query_key_value rows per head [q k v], attention.dense columns per head."""
    cfg = model.config
    nh, hs = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    out = torch.zeros(cfg.num_hidden_layers, nh, dtype=torch.long)
    for name, m in mask.items():
        layer = int(name.split(".")[2])
        for h in range(nh):
            if "query_key_value" in name:
                for j, kind in enumerate("qkv"):
                    if kind not in kinds:
                        continue
                    start = (3 * h + j) * hs if split == "per_head" else (j * nh + h) * hs
                    out[layer, h] += int(m[start:start + hs].sum())
            elif "attention.dense" in name and "o" in kinds:
                out[layer, h] += int(m[:, h * hs:(h + 1) * hs].sum())
    return out


def overlap_summary(a, b, chance="per_matrix", jaccard="either"):
    both = sum(int((a[k] & b[k]).sum()) for k in a)
    either = sum(int((a[k] | b[k]).sum()) for k in a)
    n = sum(m.numel() for m in a.values())
    if chance == "per_matrix":
        expected = sum(int(a[k].sum()) * int(b[k].sum()) / a[k].numel() for k in a)
    else:
        expected = sum(int(m.sum()) for m in a.values()) * sum(int(m.sum()) for m in b.values()) / n
    return {"both": both, "jaccard": both / (either if jaccard == "either" else n),
            "chance": expected}


def without_mlp(model, mask, layer):
    out = dict(mask)
    for name in mask:
        if f".{layer}.mlp." in name:
            out[name] = torch.zeros_like(mask[name])
    return out


# ------------------------------------------------------------ wrong answers
def heads_block_split(model, mask):
    return kept_per_head(model, mask, split="blocks")


def heads_without_o(model, mask):
    return kept_per_head(model, mask, kinds="qkv")


def heads_o_only(model, mask):
    return kept_per_head(model, mask, kinds="o")


def overlap_pooled_chance(a, b):
    return overlap_summary(a, b, chance="pooled")


def overlap_jaccard_of_all(a, b):
    return overlap_summary(a, b, jaccard="all")


def without_mlp_in_place(model, mask, layer):
    for name in mask:
        if f".{layer}.mlp." in name:
            mask[name][:] = False
    return mask


def without_mlp_in_only(model, mask, layer):
    out = dict(mask)
    for name in mask:
        if f".{layer}.mlp." in name and ("h_to_4h" in name or "c_fc" in name):
            out[name] = torch.zeros_like(mask[name])
    return out


def without_mlp_substring(model, mask, layer):
    """The name test of the issue: on 12 layers, layer 1 also matches layer 11's MLP."""
    out = dict(mask)
    for name in mask:
        if f"{layer}.mlp" in name:
            out[name] = torch.zeros_like(mask[name])
    return out


CHECKS = {
    "head": (checks.check_kept_per_head, kept_per_head),
    "overlap": (checks.check_overlap_summary, overlap_summary),
    "mlp": (checks.check_without_mlp, without_mlp),
}

WRONG = [
    ("head", heads_block_split, "grouped per head"),
    ("head", heads_without_o, "q, k and v only"),
    ("head", heads_o_only, "o only"),
    ("overlap", overlap_pooled_chance, "per matrix"),
    ("overlap", overlap_jaccard_of_all, "kept by either"),
    ("mlp", without_mlp_in_place, "changed the mask you were given"),
    ("mlp", without_mlp_in_only, "should be all False"),
    ("mlp", without_mlp_substring, "also dropped the MLP of layer 11"),
]


test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG)
