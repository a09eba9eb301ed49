"""Base models from a hub: list, check and download what training and export need, into the standard cache.

- :mod:`.listing`   what a repo holds and which of its files ftwiz needs (safetensors only, never pickle)
- :mod:`.errors`    the hub's exceptions as FtwizErrors with a fix (gated, missing, offline, unreachable)
- :mod:`.preflight` before downloading: sizes, free disk (with the later merge/GGUF), GPU fit
- :mod:`.download`  one file into the Hugging Face cache, resumable across cancels, with progress
- :mod:`.pull`      the whole pull: listing -> preflight -> files -> pinned commit
- :mod:`.pin`       the commit a run trained on, and the resume check against the cache
- :mod:`.modelscope` the same from ModelScope (optional extra ``ftwiz[modelscope]``)

Everything honours huggingface-hub's own settings (HF_HOME, HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN,
HF_HUB_OFFLINE), read when a pull starts rather than when a module is imported.
"""
