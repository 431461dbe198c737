"""The intent encoder in ONNX Runtime: the vectors PyTorch gives, an export made once and kept, a damaged one remade."""

from pathlib import Path

import numpy as np
import pytest

from router.model_bundles import MINILM, encoder_dir
from router.onnx_encoder import export_key, load_onnx_encoder
from router.semantic import SemanticModelError, SentenceEncoder

# caller requests as a transcript reads them, of different lengths so the batch is padded
SENTENCES = ["I want to cancel my contract.",
             "hi yeah i'm calling because you charged me twice for the same bill last month and nobody has "
             "called me back",
             "let me speak to someone senior",
             "how much is your fibre broadband",
             "I don't want to cancel, I just want a cheaper tariff."]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def torch_encoder(cache: Path) -> SentenceEncoder:
    return SentenceEncoder(cache_dir=cache, backend="torch")


def test_onnx_runtime_gives_the_vectors_pytorch_gives(cache: Path, torch_encoder: SentenceEncoder) -> None:
    fast = SentenceEncoder(cache_dir=cache)
    assert fast.backend == "onnx"
    assert torch_encoder.backend == "torch"
    together = fast.encode(SENTENCES)
    assert together.shape == (len(SENTENCES), 384)
    assert np.abs(together - torch_encoder.encode(SENTENCES)).max() < 1e-5
    # padding in a batch changes nothing: each sentence alone reads the same
    alone = np.vstack([fast.encode([s]) for s in SENTENCES])
    assert np.abs(together - alone).max() < 1e-5
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_the_export_is_kept_and_a_later_start_needs_no_pytorch(cache: Path) -> None:
    SentenceEncoder(cache_dir=cache)  # exported here unless the test above did
    path = cache / "encoders" / f"{MINILM}-{export_key(encoder_dir(MINILM))}.onnx"
    assert path.stat().st_size > 80_000_000

    def no_torch() -> None:
        raise AssertionError("the kept export should have been loaded")

    loaded = load_onnx_encoder(MINILM, encoder_dir(MINILM), cache / "encoders", no_torch)
    assert loaded.encode(SENTENCES[:1]).shape == (1, 384)


def test_a_damaged_export_is_made_again(cache: Path, torch_encoder: SentenceEncoder) -> None:
    SentenceEncoder(cache_dir=cache)
    path = cache / "encoders" / f"{MINILM}-{export_key(encoder_dir(MINILM))}.onnx"
    path.write_bytes(path.read_bytes()[: 1 << 20])  # cut short, as by a full disk
    again = SentenceEncoder(cache_dir=cache)
    assert again.backend == "onnx"
    assert path.stat().st_size > 80_000_000
    assert np.abs(again.encode(SENTENCES) - torch_encoder.encode(SENTENCES)).max() < 1e-5


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(SemanticModelError, match="unknown encoder backend 'tensorflow'"):
        SentenceEncoder(backend="tensorflow")
