"""The database: the one driver module, named queries from sql/, batching, migrations, the embedded PostgreSQL."""
