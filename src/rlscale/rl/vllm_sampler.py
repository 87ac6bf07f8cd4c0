"""A `Sampler` on vLLM for GPU runs (the `vllm` extra; never imported by CI or on CPU).

The engine is colocated with the trainer on the same GPU (as TRL's colocate mode and verl's hybrid
engine): before each sampling call the policy's current weights are loaded into vLLM's model in
place. Log-probs are vLLM's `processed_logprobs` (after temperature, and after top-p when
top_p < 1), the distribution the tokens were drawn from.
"""

from __future__ import annotations

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
    ) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError("the vLLM sampler needs the `vllm` extra and a GPU") from exc
        self.model, self.tokenizer = model, tokenizer
        self.llm = LLM(
            model=model.name_or_path,
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            logprobs_mode="processed_logprobs",
            enable_prefix_caching=True,
        )

    def _sync(self) -> None:
        """The policy's current weights into vLLM (a device-to-device copy; cheap next to
        sampling), and no cached prefixes computed with the old ones."""
        runner = self.llm.llm_engine.model_executor.driver_worker.model_runner
        runner.model.load_weights(self.model.state_dict().items())
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
