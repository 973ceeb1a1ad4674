"""csm — a campaign strategy manager for outbound communications campaigns, on Temporal.

The core package holds what is neither a workflow nor an activity: settings,
database tables, the embedded development stack and the command line.
"""

__version__ = "0.1.0"
