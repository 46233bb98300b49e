# WSGI entry point of moinmoin-appliance's wiki: mod_wsgi runs it in the
# vatools-moin venv (python-home in /etc/apache2/conf-available/moinmoin-appliance.conf).
from moin.app import create_app

application = create_app("/etc/moinmoin-appliance/wikiconfig.py")
