"""Temporal activities: every piece of I/O csm does (database, SMTP, providers)."""
