"""Dropship suppliers and 3PLs over SFTP (docs/suppliers.md).

- :mod:`.config`: what a seller configures per supplier (a settings document keyed by the warehouse id
  of the dropship/3PL warehouse it serves); :mod:`.credentials`: where its credentials live;
- :mod:`.files`: the order file we write and the tracking file we read (plain functions);
- :mod:`.sftp`: the paramiko client; :mod:`.store`: sent-files record, tracking-file ledger, leases;
- :mod:`.forwarding`: a supplier-queue message -> the order file, once (``functions/forward_supplier``);
- :mod:`.tracking`: the scheduled poll of ``out/`` -> tracking on the orders (``functions/poll_tracking``);
- :mod:`.cancellation`: a cancelled order -> a cancellation file for the supplier;
- :mod:`.local`: the local stack's wiring and sandbox suppliers.

Submodules are imported where they are used: paramiko and asyncssh are slow to import.
"""
