"""snap: list, diff, verify, rebuild and roll back the Pipfile.lock environments of a repo."""

__version__ = "0.1.0"
