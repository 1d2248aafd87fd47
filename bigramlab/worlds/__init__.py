"""The two worlds a profile lives in, behind one dispatch (``loading``).

- ``loading``: ``load_model``, ``load_tokenizer``, ``load_corpus`` for any
  Profile: the hub for the real profiles, the built tiny world for the others;
- ``hub``: the Hugging Face Hub (reachability, loading, corpus streaming, the
  authors' released masks);
- ``tiny``: the offline world (grammar, tokenizer, pretraining, ``build_world``);
- ``tokens``: packing documents into train and eval sequences, in both worlds;
- ``models``: fresh models of an architecture and size (tiny LMs, meta models).

These import ``plumbing`` and ``methods``, never ``experiments`` or above.
Defined in Chapter 0.
"""
