"""Developer tool: `python -m storage.revision "what changed"` writes the next Alembic migration.

It migrates a throwaway SQLite database to the latest revision and autogenerates the difference
between that schema and the SQLModel tables in storage/models.py. Read the file it writes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from storage.db import MIGRATIONS, Database, alembic_config


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        print('usage: python -m storage.revision "what changed"', file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'revision.db'}"
        Database(url).migrate()
        config = alembic_config(url)
        heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
        number = len(list(ScriptDirectory(str(MIGRATIONS)).walk_revisions())) + 1
        command.revision(config, message=argv[0], autogenerate=True, rev_id=f"{number:04d}", head=heads[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
