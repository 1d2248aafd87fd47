"""The real-world code path, offline: the hub without network, local 'hub' models and
corpora, every chapter's real branch on the stand-in, the GPU device check."""
