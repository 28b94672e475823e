"""``python -m auth``: see :mod:`auth.cli`."""

from auth.cli import main

raise SystemExit(main())
