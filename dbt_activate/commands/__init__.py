"""Commands that are more than a call into the engine: validate, ls (the sync listing), listen (dbt Cloud
webhooks). The click wiring stays in cli.py.
"""
