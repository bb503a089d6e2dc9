"""Data files shipped with nextbest (read through ``importlib.resources``, never from a path
outside the package): see ``HILLSTROM.md`` for the vendored Hillstrom e-mail experiment."""
