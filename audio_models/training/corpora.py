"""Listing the emotional-speech corpora with EmoRoute's 4-class labels.

Label mapping (documented in docs/MODEL_CARD.md):
- RAVDESS: 01 neutral and 02 calm -> neutral; 03 happy; 04 sad; 05 angry.
  Fearful, disgust and surprised are left out.
- TESS: neutral, happy, sad, angry. Fear, disgust and pleasant surprise are left out.
- nEMO (Polish): anger -> angry, happiness -> happy, neutral, sadness -> sad. Fear and surprise
  are left out.
- ASED (Amharic): angry, happy, neutral, sad. Fearful is left out. A speaker is (gender, speaker
  number): the corpus's file names pair a few numbers with both genders.

Held-out speakers for the multi-corpus evaluation (issue #21), fixed here before any training on
these corpora: nEMO's female and male speaker last in alphabetical order among those with a full
set of recordings; ASED's speakers with at least 40 labelled clips, sorted, every second or fourth
one until five women and five men (496 clips of the 4 classes; nEMO's two: 719).

Five more corpora (issue #28; ``shared/data`` README), emotions already named in their
``labels.tsv`` and mapped to the 4 classes (fear, disgust and surprise left out; AESDD has no
neutral). Their held-out speakers, fixed here on 2026-12-06 before any training on them: BanglaSER
every fifth speaker (S05, S10, S15, S20, S25, S30); EYASE, EMOVO the third woman and the third man;
SAVEE KL; AESDD S06.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

LABELS: tuple[str, ...] = ("angry", "happy", "neutral", "sad")

RAVDESS_EMOTIONS = {"01": "neutral", "02": "neutral", "03": "happy", "04": "sad", "05": "angry"}
TESS_EMOTIONS = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry"}
RAVDESS_STATEMENTS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
NEMO_EMOTIONS = {"anger": "angry", "happiness": "happy", "neutral": "neutral", "sadness": "sad"}
ASED_EMOTIONS = {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad"}
NEMO_HELD_OUT = ("nemo-KD0", "nemo-WR0")
NEW_CORPORA: tuple[str, ...] = ("bangla", "eyase", "emovo", "savee", "aesdd")
NEW_EMOTIONS = {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad"}
NEW_HELD_OUT = {"bangla": ("bangla-S05", "bangla-S10", "bangla-S15", "bangla-S20", "bangla-S25", "bangla-S30"),
                "eyase": ("eyase-Female03", "eyase-Male03"), "emovo": ("emovo-f3", "emovo-m3"),
                "savee": ("savee-KL",), "aesdd": ("aesdd-S06",)}
ALL_CORPORA: tuple[str, ...] = ("ravdess", "tess", "nemo", "ased", *NEW_CORPORA)
ASED_HELD_OUT = ("ased-f01", "ased-f11", "ased-f21", "ased-f25", "ased-f29",
                 "ased-m04", "ased-m26", "ased-m41", "ased-m52", "ased-m56")


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


def _labelled_rows(root: Path, corpus: str) -> list[dict[str, str]]:
    path = root / corpus / "labels.tsv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def list_nemo(root: Path) -> list[Clip]:
    """Return nEMO clips (Polish) that map to the 4 classes, with their sentences."""
    return [Clip(path=root / "nemo" / row["file"], corpus="nemo", speaker=f"nemo-{row['speaker']}",
                 label=NEMO_EMOTIONS[row["emotion"]], intensity="normal", transcript=row.get("text", ""))
            for row in _labelled_rows(root, "nemo") if row["emotion"] in NEMO_EMOTIONS]


def list_ased(root: Path) -> list[Clip]:
    """Return ASED clips (Amharic) that map to the 4 classes; a speaker is (gender, number)."""
    return [Clip(path=root / "ased" / row["file"], corpus="ased",
                 speaker=f"ased-{row['gender'][:1]}{row['speaker'].removeprefix('S')}",
                 label=ASED_EMOTIONS[row["emotion"]], intensity="normal", transcript="")
            for row in _labelled_rows(root, "ased") if row["emotion"] in ASED_EMOTIONS]


def list_labelled(root: Path, corpus: str) -> list[Clip]:
    """Return the 4-class clips of one of the NEW_CORPORA from its ``labels.tsv``."""
    return [Clip(path=root / corpus / row["file"], corpus=corpus, speaker=f"{corpus}-{row['speaker']}",
                 label=NEW_EMOTIONS[row["emotion"]], intensity="normal", transcript="")
            for row in _labelled_rows(root, corpus) if row["emotion"] in NEW_EMOTIONS]


def held_out_speakers() -> dict[str, tuple[str, ...]]:
    """Return every corpus's held-out speakers (TESS has two speakers and none held out)."""
    return {"ravdess": tuple(sorted(ravdess_speakers([1, 2, 23, 24]))), "nemo": NEMO_HELD_OUT,
            "ased": ASED_HELD_OUT, **NEW_HELD_OUT}


def list_corpora(root: Path, corpora: tuple[str, ...] = ("ravdess", "tess")) -> list[Clip]:
    """Return the labelled clips of the named corpora under ``root``."""
    listers = {"ravdess": list_ravdess, "tess": list_tess, "nemo": list_nemo, "ased": list_ased}
    unknown = set(corpora) - set(listers) - set(NEW_CORPORA)
    if unknown:
        raise ValueError(f"unknown corpus {sorted(unknown)}; known: {sorted([*listers, *NEW_CORPORA])}")
    clips: list[Clip] = []
    for name in corpora:
        found = listers[name](root) if name in listers else list_labelled(root, name)
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
