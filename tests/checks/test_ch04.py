"""Chapter 4 exercise checks: they pass right answers (written here independently
of bigramlab), say "not implemented yet" for stubs, name the problem in
plausible wrong answers, and never raise."""

import torch

from bigramlab import checks
from tests.helpers.checks import contract_tests


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


def heads_o_rows(model, mask):
    cfg = model.config
    nh, hs = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    out = kept_per_head(model, mask, kinds="qkv")
    for name, m in mask.items():
        if "attention.dense" in name:
            for h in range(nh):
                out[int(name.split(".")[2]), h] += int(m[h * hs:(h + 1) * hs].sum())
    return out


def heads_qkv_head_size_rows(model, mask):
    cfg = model.config
    nh, hs = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    out = kept_per_head(model, mask, kinds="o")
    for name, m in mask.items():
        if "query_key_value" in name:
            for h in range(nh):
                out[int(name.split(".")[2]), h] += int(m[h * hs:(h + 1) * hs].sum())
    return out


def heads_dropped_counted(model, mask):
    return kept_per_head(model, {k: ~v for k, v in mask.items()})


def heads_transposed(model, mask):
    return kept_per_head(model, mask).T


def heads_per_layer_only(model, mask):
    return kept_per_head(model, mask).sum(1)


def overlap_both_share(a, b):
    out = overlap_summary(a, b)
    out["both"] = out["both"] / sum(m.numel() for m in a.values())
    return out


def overlap_both_union(a, b):
    out = overlap_summary(a, b)
    out["both"] = sum(int((a[k] | b[k]).sum()) for k in a)
    return out


def overlap_jaccard_of_a(a, b):
    out = overlap_summary(a, b)
    out["jaccard"] = out["both"] / sum(int(m.sum()) for m in a.values())
    return out


def overlap_jaccard_sum(a, b):
    out = overlap_summary(a, b)
    out["jaccard"] = out["both"] / sum(int(a[k].sum()) + int(b[k].sum()) for k in a)
    return out


def overlap_chance_share(a, b):
    out = overlap_summary(a, b)
    out["chance"] = out["chance"] / sum(m.numel() for m in a.values())
    return out


def overlap_chance_undivided(a, b):
    out = overlap_summary(a, b)
    out["chance"] = sum(int(a[k].sum()) * int(b[k].sum()) for k in a)
    return out


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


def without_mlp_out_only(model, mask, layer):
    out = dict(mask)
    for name in mask:
        if f".{layer}.mlp." in name and ("4h_to_h" in name or "mlp.c_proj" in name):
            out[name] = torch.zeros_like(mask[name])
    return out


def without_mlp_whole_layer(model, mask, layer):
    out = dict(mask)
    for name in mask:
        if f".{layer}." in name:
            out[name] = torch.zeros_like(mask[name])
    return out


def without_mlp_kept(model, mask, layer):
    out = dict(mask)
    for name in mask:
        if f".{layer}.mlp." in name:
            out[name] = torch.ones_like(mask[name])
    return out


def without_mlp_every_layer(model, mask, layer):
    return {n: torch.zeros_like(m) if ".mlp." in n else m for n, m in mask.items()}


def without_mlp_one_based(model, mask, layer):
    """Layers counted from 1: asked for layer l, drops the MLP named l + 1."""
    return without_mlp(model, mask, layer + 1)


def without_mlp_scalar_false(model, mask, layer):
    out = dict(mask)
    for name in mask:
        if f".{layer}.mlp." in name:
            out[name] = False
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
    ("head", heads_o_rows, "COLUMNS of it"),
    ("head", heads_qkv_head_size_rows, "3 * head_size rows"),
    ("head", heads_dropped_counted, "count the kept ones"),
    ("head", heads_transposed, "not (heads, layers)"),
    ("head", heads_per_layer_only, "expected shape (layers, heads)"),
    ("overlap", overlap_pooled_chance, "per matrix"),
    ("overlap", overlap_jaccard_of_all, "kept by either"),
    ("overlap", overlap_both_share, "not a share"),
    ("overlap", overlap_both_union, "not by either"),
    ("overlap", overlap_jaccard_of_a, "not by |a|"),
    ("overlap", overlap_jaccard_sum, "counts the shared entries twice"),
    ("overlap", overlap_chance_share, "expected NUMBER"),
    ("overlap", overlap_chance_undivided, "by its number of entries"),
    ("mlp", without_mlp_in_place, "changed the mask you were given"),
    ("mlp", without_mlp_in_only, "should be all False"),
    ("mlp", without_mlp_substring, "also dropped the MLP of layer 11"),
    ("mlp", without_mlp_out_only, "should be all False"),
    ("mlp", without_mlp_whole_layer, "whole layer"),
    ("mlp", without_mlp_kept, "KEPT"),
    ("mlp", without_mlp_every_layer, "every layer"),
    ("mlp", without_mlp_one_based, "numbered from 0"),
    ("mlp", without_mlp_scalar_false, "not a single False"),
]


test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG,
                                                                         not_a_number=True)
