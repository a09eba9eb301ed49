"""The planner: what fits on this machine, and why (``ftwiz plan``)."""

from ftwiz.core.planner.plan import MemoryEstimate, Plan
from ftwiz.core.planner.recommend import memory_budget, plan_recipe
from ftwiz.core.planner.spec import ModelSpec, load_model_spec

__all__ = ["MemoryEstimate", "ModelSpec", "Plan", "load_model_spec", "memory_budget", "plan_recipe"]
