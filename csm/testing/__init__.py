"""Real test servers for csm's own tests and for projects that script against csm."""
