"""Checks of the optional backends: bitsandbytes (4-bit training), llama-cpp-python (GGUF), Ollama.

Each check runs where a broken install cannot hurt the doctor: bitsandbytes and llama-cpp-python load
native libraries, so they are exercised in a subprocess with a timeout; Ollama is an HTTP call with a
short timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from ftwiz.core.hardware.report import BackendStatus
from ftwiz.core.versions import package_version

# A real NF4 round trip and matmul: quantize a weight with bitsandbytes and multiply through
# Linear4bit on the best available device. Proves the native library loads and computes.
BNB_SMOKE = """
import torch, bitsandbytes as bnb
device = "cuda" if torch.cuda.is_available() else "cpu"
layer = bnb.nn.Linear4bit(64, 64, bias=False, quant_type="nf4", compute_dtype=torch.float32).to(device)
x = torch.randn(2, 64, device=device)
y = layer(x)
assert y.shape == (2, 64) and torch.isfinite(y).all()
print(bnb.__version__, device)
"""

LLAMA_SMOKE = "import llama_cpp; print(llama_cpp.__version__)"


def _run_python(code: str, timeout: float) -> tuple[bool, str]:
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f}s"
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()
        return False, tail[-1] if tail else f"exit status {out.returncode}"
    return True, out.stdout.strip()


def check_bitsandbytes(timeout: float = 120.0, code: str = BNB_SMOKE) -> BackendStatus:
    ok, text = _run_python(code, timeout)
    if ok:
        version, _, device = text.partition(" ")
        return BackendStatus(name="bitsandbytes", ok=True, version=version, detail=f"4-bit matmul ok on {device}")
    return BackendStatus(name="bitsandbytes", ok=False, version=package_version("bitsandbytes"), detail=text)


def check_llama_cpp(timeout: float = 60.0) -> BackendStatus:
    ok, text = _run_python(LLAMA_SMOKE, timeout)
    if ok:
        return BackendStatus(name="llama-cpp-python", ok=True, version=text, detail="importable")
    return BackendStatus(name="llama-cpp-python", ok=False, version=package_version("llama_cpp_python"),
                         detail=text)


def ollama_base_url() -> str:
    """OLLAMA_HOST as the Ollama CLI reads it: host, host:port or a full URL; default 127.0.0.1:11434."""
    host = os.environ.get("OLLAMA_HOST", "").strip() or "127.0.0.1:11434"
    if "://" not in host:
        host = f"http://{host}"
    scheme, _, rest = host.partition("://")
    if ":" not in rest.rsplit("]", 1)[-1]:
        rest = f"{rest}:11434"
    return f"{scheme}://{rest}".rstrip("/")


def check_ollama(timeout: float = 2.0) -> BackendStatus:
    import httpx

    url = ollama_base_url()
    on_path = shutil.which("ollama") is not None
    try:
        response = httpx.get(f"{url}/api/version", timeout=timeout)
        response.raise_for_status()
        version = response.json().get("version")
        return BackendStatus(name="ollama", ok=True, version=version, detail=f"running at {url}")
    except (httpx.HTTPError, ValueError) as exc:
        where = "installed but not running" if on_path else "not installed"
        return BackendStatus(name="ollama", ok=False, detail=f"{where} ({_in_words(exc, url, timeout)})")


def _in_words(exc: Exception, url: str, timeout: float) -> str:
    """What an HTTP failure means for a user, instead of the exception's class name (ConnectError...)."""
    import httpx

    if isinstance(exc, httpx.ConnectError):
        return f"nothing answers at {url}"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer from {url} within {timeout:.0f} s"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{url} answered HTTP {exc.response.status_code}; is it Ollama?"
    if isinstance(exc, ValueError):
        return f"{url} did not answer like Ollama"
    return f"{url}: {exc}"
