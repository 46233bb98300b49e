"""Appliances as containers on podman: deployments with a history, atomic update, rollback.

config   the JSON configuration, checked whole before any change
image    an OCI layout or archive, its digests checked
state    the history of deployments under /var/lib/vatools/containers/NAME
podman   the podman command lines
probe    the HTTP health probe
unit     the systemd unit (when systemd runs)
deploy   deploy, update, rollback, remove, describe
"""
