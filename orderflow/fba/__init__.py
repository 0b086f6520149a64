"""Amazon FBA as a fulfilment route: Multi-Channel Fulfillment (Fulfillment Outbound API v2020-07-01).

- :mod:`orderflow.fba.mcf`: the API's request and answer shapes, in Amazon's field names;
- :mod:`orderflow.fba.client`: the MCF client (the Amazon channel client, subclassed: LWA, retries, rate);
- :mod:`orderflow.fba.accounts`: which Amazon account an FBA warehouse uses, and the open fulfillment orders;
- :mod:`orderflow.fba.forwarding`: fba-orders queue message -> createFulfillmentOrder -> ``in_fulfillment``;
- :mod:`orderflow.fba.tracking`: the scheduled poll: getFulfillmentOrder -> tracking -> the order completes;
- :mod:`orderflow.fba.cancellation`: the cancel hook: cancelFulfillmentOrder before an order is cancelled;
- :mod:`orderflow_local.fba`: the same on ``orderflow local``, with a sandbox FBA server.

See docs/fba.md.
"""
