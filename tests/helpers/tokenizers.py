"""Toy tokenizers with the transformers call signature, for tests that need a tokenizer
but not a trained one."""


class LetterTokenizer:
    """Whitespace-free toy tokenizer: id i is the letter chr(96 + i) ('a' is 1); 0 is special."""

    all_special_ids = [0]

    def decode(self, ids):
        return "".join("<eos>" if i == 0 else chr(96 + i) for i in ids)

    def convert_ids_to_tokens(self, i):
        return "<eos>"

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [ord(ch) - 96 for ch in text]}


class PieceTokenizer:
    """A BPE stand-in: every word is cut into pieces of 3 characters, and a start token
    is added unless add_special_tokens=False."""

    def __call__(self, text, add_special_tokens=True):
        ids = [hash(w[i:i + 3]) % 1000 + 1 for w in text.split() for i in range(0, len(w), 3)]
        ids = ([0] if add_special_tokens else []) + ids
        return {"input_ids": ids, "attention_mask": [1] * len(ids)}


class WordTokenizer:
    """One token per word, and an end token unless add_special_tokens=False."""

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [hash(w) % 100 for w in text.split()] + ([0] if add_special_tokens else [])}
