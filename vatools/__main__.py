import sys

from vatools.cli.main import main

sys.exit(main())
