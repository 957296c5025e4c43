"""Running untrusted generated programs: never in the pytest process.

See :mod:`pytest_llmbench.sandbox.runner` for what is guaranteed and what is not.
"""

from pytest_llmbench.sandbox.containment import SandboxUnavailable
from pytest_llmbench.sandbox.runner import Step, StepResult, isolation_report, run_program

__all__ = ["SandboxUnavailable", "Step", "StepResult", "isolation_report", "run_program"]
