"""What dbt-activate remembers, in the user's own warehouse and next to the project: the snapshot and run
tables (store), the per-batch journal, the per-sync locks and the destination record ids.
"""
