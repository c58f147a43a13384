"""``python -m acd.bench``: see acd/bench/main.py."""

from acd.bench.main import main

raise SystemExit(main())
