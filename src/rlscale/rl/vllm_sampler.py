"""A `Sampler` on vLLM (the `vllm` extra; never imported by CI unless vLLM is installed).

The engine is colocated with the trainer, in the trainer's process (as TRL's colocate mode and
verl's hybrid engine): before each sampling call the policy's current weights are loaded into
vLLM's model in place. vLLM ≥ 0.10 runs its engine core in a separate process by default, where
the trainer cannot reach the model; `VLLM_ENABLE_V1_MULTIPROCESSING=0` keeps it in this one.
Weights go in through the worker's `reload_weights` (which redoes vLLM's post-load processing,
needed where it repacks weights, as on CPU), else through the model's `load_weights` (older
engines, GPU). Log-probs are vLLM's `processed_logprobs` (after temperature, and after top-p when
top_p < 1), the distribution the tokens were drawn from.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rlscale.rl.sampling import Completion, FinishReason, SamplingParams


class VLLMSampler:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        gpu_memory_utilization: float = 0.3,
        max_model_len: int | None = None,
        enforce_eager: bool = False,
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError("the vLLM sampler needs the `vllm` extra") from exc
        # the engine core in this process: the trainer must reach its model to update it
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        self.model, self.tokenizer = model, tokenizer
        self.llm = LLM(
            model=model.name_or_path,
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            logprobs_mode="processed_logprobs",
            enable_prefix_caching=True,
            enforce_eager=enforce_eager,
        )

    def _sync(self) -> None:
        """The policy's current weights into vLLM, and no cached prefixes computed with the old
        ones."""
        weights = [(name, tensor.detach()) for name, tensor in self.model.state_dict().items()]
        try:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        except (AttributeError, TypeError, NotImplementedError):  # engines before reload_weights
            executor = self.llm.llm_engine.model_executor
            executor.driver_worker.worker.model_runner.model.load_weights(weights)
        self.llm.reset_prefix_cache()

    def sample(
        self, prompts: Sequence[Sequence[int]], params: SamplingParams, seed: int
    ) -> list[Completion]:
        from vllm import SamplingParams as VParams
        from vllm.inputs import TokensPrompt

        self._sync()
        vparams = VParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            include_stop_str_in_output=True,
            seed=seed,
            logprobs=0,
        )
        requests = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        outputs = self.llm.generate(requests, vparams, use_tqdm=False)
        out = []
        for prompt, request in zip(prompts, outputs, strict=True):
            for choice in request.outputs:
                ids = tuple(choice.token_ids)
                logps = tuple(
                    float(step[token].logprob)
                    for step, token in zip(choice.logprobs or [], ids, strict=True)
                )
                finish: FinishReason = "length" if choice.finish_reason == "length" else "stop"
                out.append(Completion(tuple(prompt), ids, logps, choice.text, finish))
        return out
