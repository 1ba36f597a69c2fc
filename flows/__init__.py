"""Prefect flows wiring labos's library into closed loops.

Import :mod:`flows.settings` first and call ``configure_prefect``; then
``from flows.campaign import campaign_flow``.
"""
