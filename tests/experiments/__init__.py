"""The experiments layer (bigramlab/experiments/): per-profile orchestration against
direct, uncached runs; most need the full tiny world (marked slow)."""
