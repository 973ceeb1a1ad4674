"""The `csm` command line: a thin layer over functions scripts can call too."""
