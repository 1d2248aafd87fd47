"""The plumbing layer (bigramlab/plumbing/): the cache, profiles, files, progress and the
environment report."""
