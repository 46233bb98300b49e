"""gunicorn's settings for appliance-control (`gunicorn -c python:vatools.control.gunicorn_conf`).

One worker process with threads: the jobs of jobs.py live in that process, so every request
sees them; the threads serve concurrent clients. The address comes from the config file.
"""

from vatools.control.config import Config

bind = [Config.load().listen]
workers = 1
worker_class = "gthread"
threads = 16
timeout = 120  # an upload of a large backup
accesslog = "-"
