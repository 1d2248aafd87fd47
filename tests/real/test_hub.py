"""With no network, asking for a hub model or corpus fails fast and says what to do."""

import time

import pytest

from bigramlab import HubUnavailableError, load_corpus, load_model


@pytest.fixture
def offline(monkeypatch, tmp_path):
    # Forced offline whatever this machine can reach; an empty HF cache.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("BIGRAMLAB_CACHE", str(tmp_path / "cache"))


def test_hub_model_without_network_fails_fast(offline):
    t = time.perf_counter()
    with pytest.raises(HubUnavailableError) as e:
        load_model("pythia-70m")
    assert time.perf_counter() - t < 60  # generous: the point is no hang
    msg = str(e.value)
    assert "EleutherAI/pythia-70m" in msg and "not reachable" in msg and "'tiny'" in msg


def test_hub_corpus_without_network_fails_fast(offline):
    with pytest.raises(HubUnavailableError, match="monology/pile-uncopyrighted.*tiny"):
        load_corpus("pythia-70m", "eval")


def test_hub_reachable_really_probes(monkeypatch):
    import socket

    from bigramlab.worlds import hub
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def refuse(*a, **k):
        raise OSError("no route")
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert hub.hub_reachable() is False

    class Conn:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: Conn())
    assert hub.hub_reachable() is True


def test_unknown_checkpoint_lists_valid_ones():
    from bigramlab.worlds.loading import UnknownCheckpointError
    with pytest.raises(UnknownCheckpointError, match="step143000"):
        load_model("pythia-70m", checkpoint="step7")
