"""The pass engine: one sweep through the contacts a pass selects, exact across crashes.

The activity (`activities/passes.py`) is a thin shell over `run.run_pass`. Inside:

- `input`: the pass's input (ids, codes and strategy text only);
- `selection`: freezing a round's selection (first pass and retry rounds alike);
- `reading`: a batch of selected contacts with their devices, as `Contact` records;
- `windows`: when a contact's windows open, and waiting for them;
- `decision`: the per-contact decision as a pure function (tested without a database);
- `leases`: leasing a batch's accounts and reading what their checks need;
- `attempts`: attempting a batch's contacts through the provider (and agents);
- `recording`: a batch's rows, consequences and cursor in one transaction;
- `sweep`: the round's batches, read ahead, attempted and recorded in stages;
- `settlement`: what a crash left in flight, and closing a round with a reason;
- `clock`, `notes`: the pass's clock and pacing, and its `pass_note` to the workflow.

Nothing here imports the app (workflows, activities, worker, starter) or a front end.
"""
