"""``python -m lab.bench``: see lab/bench/main.py."""

from lab.bench.main import main

raise SystemExit(main())
