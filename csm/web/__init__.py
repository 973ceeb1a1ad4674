"""`csm web`: a small web application to watch sub-campaigns live and act on them.

Server-rendered pages, live updates by server-sent events, no front-end build.
Every page and API call needs the token from settings (CSM_WEB_TOKEN); every
action is recorded with who did it. Reads come from the per-pass totals every
ledger write adds to, so a refresh costs a few small rows at any list size.

- `app`: the routes, the authentication middleware and the error handlers;
- `auth`: the signed session cookie, the bearer token, the one guard (`signed_in`);
- `pages` (HTML, from `templates/` via `rendering`) and `api` (JSON, the live stream):
  module-level endpoints that read `context.WebContext` from `app.state.web`;
- `actions`: the lifecycle and amend updates, the only calls that change a workflow;
- `data` (what the pages show) and `preview` (an amended filter's count).
"""
