"""EmoRoute application shell: settings, app factory, dependencies and CLI."""

__version__ = "0.1.0"
