"""The worlds layer (bigramlab/worlds/): the tiny world (its grammar, a small world built
in seconds, the full-size one) and its release."""
