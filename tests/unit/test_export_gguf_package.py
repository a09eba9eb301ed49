"""gguf-py registered without its model-card reader: an export never loads PyYAML or gguf.metadata, and every
name of the package is still the object a plain ``import gguf`` gives (the oracle: a fresh interpreter's)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PLAIN = """
import json, gguf
print(json.dumps({n: f"{type(v).__name__}:{getattr(v, '__module__', '')}:{getattr(v, '__qualname__', n)}"
                  for n, v in vars(gguf).items() if not n.startswith('__')}))
"""

LAZY = """
import json, sys
import ftwiz.core.export  # registers gguf
import gguf
from ftwiz.core.export.convert import plan_tensors  # noqa: F401 - the export's modules, as an export imports them
early = {n: id(getattr(gguf, n)) for n in ("GGUFWriter", "GGMLQuantizationType", "MODEL_ARCH", "SpecialVocab",
                                           "get_tensor_name_map", "quant_shape_to_byte_shape", "GGUFValueType")}
loaded = sorted(m for m in ("yaml", "gguf.metadata", "gguf.gguf_reader", "gguf.utility") if m in sys.modules)
reader = gguf.GGUFReader  # a name the writer's modules do not have: the whole package is loaded now
same = all(id(getattr(gguf, n)) == i for n, i in early.items())
print(json.dumps({"loaded_before": loaded, "same": same, "reader": reader.__module__,
                  "names": {n: f"{type(v).__name__}:{getattr(v, '__module__', '')}:{getattr(v, '__qualname__', n)}"
                            for n, v in vars(gguf).items() if not n.startswith('__')}}))
"""


def _run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(done.stdout.splitlines()[-1])


def test_the_export_loads_no_yaml_and_the_package_ends_up_as_import_gguf_gives_it() -> None:
    lazy, plain = _run(LAZY), _run(PLAIN)
    assert lazy["loaded_before"] == []  # 0.035 s of a one-second export not spent
    assert lazy["same"]  # the names the export used are the very objects of the completed package
    assert lazy["reader"] == "gguf.gguf_reader"
    names = {n: v for n, v in lazy["names"].items() if n != "logger"}  # each module's own logger; the last wins
    assert names == {n: v for n, v in plain.items() if n != "logger"}


def test_a_process_that_imported_gguf_first_keeps_it() -> None:
    code = ("import gguf, sys\nfirst = sys.modules['gguf']\nimport ftwiz.core.export\n"
            "print('kept' if sys.modules['gguf'] is first and 'gguf.metadata' in sys.modules else 'replaced')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split()[-1] == "kept"


def test_a_missing_name_is_an_attribute_error() -> None:
    code = ("import ftwiz.core.export, gguf\ntry:\n    gguf.no_such_name\nexcept AttributeError as e:\n"
            "    print('AttributeError', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert "AttributeError module 'gguf' has no attribute 'no_such_name'" in done.stdout


# Another thread (a TUI worker) looks a name up while the package is being loaded: it waits for the lock, and
# finds the name bound once it gets it. The loading thread is simulated by holding the lock here while the
# waiting thread is parked inside the hook (seen in its frame), then loading the package, then releasing it.
WAITER = """
import sys, threading, time
import ftwiz.core.export
import gguf
from ftwiz.core.export import gguf_package

waiting_for, loaded_by = sys.argv[1:3]
got = {}
def look():
    try:
        got["value"] = getattr(gguf, waiting_for).__name__
    except AttributeError as e:
        got["value"] = f"AttributeError: {e}"
with gguf_package._lock:
    t = threading.Thread(target=look)
    t.start()
    while t.is_alive() and getattr(getattr(sys._current_frames().get(t.ident), "f_code", None), "co_name", "") \\
            != "__getattr__":  # until the thread waits for the lock inside the hook
        time.sleep(0.001)
    getattr(gguf, loaded_by)
t.join(30)
print(got["value"], "yaml" in sys.modules)
"""


@pytest.mark.parametrize(("waiting_for", "loaded_by", "expected"), [
    ("GGUFWriter", "GGUFWriter", ["GGUFWriter", "False"]),  # the export thread's writer, still without PyYAML
    ("Metadata", "GGUFReader", ["Metadata", "True"]),  # not "module 'gguf' has no attribute 'Metadata'"
])
def test_a_name_looked_up_by_a_thread_while_another_loads_the_package_is_found(
        waiting_for: str, loaded_by: str, expected: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", WAITER, waiting_for, loaded_by], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.split() == expected


def test_a_package_that_fails_to_complete_says_why_each_time() -> None:
    # PyYAML broken (None in sys.modules makes 'import yaml' fail): the export's writer names still load, and
    # every lookup of a name of the module that failed names the failed import, as a second 'import gguf' would,
    # not "module 'gguf' has no attribute 'Metadata'" from the second time on
    code = ("import sys\nsys.modules['yaml'] = None\nimport ftwiz.core.export, gguf\nprint(gguf.GGUFWriter.__name__)\n"
            "for _ in range(2):\n    try:\n        gguf.Metadata\n    except ImportError as e:\n"
            "        print(type(e).__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["GGUFWriter", "ModuleNotFoundError", "ModuleNotFoundError"]
