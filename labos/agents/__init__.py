"""LLM-agent planners: a language model states hypotheses and proposes experiments under the campaign's rules.

The ``agent`` planner (:mod:`labos.agents.planner`) implements the same planner protocol
as the Bayesian planners and registers under the same registry. Its model is reached
through a small backend interface (:mod:`labos.agents.backends`: llama.cpp in-process or
any OpenAI-compatible endpoint); replies are constrained by a grammar generated from the
search space (:mod:`labos.agents.grammar`) and always validated against it
(:mod:`labos.agents.prompt`). Nothing here talks to devices: a model only ever proposes
parameter values, which pass the same safety gate as any planner's.
"""
