"""Shipping labels bought through integrated carriers (the seed's self-fulfilment, F1 / D2).

- :mod:`~orderflow.carriers.base`: the :class:`LabelProvider` protocol, parcels, purchased labels, errors;
- :mod:`~orderflow.carriers.easypost` and :mod:`~orderflow.carriers.shippo`: clients of the real APIs
  over plain httpx (configurable base URL, timeouts, retries with backoff on 429/5xx);
- :mod:`~orderflow.carriers.accounts`: carrier accounts (seller configuration in the settings table)
  and their API keys (Secrets Manager on AWS, a 0600 file or an env var locally, never the table);
- :mod:`~orderflow.carriers.storage`: where label files live (S3 on AWS, a folder locally);
- :mod:`~orderflow.carriers.labels`: ``POST /orders/{id}/labels`` in plain Python: claim the shipment,
  buy, store, record, and hand the tracking number to the waiting workflow.

This package imports nothing heavy at import time: handlers that never buy a label never pay for httpx.
"""
