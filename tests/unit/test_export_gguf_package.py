"""gguf-py registered without its model-card reader: an export never loads PyYAML or gguf.metadata, and every
name of the package is still the object a plain ``import gguf`` gives (the oracle: a fresh interpreter's)."""

from __future__ import annotations

import json
import subprocess
import sys

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
