"""Sales channels (Shopify, WooCommerce, Amazon) as one slice: what a seller connects, the clients of
their APIs, and what orderflow does with them. See docs/channels.md.

- :mod:`.config`: what a seller configures (type, base URL, schedule, auto-sync) and the credentials
  kept apart from it;
- :mod:`.shopify`, :mod:`.woocommerce`, :mod:`.amazon` (over :mod:`.base`, :mod:`.http`, picked by
  :mod:`.clients`): clients of the real APIs (httpx, configurable base URL) that page through orders
  changed since a time, normalize them into :class:`orderflow.models.NewOrder`, push available
  quantities and tell shipments;
- :mod:`.webhooks`: signature checks and reading webhook deliveries;
- :mod:`.ports`: what the slice needs from storage and the scheduler (configurations, import cursors
  and their lease, credentials, stored orders, webhook events, schedules), as Protocols;
  :mod:`orderflow.adapters.channel_store` implements them on AWS;
- :mod:`.directory`: the channels as the rest of orderflow uses them (``ports.channels``: the
  configurations and a client per channel) and the slice's stores, wired by :mod:`orderflow.wiring`;
- :mod:`.importing`: channel orders -> each stored once, then held, started or cancelled as the channel
  says (polls and webhooks; ``functions/import_orders``, the API);
- :mod:`.shipment_updates`: a shipped shipment -> its tracking told to the channel (``functions/tell_channel``);
- :mod:`.stock_sync`: a stock change -> the new available quantity pushed to the auto-sync channels
  (``functions/sync_stock``).
"""
