"""After publishing: reading the numbers on a cadence (`metrics`), /stats and post reports (`stats`), /report
(`reports`), digests, /export, alerts and watch words, the inbox, /reply through approvals, best times, how far posts spread (`spread`), short-link clicks (`clicks`),
visits and conversions from the site's analytics (`traffic`: /analytics).

May import: `handlers.workspace`, `handlers.core` and `storage`. Importing the package registers its commands
and periodic tasks.
"""

from handlers.engagement import (  # noqa: F401  (each module registers its commands and periodic tasks)
    alerts,
    besttime,
    clicks,
    digests,
    exports,
    inbox,
    metrics,
    replies,
    reports,
    spread,
    stats,
    traffic,
)
