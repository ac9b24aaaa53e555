"""A figure worker of `vlbias report`: ``python -m vlbias.report._worker JOBS FOLDER`` (see assets._parallel)."""

import sys
from pathlib import Path

from vlbias.report.assets import work

if __name__ == "__main__":
    work(Path(sys.argv[1]), Path(sys.argv[2]))
