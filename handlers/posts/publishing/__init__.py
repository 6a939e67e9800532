"""Publishing, exactly once per account and never silently (ARCHITECTURE.md, "The promises"):

- `claims`: the conditional UPDATEs that claim a post and each delivery before any network call, and store
  the network's answer the moment it comes;
- `send`: send slots and the sends themselves; `outcomes`: asking the network about a send whose answer was
  lost; `settle`: a post's final state and the per-account notice;
- `threads`: a thread's later parts and the first comment after each sent delivery, one step at a time;
- `held`: posts held after downtime, /held; `due`: the clock's entry points (run_due, sweep, recovery);
- `commands`: /publish, /retry, /confirm, /pause, /resume;
- `crisis`: crisis mode (/crisis), built on the rest: held posts, the claims' crisis check, the clock.

Inside: crisis → commands → due → held → send → outcomes → settle → threads → claims. May import the rest of `handlers.posts` and what it may.
"""

from handlers.posts.publishing import commands, crisis, held  # noqa: F401  (each module registers its commands)
