import sys

from clipsearch.cli.main import main

sys.exit(main())
