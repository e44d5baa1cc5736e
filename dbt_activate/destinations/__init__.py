"""Destination types: ``base.py`` is the seam every type implements (a batch in, per-record results
out; never retries, never touches state), ``api.py`` what the HTTP API types share (``ApiDestination``:
settings, session, reasons, plan; ``oauth.py`` their OAuth tokens), ``sql.py`` and ``blocking.py``
what the database and file types share, ``record_ids.py`` the record-id cache of vendors that write
by id, and one package per vendor (``hubspot/``, ``salesforce/``, …) found through the
``dbt_activate.destinations`` entry points.
"""
