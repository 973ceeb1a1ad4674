"""Short, runnable examples of starting csm workflows from scripts with the Temporal client."""
