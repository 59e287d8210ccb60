"""``python -m mirocals``: the same as the ``mirocals`` console command."""
import sys

from mirocals.cli import main

sys.exit(main())
