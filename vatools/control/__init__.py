"""appliance-control: the web interface every appliance shares, and its root helper.

The web process (Flask under gunicorn) runs as the system user `appliance-control` and never
as root; every privileged action is one typed operation sent to the root helper over a Unix
socket (helper.py, ops.py). Plugins of the appliances add pages and dashboard widgets
(plugins.py, docs/control-plugins.md).
"""
