"""Temporal workflows. Deterministic code only: no I/O, no database or SMTP imports
except through `workflow.unsafe.imports_passed_through()`. Nothing runs on import."""
