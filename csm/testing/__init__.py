"""Real test servers and worker processes for csm's own tests and benchmarks, and for projects
that script against csm."""
