"""The user's warehouse, reached through their own dbt profile: ``adapter.py`` (the only module that
imports dbt: it builds the adapter from dbt's recipe), ``connection.py`` (the raw DB-API cursor,
streaming reads, no agate) and ``dialect.py`` (quoting, hashing, the diff's and the state tables' SQL
per warehouse).
"""
