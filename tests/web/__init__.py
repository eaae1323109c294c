"""A package, so that its conftest is ``web.conftest`` and ``conftest`` stays tests/conftest.py."""
