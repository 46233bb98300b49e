"""Appliance Backup Files (.abf): create, verify, inspect, restore, recover.

See docs/abf-format.md for the format. Modules, one concern each:
manifest (what an appliance declares), info (info.yaml), archive (the zip, its checks, one
pass over a tar member), tarstream (the tar reader), members (the safety rules for archive
members), streams (hashing, counting, threaded gzip), spill (bookkeeping in bounded memory),
create, authenticity (the key and HMAC that tell the system's own backups from foreign
ones), stage (extraction into a staging tree), swap (journal + renames), footprint (leaving
no trace after a refusal), actions (services and hooks), restore (the whole algorithm: one
pass that verifies while it stages, then the swap).
"""
