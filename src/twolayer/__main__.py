"""``python -m twolayer``: the same command as ``twolayer``."""

from twolayer.cli import main

raise SystemExit(main())
