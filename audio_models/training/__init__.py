"""Training and evaluation of the speech-emotion model (reads corpora from a path)."""
