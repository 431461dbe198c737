"""Listing the emotional-speech corpora with EmoRoute's 4-class labels.

Label mapping (documented in docs/MODEL_CARD.md):
- RAVDESS: 01 neutral and 02 calm -> neutral; 03 happy; 04 sad; 05 angry.
  Fearful, disgust and surprised are left out.
- TESS: neutral, happy, sad, angry. Fear, disgust and pleasant surprise are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LABELS: tuple[str, ...] = ("angry", "happy", "neutral", "sad")

RAVDESS_EMOTIONS = {"01": "neutral", "02": "neutral", "03": "happy", "04": "sad", "05": "angry"}
TESS_EMOTIONS = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry"}
RAVDESS_STATEMENTS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}


@dataclass(frozen=True)
class Clip:
    """One labelled corpus clip."""

    path: Path
    corpus: str
    speaker: str
    label: str
    intensity: str
    transcript: str

    @property
    def key(self) -> str:
        """Return a stable identifier relative to the data root."""
        return f"{self.corpus}/{self.path.parent.name}/{self.path.stem}"


def list_ravdess(root: Path) -> list[Clip]:
    """Return RAVDESS speech clips that map to the 4 classes."""
    clips = []
    for path in sorted((root / "ravdess").glob("Actor_*/*.flac")):
        parts = path.stem.split("-")
        if len(parts) != 7 or parts[2] not in RAVDESS_EMOTIONS:
            continue
        clips.append(
            Clip(
                path=path,
                corpus="ravdess",
                speaker=f"ravdess-{parts[6]}",
                label=RAVDESS_EMOTIONS[parts[2]],
                intensity="strong" if parts[3] == "02" else "normal",
                transcript=RAVDESS_STATEMENTS.get(parts[4], ""),
            )
        )
    return clips


def list_tess(root: Path) -> list[Clip]:
    """Return TESS clips that map to the 4 classes."""
    clips = []
    for path in sorted((root / "tess").glob("*/*.flac")):
        speaker, *word_parts, emotion = path.stem.split("_")
        if emotion not in TESS_EMOTIONS:
            continue
        clips.append(
            Clip(
                path=path,
                corpus="tess",
                speaker=f"tess-{speaker}",
                label=TESS_EMOTIONS[emotion],
                intensity="normal",
                transcript=f"say the word {' '.join(word_parts)}",
            )
        )
    return clips


def list_corpora(root: Path, corpora: tuple[str, ...] = ("ravdess", "tess")) -> list[Clip]:
    """Return the labelled clips of the named corpora under ``root``."""
    listers = {"ravdess": list_ravdess, "tess": list_tess}
    unknown = set(corpora) - set(listers)
    if unknown:
        raise ValueError(f"unknown corpus {sorted(unknown)}; known: {sorted(listers)}")
    clips: list[Clip] = []
    for name in corpora:
        found = listers[name](root)
        if not found:
            raise FileNotFoundError(f"no {name} clips under {root / name} (see shared/data/README.md)")
        clips.extend(found)
    return clips


def ravdess_speakers(actors: list[int]) -> set[str]:
    """Return speaker ids for RAVDESS actor numbers."""
    return {f"ravdess-{a:02d}" for a in actors}


def babble_clips(clips: list[Clip], train_speakers: list[str], use: str) -> list[Clip]:
    """Return every 7th clip of half the training speakers, as babble noise.

    ``use`` "training" takes the first half of the sorted speakers (mixed into training
    variants), "evaluation" the second half (mixed into test clips), so the two never share a voice.
    """
    speakers = sorted(train_speakers)
    half = set(speakers[: len(speakers) // 2] if use == "training" else speakers[len(speakers) // 2 :])
    return [c for c in clips if c.speaker in half][::7]
