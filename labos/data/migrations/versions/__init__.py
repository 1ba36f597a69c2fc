"""Revisions, oldest first: ``0001`` is the schema labos wrote before migrations existed."""
