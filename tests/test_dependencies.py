"""The installed runtime closure: every licence allowed, no GPL/AGPL, and docs/DEPENDENCIES.md true to it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

ALLOWED = re.compile(r"MIT|BSD|Apache|ISC|PSF|Python Software Foundation|MPL|Mozilla|Zlib|CC0|Unlicense|HPND|CNRI"
                     r"|LLVM", re.I)
FORBIDDEN = re.compile(r"\bA?GPL|GNU (Affero )?General Public", re.I)
LESSER = re.compile(r"LGPL|Lesser General Public", re.I)
# Distributions whose licence is not one of ALLOWED, each named with why it may stay.
EXCEPTIONS = {
    # torch's PyPI wheel for Linux x86_64 requires the CUDA runtime libraries (there is no CPU-only
    # torch wheel on PyPI); NVIDIA's licence permits redistribution; EmoRoute runs them on no GPU.
    **{name: "NVIDIA proprietary, redistributable: required by torch's PyPI wheel" for name in (
        "nvidia-cublas", "nvidia-cuda-cupti", "nvidia-cuda-nvrtc", "nvidia-cuda-runtime", "nvidia-cudnn-cu13",
        "nvidia-cufft", "nvidia-cufile", "nvidia-curand", "nvidia-cusolver", "nvidia-cusparse",
        "nvidia-cusparselt-cu13", "nvidia-nccl-cu13", "nvidia-nvjitlink", "nvidia-nvshmem-cu13", "nvidia-nvtx",
        "cuda-toolkit")},
}
# LGPL is allowed only when named here (dynamic linking, unmodified).
LGPL_ALLOWED: dict[str, str] = {}


def runtime_closure() -> dict[str, metadata.Distribution]:
    """Return every distribution ``emoroute`` needs to run (no extras), by canonical name."""
    found: dict[str, metadata.Distribution] = {}
    todo = ["emoroute"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        dist = metadata.distribution(name)
        found[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def licence_of(dist: metadata.Distribution) -> str:
    """Return what a distribution says its licence is: the SPDX expression, the field, the classifiers."""
    meta = dist.metadata
    field = (meta.get("License") or "").strip().splitlines()
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License")]
    return " | ".join(x for x in [meta.get("License-Expression") or "", field[0][:120] if field else "",
                                  *classifiers] if x)


def test_no_gpl_or_agpl_and_every_licence_is_allowed_or_named():
    problems = []
    for name, dist in sorted(runtime_closure().items()):
        licence = licence_of(dist)
        if name in EXCEPTIONS or name == "emoroute":
            continue
        if LESSER.search(licence):
            if name not in LGPL_ALLOWED:
                problems.append(f"{name}: LGPL not named in LGPL_ALLOWED ({licence})")
        elif FORBIDDEN.search(licence):
            problems.append(f"{name}: {licence}")
        elif not ALLOWED.search(licence):
            problems.append(f"{name}: licence {licence!r} is not on the allow-list")
    assert problems == []


def test_packages_emoroute_never_uses_are_not_installed_with_it():
    closure = runtime_closure()
    for unwanted in ("aait", "pymupdf", "unidecode", "spacy", "optuna", "alembic", "chonkie", "gputil",
                     "python-docx", "librosa"):
        assert unwanted not in closure, unwanted


def test_docs_list_every_top_level_dependency_with_why_and_the_whole_closure():
    doc = (REPO / "docs" / "DEPENDENCIES.md").read_text()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    top = {canonicalize_name(Requirement(r).name) for r in pyproject["project"]["dependencies"]}
    top_section = doc.split("## Top-level runtime dependencies", 1)[1].split("## The whole closure", 1)[0]
    rows = {canonicalize_name(m.group(1)): m.group(2).strip()
            for m in re.finditer(r"^\| `([^`]+)` \|[^|]*\| ([^|]+) \|$", top_section, re.M)}
    assert top <= set(rows), sorted(top - set(rows))
    assert all(len(why) > 10 for name, why in rows.items() if name in top)
    listed = set(re.findall(r"`([a-z0-9][a-z0-9._-]*)`", doc.split("## The whole closure", 1)[1]))
    closure = set(runtime_closure()) - {"emoroute"}
    assert {canonicalize_name(n) for n in listed} == closure
