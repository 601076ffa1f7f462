"""MemberLab: design, run, diagnose and optimize membership programs."""

__version__ = "0.1.0"
