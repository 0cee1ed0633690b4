"""(placeholder)"""
from dataclasses import dataclass


@dataclass
class Annotation:
    ClientId: int = 0
    Tag: str = ""
    Start: int = 0
    End: int = 0
    Description: str = ""
    Details: str = ""
    TextColor: str = ""
    BackgroundColor: str = ""


def Visualize(model, info, output):
    raise NotImplementedError


def VisualizePath(model, info, path):
    raise NotImplementedError
