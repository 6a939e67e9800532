"""Herald's storage: SQLModel tables, the database engine, queries and Alembic migrations."""
