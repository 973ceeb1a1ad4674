"""Fault injection: bad input gets a clear error and loses nothing (DESIGN.md, invariant 7)."""
