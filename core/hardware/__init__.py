"""Hardware detection for ``ftwiz doctor``, the planner and the wizard.

``detect()`` returns a :class:`HardwareReport`; GPU vendor APIs are read through one seam
(:mod:`ftwiz.core.hardware.probe`) that tests feed with recorded outputs of real machines.
"""

from ftwiz.core.hardware.detect import build_report, detect
from ftwiz.core.hardware.probe import RawProbe, probe_machine
from ftwiz.core.hardware.report import BackendStatus, GpuInfo, HardwareReport, Problem

__all__ = ["BackendStatus", "GpuInfo", "HardwareReport", "Problem", "RawProbe", "build_report", "detect",
           "probe_machine"]
