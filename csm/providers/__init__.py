"""Real carriers behind csm's channels (issue 15): adapters, their webhooks, their signatures."""
