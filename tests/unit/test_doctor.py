"""`ftwiz doctor` on recorded real machines (through the probe seam) and on this machine for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftwiz.core.cli import main as cli_main
from ftwiz.core.hardware import HardwareReport, RawProbe, build_report
from ftwiz.core.hardware.backends import check_bitsandbytes, ollama_base_url
from ftwiz.core.hardware.report import BackendStatus

MACHINES = Path(__file__).resolve().parents[1] / "fixtures" / "machines"
GIB = 1024**3
SYSTEM = {"cpu_model": "Test CPU", "cpu_cores": 8, "ram_total_bytes": 32 * GIB, "ram_available_bytes": 20 * GIB,
          "disk_free_bytes": {"/runs": 200 * GIB}, "hf_cache": "/hf", "hf_offline": False}
HEALTHY = [BackendStatus(name="bitsandbytes", ok=True, version="0.49.0"),
           BackendStatus(name="llama-cpp-python", ok=True, version="0.3.16"),
           BackendStatus(name="ollama", ok=True, version="0.12.0")]


def report_for(machine: str, backends: list[BackendStatus] = HEALTHY) -> HardwareReport:
    return build_report(RawProbe.from_json(MACHINES / f"{machine}.json"), SYSTEM, backends)


def problems_text(report: HardwareReport) -> str:
    return "\n".join(f"{p.severity}: {p.what} | {p.fix}" for p in report.problems)


def test_every_recorded_machine_is_there() -> None:
    names = {p.stem for p in MACHINES.glob("*.json")}
    assert {"rtx4060_desktop", "rtx3060_laptop", "rtx4090", "a100_80gb", "two_gpu_cvd1", "apple_m2_pro",
            "amd_rx7900xtx", "old_driver", "no_gpu"} <= names


@pytest.mark.parametrize(("machine", "name", "gib", "bf16"), [
    ("rtx4060_desktop", "NVIDIA GeForce RTX 4060", 8.0, True),
    ("rtx3060_laptop", "NVIDIA GeForce RTX 3060 Laptop GPU", 6.0, True),
    ("rtx4090", "NVIDIA GeForce RTX 4090", 24.0, True),
    ("a100_80gb", "NVIDIA A100-SXM4-80GB", 80.0, True),
])
def test_single_nvidia_cards_are_ready_to_train(machine: str, name: str, gib: float, bf16: bool) -> None:
    report = report_for(machine)
    gpu = report.best_gpu
    assert gpu is not None and gpu.name == name and gpu.vendor == "nvidia"
    assert abs(gpu.total_bytes / GIB - gib) < 0.1
    assert gpu.bf16 is bf16 and gpu.flash_attention_2 is bf16
    assert report.device == "cuda"
    assert report.driver_cuda_version and report.driver_cuda_version.startswith("12.")
    assert not [p for p in report.problems if p.severity == "error"], problems_text(report)


def test_cuda_visible_devices_is_matched_by_uuid_not_nvml_order() -> None:
    # NVML lists the 2080 Ti first (PCI bus order); CUDA's fastest-first order makes device 1 the 2080 Ti
    # too. A naive NVML-index lookup of CUDA_VISIBLE_DEVICES=1 would report the 24 GB RTX 3090 instead.
    report = report_for("two_gpu_cvd1")
    assert [g.name for g in report.gpus] == ["NVIDIA GeForce RTX 2080 Ti"]
    assert report.gpus[0].index == 0
    assert report.gpus[0].bf16 is False  # compute capability 7.5: fp16 only
    assert "no native bf16" in problems_text(report)


def test_old_driver_says_which_driver_to_install() -> None:
    report = report_for("old_driver")
    text = problems_text(report)
    assert "supports CUDA up to 11.4" in text and "built for CUDA 12.1" in text
    assert "525.60.13" in text and "cu118" in text
    assert report.device == "cpu"


def test_cpu_build_of_torch_next_to_an_nvidia_gpu_gets_the_exact_pip_command() -> None:
    text = problems_text(report_for("cpu_only_torch_with_gpu"))
    assert "CPU-only build" in text
    assert "pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu124" in text


def test_apple_silicon_reports_mps_with_unified_memory() -> None:
    report = report_for("apple_m2_pro")
    assert report.device == "mps" and report.mps_available
    assert report.gpus[0].vendor == "apple" and report.gpus[0].total_bytes == 32 * GIB


def test_amd_rocm_card_is_a_cuda_device_for_torch() -> None:
    report = report_for("amd_rx7900xtx")
    gpu = report.gpus[0]
    assert gpu.vendor == "amd" and gpu.name == "AMD Radeon RX 7900 XTX" and gpu.bf16
    assert report.device == "cuda" and report.torch_hip_version


def test_no_gpu_means_cpu_training_with_an_explanation() -> None:
    report = report_for("no_gpu")
    assert report.gpus == [] and report.device == "cpu"
    assert "no GPU found" in problems_text(report)


def test_broken_backends_become_problems_with_fixes() -> None:
    broken = [BackendStatus(name="bitsandbytes", ok=False, detail="libbitsandbytes_cuda124.so not found"),
              BackendStatus(name="llama-cpp-python", ok=False, detail="No module named 'llama_cpp'"),
              BackendStatus(name="ollama", ok=False, detail="not installed")]
    report = report_for("rtx4090", broken)
    errors = [p for p in report.problems if p.severity == "error"]
    assert len(errors) == 2  # on a CUDA machine, no QLoRA and no GGUF are blocking
    assert "ollama serve" in problems_text(report)


def test_bitsandbytes_probe_survives_a_crashing_subprocess() -> None:
    status = check_bitsandbytes(timeout=30, code="import sys; sys.exit('segfault in libbitsandbytes')")
    assert status.ok is False and "segfault" in status.detail


@pytest.mark.slow
def test_bitsandbytes_really_runs_a_4bit_matmul_here() -> None:
    status = check_bitsandbytes()
    assert status.ok, status.detail
    assert "4-bit matmul ok" in status.detail


def test_ollama_host_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert ollama_base_url() == "http://127.0.0.1:11434"
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0")
    assert ollama_base_url() == "http://0.0.0.0:11434"
    monkeypatch.setenv("OLLAMA_HOST", "https://gpu-box:8443")
    assert ollama_base_url() == "https://gpu-box:8443"


def test_doctor_json_on_this_machine_matches_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["doctor", "--json", "--quick"]) == 0
    data = json.loads(capsys.readouterr().out)
    report = HardwareReport.model_validate(data)  # the documented schema, strictly
    assert report.device == "cpu" and report.cpu_cores >= 1 and report.ram_total_bytes > 0
    assert cli_main(["doctor", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert set(schema["properties"]) == set(data), "every documented field is present, nothing extra"


def test_shipped_schema_file_is_current() -> None:
    from importlib import resources

    shipped = json.loads(resources.files("ftwiz.core.hardware").joinpath("doctor.schema.json").read_text())
    assert shipped == HardwareReport.model_json_schema()


def test_doctor_human_output_lists_problems_and_fixes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["doctor", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "GPUs" in out and "training device" in out and "fix:" in out
