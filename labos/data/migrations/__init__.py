"""Alembic migrations of the labos store (run by :func:`labos.data.schema.migrate`, never by hand)."""
