"""The n-gram counting engine (bigramlab.methods.ngrams) against a naive Counter of
tuples, for n = 1, 2, 3, dense and sparse, streamed and whole; marginal (n - 1)-gram counts;
its file round trip."""

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.methods.ngrams import (NgramCounts, count_ngrams, marginal_counts, merge_counts,
                                      ngram_keys)

DENSE, SPARSE = 10**12, 0  # dense_max_entries that force either storage


def naive_counts(sequences, V, n):
    """(c_1, ..., c_{n-1}, b) -> count, contexts padded with the start id V."""
    out = Counter()
    for seq in sequences.tolist():
        padded = [V] * (n - 1) + seq
        for i in range(len(seq)):
            out[tuple(padded[i:i + n])] += 1
    return out


def key_of(gram, V):
    k = 0
    for c in gram[:-1]:
        k = k * (V + 1) + c
    return k * V + gram[-1]


def as_dict(c: NgramCounts):
    if c.table is not None:
        nz = c.table.nonzero().squeeze(1)
        return dict(zip(nz.tolist(), c.table[nz].tolist()))
    return dict(zip(c.keys.tolist(), c.counts.tolist()))


@settings(max_examples=40, deadline=None)
@given(V=st.integers(1, 9), n=st.integers(1, 3), rows=st.integers(0, 5), seq=st.integers(0, 7),
       seed=st.integers(0, 10**6), dense=st.booleans(), chunk=st.integers(1, 5),
       flush=st.integers(1, 40))
def test_counts_match_a_naive_counter(V, n, rows, seq, seed, dense, chunk, flush):
    g = torch.Generator().manual_seed(seed)
    corpus = torch.randint(0, V, (rows, seq), generator=g)
    got = count_ngrams(corpus.split(chunk) if rows else [], V, n,
                       dense_max_entries=DENSE if dense else SPARSE, flush_pairs=flush)
    assert got.storage == ("dense" if dense else "sparse")
    want = {key_of(gram, V): c for gram, c in naive_counts(corpus, V, n).items()}
    assert as_dict(got) == want
    if not dense:  # sorted and unique
        assert torch.equal(got.keys, torch.unique(got.keys))


def test_keys_are_the_flat_cells_of_the_table():
    V = 4
    batch = torch.tensor([[1, 3, 0]])
    assert ngram_keys(batch, 2, V).tolist() == [V * V + 1, 1 * V + 3, 3 * V + 0]
    # trigram (c1, c2, b): ((c1 (V+1) + c2) V + b), contexts padded with V
    assert ngram_keys(batch, 3, V).tolist() == [key_of((V, V, 1), V), key_of((V, 1, 3), V),
                                                key_of((1, 3, 0), V)]
    assert ngram_keys(batch, 1, V).tolist() == [1, 3, 0]


def test_dense_table_and_totals():
    V = 5
    corpus = torch.tensor([[0, 1, 1, 4], [2, 2, 2, 0]])
    for dense in (DENSE, SPARSE):
        c = count_ngrams([corpus], V, 2, dense_max_entries=dense)
        table = c.dense()
        assert table.shape == (V + 1, V)
        for (a, b), k in naive_counts(corpus, V, 2).items():
            assert table[a, b] == k
        assert table.sum() == corpus.numel()
        assert torch.equal(c.next_token_totals(), table.sum(0))
        assert torch.equal(c.context_totals(), table.sum(1))
        assert c.context_totals()[V] == len(corpus)  # one start per sequence
        t3 = count_ngrams([corpus], V, 3, dense_max_entries=dense).dense()
        assert t3.shape == (V + 1, V + 1, V) and t3[V, V].sum() == len(corpus)
        table.zero_()  # a copy: the counts are untouched
        assert c.dense().sum() == corpus.numel()


def test_merge_adds_shared_keys():
    keys, counts = merge_counts(torch.tensor([1, 4, 9]), torch.tensor([1, 1, 1]),
                                torch.tensor([0, 4, 10]), torch.tensor([2, 5, 3]))
    assert keys.tolist() == [0, 1, 4, 9, 10] and counts.tolist() == [2, 1, 6, 1, 3]


@pytest.mark.parametrize("dense", [DENSE, SPARSE], ids=["dense", "sparse"])
@pytest.mark.parametrize("n", [2, 3])
def test_file_round_trip_and_damage(tmp_path, dense, n):
    corpus = torch.randint(0, 7, (6, 9), generator=torch.Generator().manual_seed(0))
    c = count_ngrams([corpus], 7, n, dense_max_entries=dense)
    path = tmp_path / "c.safetensors"
    c.save(path, "test.Counts", "1")
    back = NgramCounts.load(path, "test.Counts", "1", ValueError)
    assert (back.vocab_size, back.n, back.storage) == (7, n, c.storage)
    assert as_dict(back) == as_dict(c)
    with pytest.raises(ValueError, match="no Counts metadata"):
        NgramCounts.load(path, "other.Counts", "1", ValueError)
    with pytest.raises(ValueError, match="unsupported version"):
        NgramCounts.load(path, "test.Counts", "2", ValueError)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="delete it"):
        NgramCounts.load(path, "test.Counts", "1", ValueError)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="integer tensors"):
        count_ngrams([torch.zeros(2, 3)], 5)
    with pytest.raises(ValueError, match=r"in \[0, 5\)"):
        count_ngrams([torch.tensor([[0, 5]])], 5)
    with pytest.raises(ValueError, match="n >= 1"):
        count_ngrams([], 5, 0)
    with pytest.raises(ValueError, match="small vocabularies"):
        count_ngrams([torch.tensor([[1, 2]])], 10_000, 2, dense_max_entries=SPARSE).dense()


def test_spare_rows_follow_the_table_in_one_buffer():
    V = 6
    corpus = torch.randint(0, V, (3, 10), generator=torch.Generator().manual_seed(1))
    c = count_ngrams([corpus], V, 2, spare_rows=2)
    assert c.buffer.shape == ((V + 1) * V + 2 * V,)
    assert c.table.data_ptr() == c.buffer.data_ptr() and c.buffer[c.n_keys:].eq(0).all()
    assert as_dict(c) == as_dict(count_ngrams([corpus], V, 2))
    assert count_ngrams([corpus], V, 2, dense_max_entries=SPARSE, spare_rows=2).buffer is None


@settings(max_examples=40, deadline=None)
@given(V=st.integers(1, 9), n=st.integers(2, 3), rows=st.integers(0, 5), seq=st.integers(0, 7),
       seed=st.integers(0, 10**6), dense_in=st.booleans(), dense_out=st.booleans(),
       spare=st.integers(0, 2))
def test_marginal_counts_equal_counting_again(V, n, rows, seq, seed, dense_in, dense_out, spare):
    """Summing n-gram counts over their oldest context token gives the (n-1)-gram counts,
    storage and spare rows included, exactly as count_ngrams(..., n - 1) would."""
    corpus = torch.randint(0, V, (rows, seq), generator=torch.Generator().manual_seed(seed))
    counts = count_ngrams([corpus], V, n, dense_max_entries=DENSE if dense_in else SPARSE)
    got = marginal_counts(counts, dense_max_entries=DENSE if dense_out else SPARSE,
                          spare_rows=spare)
    want = count_ngrams([corpus], V, n - 1, dense_max_entries=DENSE if dense_out else SPARSE,
                        spare_rows=spare)
    assert (got.n, got.storage) == (n - 1, want.storage)
    assert as_dict(got) == as_dict(want)
    if want.buffer is not None:
        assert torch.equal(got.buffer, want.buffer)
    if not dense_out:
        assert torch.equal(got.keys, want.keys) and torch.equal(got.counts, want.counts)
    keys, c = counts.sparse()
    assert dict(zip(keys.tolist(), c.tolist())) == as_dict(counts)
    with pytest.raises(ValueError, match="n >= 2"):
        marginal_counts(count_ngrams([corpus], V, 1))


def test_extra_metadata_round_trip(tmp_path):
    c = count_ngrams([torch.tensor([[1, 2, 3]])], 5, 3, dense_max_entries=SPARSE)
    path = tmp_path / "c.safetensors"
    c.save(path, "test.Counts", "1", {"min_count": "2"})
    back = NgramCounts.load(path, "test.Counts", "1", ValueError)
    assert back.meta["min_count"] == "2" and back.meta["format"] == "test.Counts"
    c.save(path, "test.Counts", "1", {"format": "forged"})  # cannot override the owner's fields
    assert NgramCounts.load(path, "test.Counts", "1", ValueError).meta["format"] == "test.Counts"
