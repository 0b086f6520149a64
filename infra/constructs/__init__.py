"""One construct per concern; ``infra.stack.OrderflowStack`` only wires them together."""

from infra.constructs.api import Api
from infra.constructs.data import Data
from infra.constructs.functions import FUNCTION_SPECS, Functions, FunctionSpec
from infra.constructs.monitoring import Monitoring
from infra.constructs.queues import Queues
from infra.constructs.workflow import Workflow

__all__ = ["FUNCTION_SPECS", "Api", "Data", "FunctionSpec", "Functions", "Monitoring", "Queues", "Workflow"]
