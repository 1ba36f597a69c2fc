"""LLM-agent planners (hypothesis generation, proposal critique) live here.

They implement the same :class:`labos.planners.base.Planner` protocol as the Bayesian
planners and register through the same ``labos.planners`` registry.
"""
