"""The ``mirocals`` console command (``mirocals/cli.py``; also ``python -m mirocals``).

One function per subcommand in ``mirocals.cli`` (``cmd_demo``, ``cmd_table``, ...), registered in
``mirocals.registry``; the parser is built from them. ``mirocals.serve`` holds what
``mirocals serve`` hands to the dashboard.
"""
