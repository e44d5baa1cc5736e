"""The pure core: value types, the change rules and the value codec. Imports only the standard library
(and dbt_activate.errors), so every layer above can use it and it can be tested with tables of cases.
"""
