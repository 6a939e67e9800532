"""`python -m bot rotate-key`: every stored credential sealed again with the first key (MultiFernet.rotate).

With HERALD_SECRET_KEY the operator brings the new key: `new,old` on every worker, then rotate-key, then
`new` alone. With the key file beside the SQLite database (no HERALD_SECRET_KEY), rotate-key makes the
new key itself: the file holds new and old while the credentials are re-sealed, then the new key only.
"""

from __future__ import annotations

from sqlmodel import col, select

from bot.settings import Settings, SettingsError, key_file, secret_key, write_key_file
from bot.worker_lock import migration_lock
from storage.crypto import SecretBox, SecretBoxError, split_keys
from storage.db import Database
from storage.models import Account


def reseal(db: Database, box: SecretBox) -> int:
    """Seal every account's credentials again with the box's first key, in one transaction; how many.
    If one can't be opened with any key, nothing changes."""
    with db.session() as session:
        accounts = session.exec(select(Account).where(col(Account.credentials).is_not(None))).all()
        for account in accounts:
            assert account.credentials is not None
            try:
                account.credentials = box.rotate(account.credentials)
            except SecretBoxError:
                raise SettingsError(
                    f"Bad setting HERALD_SECRET_KEY: the credentials of account {account.name} ({account.network}) "
                    "can't be opened with any of its keys, so nothing was re-sealed. Add the key they were "
                    "sealed with after the new one (HERALD_SECRET_KEY=new,old) and run rotate-key again."
                ) from None
            session.add(account)
        return len(accounts)


def rotate_key(settings: Settings) -> str:
    """Re-seal every credential with the first key; returns what to tell the operator."""
    db = Database(settings.database_url)
    try:
        with migration_lock(db.engine, settings.sqlite_path()):
            db.migrate()
        path = key_file(settings)
        if settings.herald_secret_key is None and path is not None:
            old = split_keys(secret_key(settings)[0])
            new = SecretBox.new_key()
            write_key_file(path, [new, *old])  # a crash from here on leaves a file that opens both
            try:
                count = reseal(db, SecretBox([new, *old]))
            except BaseException:
                write_key_file(path, old)
                raise
            write_key_file(path, [new])
            return (f"Re-sealed the credentials of {count} account(s) with a new key, now alone in {path} "
                    "(mode 0600). Back that file up again: the old key no longer opens anything.")
        box = SecretBox(secret_key(settings)[0])
        count = reseal(db, box)
        if box.key_count > 1:
            return (f"Re-sealed the credentials of {count} account(s) with the first key of HERALD_SECRET_KEY. "
                    "Now set it to that key alone on every worker and restart them.")
        return (f"Re-sealed the credentials of {count} account(s) with HERALD_SECRET_KEY, its only key. To change "
                "the key: make one with `python -m bot key`, set HERALD_SECRET_KEY=<new>,<old> on every worker, "
                "restart them and run rotate-key again.")
    finally:
        db.dispose()
