"""Data in and out, and the demo world."""
