"""gunicorn's settings for appliance-control (`gunicorn -c python:vatools.control.gunicorn_conf`).

Two worker processes (the jobs' state, the live sessions and the login rate limit are files
of the state directory, shared by both; the session key is made by the package's postinst,
not by the workers racing at start), each with threads for concurrent clients. The address
comes from the config file.
"""

from vatools.control.config import Config

bind = [Config.load().listen]
workers = 2
worker_class = "gthread"
threads = 8
timeout = 120  # an upload of a large backup
accesslog = "-"
