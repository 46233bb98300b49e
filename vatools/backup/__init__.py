"""Appliance Backup Files (.abf): create, verify, inspect, restore, recover.

See docs/abf-format.md for the format. Modules, one concern each:
manifest (what an appliance declares), info (info.yaml), members (the safety rules for
archive members), streams (hashing, counting, threaded gzip), create, verify, stage
(extraction into a staging tree), swap (journal + renames), actions (services and hooks),
restore (the whole algorithm).
"""
