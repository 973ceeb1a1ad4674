"""`csm web`: a small web application to watch sub-campaigns live and act on them.

Server-rendered pages, live updates by server-sent events, no front-end build.
Every page and API call needs the token from settings (CSM_WEB_TOKEN); every
action is recorded with who did it. Reads come from the per-pass totals every
ledger write adds to, so a refresh costs a few small rows at any list size.
"""
