"""Sales channels: their configuration, one API client per channel type, their webhooks.

- :mod:`orderflow.channels.config`: what a seller configures (type, base URL, schedule, auto-sync)
  and the credentials kept apart from it;
- :mod:`orderflow.channels.shopify`, :mod:`~orderflow.channels.woocommerce`,
  :mod:`~orderflow.channels.amazon`: clients of the real APIs (httpx, configurable base URL) that page
  through orders changed since a time, normalize them into :class:`orderflow.models.NewOrder`, and push
  available quantities (auto-sync);
- :mod:`orderflow.channels.webhooks`: signature checks and reading webhook deliveries.

What to do with the orders (store once, hold, cancel, start) is :mod:`orderflow.importing`'s job.
See docs/channels.md.
"""
