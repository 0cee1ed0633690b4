"""porcupine: a linearizability checker with an HTML view (a Python port of Go porcupine).

Usage:
    import porcupine
    model = porcupine.Model(Init=lambda: "", Step=step, DescribeOperation=describe)
    res, info = porcupine.CheckOperationsVerbose(model, ops, 1.0)   # seconds; 0 = none
    if res is porcupine.CheckResult.Illegal:
        info.AddAnnotations([porcupine.Annotation(Tag="test", Start=t, Description="crash")])
        porcupine.VisualizePath(model, info, "/tmp/history.html")

Names follow Go porcupine (github.com/anishathalye/porcupine) so Go test code
ports line by line; see model.py for histories and models, checker.py for the
algorithm, visualization.py for the view.
"""

from .model import (CallEvent, CheckResult, Event, EventKind, Model, ModelError,
                    NondeterministicModel, Operation, ReturnEvent)
from .checker import (CheckEvents, CheckEventsTimeout, CheckEventsVerbose, CheckOperations,
                      CheckOperationsTimeout, CheckOperationsVerbose, LinearizationInfo)
from .visualization import Annotation, Visualize, VisualizePath

Ok = CheckResult.Ok
Illegal = CheckResult.Illegal
Unknown = CheckResult.Unknown

__all__ = [
    "Annotation", "CallEvent", "CheckEvents", "CheckEventsTimeout", "CheckEventsVerbose",
    "CheckOperations", "CheckOperationsTimeout", "CheckOperationsVerbose", "CheckResult",
    "Event", "EventKind", "Illegal", "LinearizationInfo", "Model", "ModelError",
    "NondeterministicModel", "Ok", "Operation", "ReturnEvent", "Unknown", "Visualize",
    "VisualizePath",
]
