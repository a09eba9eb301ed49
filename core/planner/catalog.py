"""Which models could this machine fine-tune? The demo, the local Hugging Face cache, and a curated list.

The curated entries carry the shape fields of their published config.json (facts, not weights), so the
planner can say "fits with QLoRA" before anything is downloaded. Models in the cache are read from
their own config.json. Nothing here touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ftwiz.core.errors import FtwizError
from ftwiz.core.hardware.report import HardwareReport
from ftwiz.core.planner.spec import ModelSpec, load_model_spec, spec_from_config

_QWEN25_15B = {"model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
               "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True}
CURATED: dict[str, dict] = {
    "Qwen/Qwen3-0.6B": {"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072,
                        "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
                        "head_dim": 128, "vocab_size": 151936, "tie_word_embeddings": True},
    "Qwen/Qwen2.5-1.5B-Instruct": _QWEN25_15B,
    "Qwen/Qwen2.5-Coder-1.5B-Instruct": _QWEN25_15B,
    "Qwen/Qwen2.5-7B-Instruct": {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
                                 "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
                                 "vocab_size": 152064, "tie_word_embeddings": False},
    "meta-llama/Llama-3.1-8B-Instruct": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
                                         "num_hidden_layers": 32, "num_attention_heads": 32,
                                         "num_key_value_heads": 8, "vocab_size": 128256,
                                         "tie_word_embeddings": False},
}

# Licence of each curated model as its model card states it, and whether the hub gates its files behind an
# accepted licence (then `ftwiz pull` needs a token: see ftwiz.core.hub.errors).
CURATED_LICENCES: dict[str, tuple[str, bool]] = {
    "Qwen/Qwen3-0.6B": ("apache-2.0", False),
    "Qwen/Qwen2.5-1.5B-Instruct": ("apache-2.0", False),
    "Qwen/Qwen2.5-Coder-1.5B-Instruct": ("apache-2.0", False),
    "Qwen/Qwen2.5-7B-Instruct": ("apache-2.0", False),
    "meta-llama/Llama-3.1-8B-Instruct": ("llama3.1", True),
}
BF16_BYTES = 2  # curated checkpoints are published in bfloat16: their size on disk is about 2 bytes a parameter

DEMO_VOCAB = 732  # the demo tokenizer's size (its BPE merges stop below the spec's 1024 on the shipped corpus)
# The workload the time column is for when the user's data is not measured yet: 1,000 samples of 256 tokens.
REFERENCE_SAMPLES, REFERENCE_TOKENS = 1000, 256
SLOW_ON_CPU_PARAMS = 1e9  # the doctor's line too: on a CPU, 1B+ models are for a machine with a GPU


@dataclass(frozen=True)
class ModelChoice:
    name: str  # what goes into the recipe's model_name_or_path
    where: str  # "built in", "HF cache", "not downloaded"
    parameters: int
    fits: bool
    method: str
    peak_bytes: int
    device: str = ""                        # cpu, cuda, mps: where it would train
    seconds_per_epoch: float | None = None  # for the reference workload (or the user's data when given)
    disk_bytes: int | None = None           # in the cache: measured; not downloaded: bf16 estimate
    licence: str | None = None
    gated: bool = False                     # the hub wants an accepted licence and a token

    @property
    def downloaded(self) -> bool:
        return self.where in ("HF cache", "built in")

    @property
    def slow(self) -> bool:
        """Fits in memory but would train on the CPU at 1B+ parameters: what the doctor advises against."""
        return self.fits and self.device == "cpu" and self.parameters >= SLOW_ON_CPU_PARAMS

    def verdict(self) -> str:
        """One judgement, the same as the doctor's: fits / fits but slow on CPU (GPU advised) / does not fit."""
        if not self.fits:
            return f"no ({self.peak_bytes / 2**30:.1f} GiB)"
        if self.slow:
            return f"slow on CPU, {self.method} ({duration(self.seconds_per_epoch)}/epoch): a GPU is advised"
        return f"yes, {self.method} ({duration(self.seconds_per_epoch)}/epoch)"


def duration(seconds: float | None) -> str:
    """~40 s, ~12 min, ~3.5 h, ~2 days: rough, as the estimate is."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"~{max(seconds, 1):.0f} s"
    if seconds < 90 * 60:
        return f"~{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"~{seconds / 3600:.1f} h"
    return f"~{seconds / 86400:.0f} days"


def cached_model_ids() -> list[str]:
    """Causal-LM repos in the local Hugging Face cache (those with a config.json snapshot)."""
    try:
        from ftwiz.core.paths import hf_cache_dir
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(hf_cache_dir())  # HF_HUB_CACHE / HF_HOME as they are now, not at import
    except Exception:  # no cache yet, or an unreadable one: nothing cached to offer
        return []
    ids = []
    for repo in info.repos:
        if repo.repo_type == "model" and any(
                f.file_name == "config.json" for rev in repo.revisions for f in rev.files):
            ids.append(repo.repo_id)
    return sorted(ids)


def cached_sizes() -> dict[str, int]:
    """Bytes on disk of each model repo in the local Hugging Face cache."""
    try:
        from ftwiz.core.paths import hf_cache_dir
        from huggingface_hub import scan_cache_dir

        return {repo.repo_id: repo.size_on_disk for repo in scan_cache_dir(hf_cache_dir()).repos
                if repo.repo_type == "model"}
    except Exception:  # no cache yet, or an unreadable one
        return {}


def curated_spec(repo_id: str) -> ModelSpec | None:
    """The shape of a curated model from its built-in config.json copy (None when ``repo_id`` is not curated)."""
    config = CURATED.get(repo_id)
    return spec_from_config(config, f"ftwiz's built-in config for {repo_id}") if config is not None else None


def _choice(name: str, where: str, spec: ModelSpec, hardware: HardwareReport | None, cutoff_len: int,
            lengths: list[int] | None = None, disk_bytes: int | None = None) -> ModelChoice:
    from ftwiz.core.planner.recommend import plan_recipe
    from ftwiz.core.recipe import parse_recipe

    lengths = lengths or [min(REFERENCE_TOKENS, cutoff_len)] * REFERENCE_SAMPLES
    plan = plan_recipe(parse_recipe({"model_name_or_path": name, "dataset": ["demo"], "cutoff_len": cutoff_len}),
                       hardware, spec=spec, seq_len=cutoff_len, dataset_lengths=lengths)
    licence, gated = CURATED_LICENCES.get(name, (None, False))
    return ModelChoice(name, where, spec.total_params, plan.fits, plan.method, plan.estimate.peak_bytes,
                       device=plan.device, seconds_per_epoch=plan.est_seconds_per_epoch,
                       disk_bytes=disk_bytes, licence=licence, gated=gated)


def model_choices(hardware: HardwareReport | None, *, cutoff_len: int = 1024,
                  demo_dir: Path | None = None) -> list[ModelChoice]:
    """The demo first, then cached models, then curated ones not yet downloaded; each planned for this machine."""
    choices: list[ModelChoice] = []
    if demo_dir is not None and (demo_dir / "config.json").exists():
        choices.append(_choice("demo", "built in", load_model_spec(demo_dir), hardware, min(cutoff_len, 256)))
    else:
        from ftwiz.core.tiny.demo import DEMO_SPEC

        demo = {"model_type": DEMO_SPEC.arch, "hidden_size": DEMO_SPEC.hidden_size,
                "intermediate_size": DEMO_SPEC.intermediate_size or 2 * DEMO_SPEC.hidden_size,
                "num_hidden_layers": DEMO_SPEC.num_layers, "num_attention_heads": DEMO_SPEC.num_heads,
                "num_key_value_heads": DEMO_SPEC.num_kv_heads, "vocab_size": DEMO_VOCAB, "tie_word_embeddings": True}
        choices.append(_choice("demo", "built in", spec_from_config(demo), hardware, min(cutoff_len, 256)))
    cached = cached_model_ids()
    sizes = cached_sizes() if cached else {}
    for repo_id in cached:
        try:
            choices.append(_choice(repo_id, "HF cache", load_model_spec(repo_id), hardware, cutoff_len,
                                   disk_bytes=sizes.get(repo_id)))
        except FtwizError:
            continue  # not a causal LM config we can read: not offered
    for repo_id in CURATED:
        if repo_id not in cached:
            spec = curated_spec(repo_id)
            choices.append(_choice(repo_id, "not downloaded", spec, hardware, cutoff_len,
                                   disk_bytes=spec.total_params * BF16_BYTES))
    return choices
