"""The hub's failures in words a user can act on: gated, missing, offline, unreachable."""

from __future__ import annotations

import difflib
import os

from ftwiz.core.errors import FtwizError

MIRROR_HINT = ("behind a firewall or in mainland China, set HF_ENDPOINT=https://hf-mirror.com, "
               "or pull from ModelScope with --source modelscope")


def known_names() -> list[str]:
    """Hub ids a typo is compared with: the curated list and what is already in the cache."""
    from ftwiz.core.planner.catalog import CURATED, cached_model_ids

    return sorted(set(CURATED) | set(cached_model_ids()))


def closest_names(repo_id: str, names: list[str] | None = None) -> list[str]:
    """Up to three known ids closest to ``repo_id`` (case-insensitive), best first."""
    names = known_names() if names is None else names
    lowered = {name.lower(): name for name in names}
    hits = difflib.get_close_matches(repo_id.lower(), list(lowered), n=3, cutoff=0.6)
    # "qwen2.5-1.5b-instruct" without its org: compare the model part alone too
    tail = repo_id.rsplit("/", 1)[-1].lower()
    hits += [key for key in lowered if key.rsplit("/", 1)[-1] == tail and key not in hits]
    return [lowered[key] for key in hits[:3]]


def gated_error(repo_id: str, endpoint: str) -> FtwizError:
    has_token = bool(os.environ.get("HF_TOKEN"))
    if not has_token:
        try:
            from huggingface_hub import get_token

            has_token = bool(get_token())
        except Exception:  # an unreadable token file is the same as none here
            has_token = False
    why = ("your token has no access to it yet (approval can take a while)" if has_token
           else "downloading it needs a token from an account that accepted its licence")
    return FtwizError(f"{repo_id} is a gated model: {why}",
                      fix=f"accept the licence at {endpoint}/{repo_id}, then `hf auth login` or set HF_TOKEN "
                          f"(a read token from {endpoint}/settings/tokens)")


def hub_error(exc: BaseException, repo_id: str, revision: str | None = None) -> FtwizError:
    """``exc`` from huggingface-hub (or its HTTP client) as one FtwizError with a fix."""
    from ftwiz.core.hub.listing import hub_endpoint
    from huggingface_hub import errors

    endpoint = hub_endpoint()
    if isinstance(exc, FtwizError):
        return exc
    if isinstance(exc, errors.GatedRepoError):  # a subclass of RepositoryNotFoundError: checked first
        return gated_error(repo_id, endpoint)
    if isinstance(exc, errors.RevisionNotFoundError):
        return FtwizError(f"{repo_id} has no revision '{revision}'",
                          fix="give a branch, tag or commit of that repo (--revision), or leave it out for main")
    if isinstance(exc, errors.RepositoryNotFoundError):
        close = closest_names(repo_id)
        fix = (f"did you mean {' or '.join(close)}?" if close
               else "check the spelling (Org/Model, as on the model's page); a private repo needs `hf auth login`")
        return FtwizError(f"no model '{repo_id}' on {endpoint}", fix=fix)
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return FtwizError(f"offline mode is on (HF_HUB_OFFLINE), so {repo_id} cannot be downloaded",
                          fix="unset HF_HUB_OFFLINE to download, or pick a model already in the cache")
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        return FtwizError(f"the hub at {endpoint} answered {status} for {repo_id}: {str(exc).splitlines()[0]}",
                          fix="try again later; if it persists, " + MIRROR_HINT)
    module = type(exc).__module__
    if isinstance(exc, (ConnectionError, TimeoutError)) or module.startswith(("httpx", "httpcore")):
        return FtwizError(f"cannot reach {endpoint}: {type(exc).__name__}: {exc}",
                          fix="check the connection and run it again (finished files are kept); " + MIRROR_HINT)
    return FtwizError(f"downloading {repo_id} failed: {type(exc).__name__}: {exc}",
                      fix="run it again (finished files and partial downloads are kept)")
